package target

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/certfleet/certfleet/reconciler/render"
)

// VaultKV reads and writes bundles in Vault KV v2: tls.crt, tls.key and
// ca.crt in the secret's data, certfleet's metadata (its marks among them:
// managed-by and certificate-id) in its custom metadata.
type VaultKV struct {
	Client *vaultapi.Client
	// Adopt lets Write overwrite an existing secret that does not carry
	// certfleet's marks for the certificate (default false: refused with
	// ErrNotOwned).
	Adopt bool
	// DestroyHistory makes a prune remove the secret's metadata and every
	// version (default false: only the current version is deleted, softly,
	// and the history stays for whoever needs it back).
	DestroyHistory bool
}

func (v *VaultKV) check() error {
	if v == nil || v.Client == nil {
		return errors.New("a Vault KV target needs Vault: use --backend vault")
	}
	return nil
}

// Observe reads one target: its latest version and the secret's custom
// metadata. A latest version that is deleted (soft) or destroyed is no
// certificate: Exists is false, and Version still says which version a
// write must follow.
func (v *VaultKV) Observe(ctx context.Context, t *render.Target) (*Observed, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	o := &Observed{Target: t, Version: "0"}
	s, err := v.Client.KVv2(t.Mount).Get(ctx, t.Path)
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Vault KV %s/%s: %w", t.Mount, t.Path, err)
	}
	if s.VersionMetadata != nil {
		o.Version = strconv.Itoa(s.VersionMetadata.Version)
	}
	marks := customMetadata(s.CustomMetadata)
	if marks[LabelManagedBy] == ManagedByValue {
		o.Managed = true
		o.Annotations = marks
	}
	if !live(s) {
		return o, nil
	}
	str := func(k string) []byte { s, _ := s.Data[k].(string); return []byte(s) }
	o.Exists = true
	o.Bundle = Bundle{Cert: str("tls.crt"), Key: str("tls.key"), CA: str("ca.crt")}
	o.parse(true) // the key: CheckKeys
	return o, nil
}

// live reports whether s is a version that holds data.
func live(s *vaultapi.KVSecret) bool {
	return s.Data != nil && (s.VersionMetadata == nil || (s.VersionMetadata.DeletionTime.IsZero() && !s.VersionMetadata.Destroyed))
}

func customMetadata(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, val := range m {
		if sv, ok := val.(string); ok {
			out[k] = sv
		}
	}
	return out
}

// Write puts the bundle as a new version, then certfleet's metadata, if the
// secret is still what prev (the observation the decision was based on)
// says it is. The put is a check-and-set on the version observed (0 when
// the secret never had one), so a version written since — a hand edit, a
// concurrent certfleet — makes it fail with ErrConflict instead of being
// buried under ours. An existing secret without certfleet's marks for
// m.CertificateID is refused (ErrNotOwned) unless v.Adopt. The metadata is
// a merge patch of certfleet's keys only: others' custom metadata stays.
func (v *VaultKV) Write(ctx context.Context, t render.Target, b Bundle, m Meta, prev *Observed) error {
	if err := v.check(); err != nil {
		return err
	}
	where := fmt.Sprintf("Vault KV %s/%s", t.Mount, t.Path)
	cas := 0
	if prev != nil {
		if prev.Exists && !prev.OwnedBy(m.CertificateID) && !v.Adopt {
			return fmt.Errorf("%s: not overwritten: it %w", where, ErrNotOwned)
		}
		if prev.Version != "" {
			n, err := strconv.Atoi(prev.Version)
			if err != nil {
				return fmt.Errorf("%s: the observed version %q is not a number", where, prev.Version)
			}
			cas = n
		} else if prev.Exists {
			return fmt.Errorf("%s: the observation has no version to make the write conditional on", where)
		}
	}
	kv := v.Client.KVv2(t.Mount)
	_, err := kv.Put(ctx, t.Path, map[string]any{"tls.crt": string(b.Cert), "tls.key": string(b.Key), "ca.crt": string(b.CA)},
		vaultapi.WithCheckAndSet(cas))
	if isCASMismatch(err) {
		return fmt.Errorf("%s: not overwritten: it %w (version %d)", where, ErrConflict, cas)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", where, err)
	}
	meta := map[string]any{LabelManagedBy: ManagedByValue}
	for k, val := range m.Annotations(b) {
		if val == "" {
			// Vault refuses empty values; null in the merge patch removes
			// one certfleet wrote before (a SAN list that became empty).
			meta[k] = nil
		} else {
			meta[k] = val
		}
	}
	if err := kv.PatchMetadata(ctx, t.Path, vaultapi.KVMetadataPatchInput{CustomMetadata: meta}); err != nil {
		return fmt.Errorf("writing the metadata of %s: %w", where, err)
	}
	return nil
}

// isCASMismatch reports whether err is Vault refusing a check-and-set write
// because the secret's current version is not the one given.
func isCASMismatch(err error) bool {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "check-and-set") {
			return true
		}
	}
	return false
}

// Delete prunes the secret of certificate id: it re-reads the secret and,
// if it still carries certfleet's marks for id (else ErrTakenOver) and,
// when prev is given, is still at the version observed (else ErrConflict),
// deletes that version (a soft delete: older versions stay readable and the
// deleted one can be undeleted). DestroyHistory removes the metadata and
// every version instead. A secret with no live version is fine.
func (v *VaultKV) Delete(ctx context.Context, t render.Target, id string, prev *Observed) error {
	if err := v.check(); err != nil {
		return err
	}
	where := fmt.Sprintf("Vault KV %s/%s", t.Mount, t.Path)
	kv := v.Client.KVv2(t.Mount)
	s, err := kv.Get(ctx, t.Path)
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s before pruning it: %w", where, err)
	}
	if !live(s) {
		return nil
	}
	marks := customMetadata(s.CustomMetadata)
	if !owned(marks, marks, id) {
		return fmt.Errorf("%s: not pruned: it %w (certificate %s)", where, ErrTakenOver, id)
	}
	version := s.VersionMetadata.Version
	if prev != nil && prev.Exists && prev.Version != strconv.Itoa(version) {
		return fmt.Errorf("%s: not pruned: it %w (version %s; now %d)", where, ErrConflict, prev.Version, version)
	}
	if v.DestroyHistory {
		err = kv.DeleteMetadata(ctx, t.Path)
	} else {
		// The version checked, not "the latest": one written since the
		// re-read is someone else's and stays.
		err = kv.DeleteVersions(ctx, t.Path, []int{version})
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting %s: %w", where, err)
	}
	return nil
}
