package source

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fluxcd/pkg/git/signature"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Verification says whose signatures a revision's head commit must carry
// before anything in it is applied. OpenPGP and SSH signatures are checked
// with fluxcd/pkg/git's signature package (X.509 signatures are not
// supported there, so they are refused).
type Verification struct {
	// PGPKeyRings are armored OpenPGP public key rings.
	PGPKeyRings []string
	// SSHAuthorizedKeys are authorized_keys files' contents.
	SSHAuthorizedKeys []string
}

// ReadVerification reads trusted key files: an armored OpenPGP key ring
// ("-----BEGIN PGP PUBLIC KEY BLOCK-----") or an authorized_keys file of
// SSH public keys, told apart by their content.
func ReadVerification(files []string) (*Verification, error) {
	if len(files) == 0 {
		return nil, errors.New("signature verification needs at least one trusted key file")
	}
	v := &Verification{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading trusted keys: %w", err)
		}
		s := string(b)
		switch {
		case strings.Contains(s, "-----BEGIN PGP PUBLIC KEY BLOCK-----"):
			v.PGPKeyRings = append(v.PGPKeyRings, s)
		default:
			if _, err := signature.ParseAuthorizedKeys(s); err != nil {
				return nil, fmt.Errorf("%s is neither an armored OpenPGP key ring nor an authorized_keys file of SSH keys: %w", f, err)
			}
			v.SSHAuthorizedKeys = append(v.SSHAuthorizedKeys, s)
		}
	}
	return v, nil
}

// UnverifiedError says a revision's head commit is not signed by a
// trusted key: nothing in it may be applied.
type UnverifiedError struct {
	Revision Revision
	Err      error
}

func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("revision %s (%s) is not signed by a trusted key, so it is not applied: %v", e.Revision, e.Revision.Author, e.Err)
}

func (e *UnverifiedError) Unwrap() error { return e.Err }

// verify checks a commit's signature over its payload; it returns who signed.
func (v *Verification) verify(rev Revision, sig string, payload []byte) (string, error) {
	fail := func(err error) (string, error) { return "", &UnverifiedError{Revision: rev, Err: err} }
	switch {
	case signature.IsEmptySignature(sig):
		return fail(errors.New("the commit is not signed"))
	case signature.IsPGPSignature(sig):
		if len(v.PGPKeyRings) == 0 {
			return fail(errors.New("it carries an OpenPGP signature and no OpenPGP key is trusted"))
		}
		id, err := signature.VerifyPGPSignature(sig, payload, v.PGPKeyRings...)
		if err != nil {
			return fail(err)
		}
		return "openpgp:" + id, nil
	case signature.IsSSHSignature(sig):
		if len(v.SSHAuthorizedKeys) == 0 {
			return fail(errors.New("it carries an SSH signature and no SSH key is trusted"))
		}
		fp, err := signature.VerifySSHSignature(sig, payload, v.SSHAuthorizedKeys...)
		if err != nil {
			return fail(err)
		}
		return "ssh:" + fp, nil
	}
	return fail(fmt.Errorf("unsupported signature type %s", signature.GetSignatureType(sig)))
}

// payload is what a commit's signature covers: the commit without it.
func payload(c *object.Commit) ([]byte, error) {
	o := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(o); err != nil {
		return nil, err
	}
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
