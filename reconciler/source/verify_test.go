package source_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/fluxcd/pkg/git/signature"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"

	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/source"
)

// signedCommit commits the worktree's changes with go-git, signed by
// signer (nil: unsigned), as `git commit -S` would.
func signedCommit(t *testing.T, w *testbed.Worktree, files map[string]string, signer gogit.Signer, key *openpgp.Entity) string {
	t.Helper()
	w.Write(t, files)
	repo, err := gogit.PlainOpen(w.Dir)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("change", &gogit.CommitOptions{
		Author: &object.Signature{Name: "alice", Email: "alice@example.test", When: time.Now()},
		Signer: signer, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func sshKey(t *testing.T) (gogit.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.NewSSHSigner(pem.EncodeToMemory(block), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s, string(ssh.MarshalAuthorizedKey(pub))
}

func pgpKey(t *testing.T) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity("release", "", "release@example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, buf.String()
}

func TestOnlyARevisionSignedByATrustedKeyIsRead(t *testing.T) {
	srv := testbed.NewGitServer(t)
	url, err := srv.CreateRepo("fleet")
	if err != nil {
		t.Fatal(err)
	}
	sshSigner, sshPub := sshKey(t)
	strangerSigner, _ := sshKey(t)
	pgpEntity, pgpPub := pgpKey(t)
	dir := t.TempDir()
	sshFile, pgpFile := filepath.Join(dir, "allowed_signers"), filepath.Join(dir, "trusted.asc")
	if err := os.WriteFile(sshFile, []byte(sshPub), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pgpFile, []byte(pgpPub), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := source.ReadVerification([]string{sshFile, pgpFile})
	if err != nil {
		t.Fatal(err)
	}
	w := testbed.NewWorktree(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		signer gogit.Signer
		key    *openpgp.Entity
		ok     bool
	}{
		{name: "signed with a trusted SSH key", signer: sshSigner, ok: true},
		{name: "signed with a trusted OpenPGP key", key: pgpEntity, ok: true},
		{name: "unsigned", ok: false},
		{name: "signed with an SSH key nobody trusts", signer: strangerSigner, ok: false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash := signedCommit(t, w, map[string]string{"teams/a.yaml": "v" + string(rune('0'+i))}, tt.signer, tt.key)
			w.Push(t, srv.PushURL("fleet"), "main")
			for _, where := range []struct{ src, ref string }{{url, "main"}, {w.Dir, hash}} {
				s, err := source.Fetch(ctx, where.src, where.ref, source.Options{Verify: v})
				var unverified *source.UnverifiedError
				switch {
				case tt.ok && err != nil:
					t.Errorf("%s: %v", where.src, err)
				case tt.ok && s.Revision.Hash != hash:
					t.Errorf("%s: read %s, want %s", where.src, s.Revision.Hash, hash)
				case !tt.ok && !errors.As(err, &unverified):
					t.Errorf("%s: %v, want an UnverifiedError (nothing read)", where.src, err)
				case !tt.ok && s != nil:
					t.Errorf("%s: an unverified revision was read", where.src)
				}
			}
		})
	}
	if _, err := source.Fetch(ctx, w.Dir, "", source.Options{Verify: v}); err == nil {
		t.Error("a working tree was read with signature verification on")
	}
}
