package target

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/certfleet/certfleet/reconciler/render"
)

// VaultKV reads and writes bundles in Vault KV v2: tls.crt, tls.key and
// ca.crt in the secret's data, certfleet's metadata in its custom metadata.
type VaultKV struct {
	Client *vaultapi.Client
}

func (v *VaultKV) check() error {
	if v == nil || v.Client == nil {
		return errors.New("a Vault KV target needs Vault: use --backend vault")
	}
	return nil
}

// Observe reads one target.
func (v *VaultKV) Observe(ctx context.Context, t render.Target) (*Observed, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	o := &Observed{Target: t}
	s, err := v.Client.KVv2(t.Mount).Get(ctx, t.Path)
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Vault KV %s/%s: %w", t.Mount, t.Path, err)
	}
	str := func(k string) []byte { s, _ := s.Data[k].(string); return []byte(s) }
	o.Exists = true
	o.Bundle = Bundle{Cert: str("tls.crt"), Key: str("tls.key"), CA: str("ca.crt")}
	if s.CustomMetadata != nil {
		if by, _ := s.CustomMetadata[LabelManagedBy].(string); by == ManagedByValue {
			o.Managed = true
			o.Annotations = map[string]string{}
			for k, val := range s.CustomMetadata {
				if sv, ok := val.(string); ok {
					o.Annotations[k] = sv
				}
			}
		}
	}
	o.parse()
	return o, nil
}

// Write puts the bundle, then its metadata.
func (v *VaultKV) Write(ctx context.Context, t render.Target, b Bundle, m Meta) error {
	if err := v.check(); err != nil {
		return err
	}
	kv := v.Client.KVv2(t.Mount)
	if _, err := kv.Put(ctx, t.Path, map[string]any{"tls.crt": string(b.Cert), "tls.key": string(b.Key), "ca.crt": string(b.CA)}); err != nil {
		return fmt.Errorf("writing Vault KV %s/%s: %w", t.Mount, t.Path, err)
	}
	meta := map[string]any{LabelManagedBy: ManagedByValue}
	for k, val := range m.Annotations(b) {
		if val != "" { // Vault refuses empty custom metadata values
			meta[k] = val
		}
	}
	if err := kv.PatchMetadata(ctx, t.Path, vaultapi.KVMetadataPatchInput{CustomMetadata: meta}); err != nil {
		return fmt.Errorf("writing the metadata of Vault KV %s/%s: %w", t.Mount, t.Path, err)
	}
	return nil
}

// Delete removes the secret with all its versions.
func (v *VaultKV) Delete(ctx context.Context, t render.Target) error {
	if err := v.check(); err != nil {
		return err
	}
	err := v.Client.KVv2(t.Mount).DeleteMetadata(ctx, t.Path)
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return nil
	}
	return err
}
