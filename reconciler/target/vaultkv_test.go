package target_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// kvMount is the KV v2 engine a Vault dev server mounts.
const kvMount = "secret"

// kvBed is one Vault shared by a test's cases, each at a path of its own.
type kvBed struct {
	client *vaultapi.Client
	is     *issuer
	n      atomic.Int64
}

func newKVBed(t *testing.T) *kvBed {
	t.Helper()
	v := testbed.NewVault(t)
	c, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	return &kvBed{client: c, is: newIssuer(t)}
}

func (b *kvBed) kv() *vaultapi.KVv2 { return b.client.KVv2(kvMount) }

func (b *kvBed) place() render.Target {
	p := fmt.Sprintf("tls/api-%d", b.n.Add(1))
	return render.Target{Address: render.Address{Kind: render.VaultKV, Key: "vault/" + kvMount + "/" + p, Mount: kvMount, Path: p}}
}

func (b *kvBed) bundle(t *testing.T, r pki.Request) target.Bundle {
	if r.CommonName == "" {
		r = pki.Request{CommonName: "api.example.test", DNSNames: []string{"api.example.test"}}
	}
	return b.is.bundle(t, r)
}

func (b *kvBed) observe(t *testing.T, tg render.Target) *target.Observed {
	t.Helper()
	o, err := (&target.VaultKV{Client: b.client}).Observe(context.Background(), &tg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// written has certfleet write bundle for certificate id where nothing is,
// and returns the observation a later pass makes of it.
func (b *kvBed) written(t *testing.T, tg render.Target, bundle target.Bundle, id string) *target.Observed {
	t.Helper()
	if err := (&target.VaultKV{Client: b.client}).Write(context.Background(), tg, bundle, meta(id), b.observe(t, tg)); err != nil {
		t.Fatal(err)
	}
	o := b.observe(t, tg)
	if !o.Exists || !o.OwnedBy(id) || o.Version == "" || o.Version == "0" {
		t.Fatalf("the written secret is observed as exists %v, owned by %s %v, version %q", o.Exists, id, o.OwnedBy(id), o.Version)
	}
	return o
}

// handPut writes a version as a person with the vault CLI would.
func (b *kvBed) handPut(t *testing.T, tg render.Target, bundle target.Bundle) {
	t.Helper()
	if _, err := b.kv().Put(context.Background(), tg.Path, map[string]any{"tls.crt": string(bundle.Cert), "tls.key": string(bundle.Key)}); err != nil {
		t.Fatal(err)
	}
}

func (b *kvBed) cert(t *testing.T, tg render.Target) []byte {
	t.Helper()
	s, err := b.kv().Get(context.Background(), tg.Path)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Data["tls.crt"].(string)
	return []byte(c)
}

func (b *kvBed) customMetadata(t *testing.T, tg render.Target) map[string]any {
	t.Helper()
	m, err := b.kv().GetMetadata(context.Background(), tg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return m.CustomMetadata
}

func TestVaultKVWrite(t *testing.T) {
	b := newKVBed(t)
	ctx := context.Background()
	kv := &target.VaultKV{Client: b.client}

	t.Run("a hand edit between observe and write makes the write fail, and the hand edit survives", func(t *testing.T) {
		tg := b.place()
		o := b.written(t, tg, b.bundle(t, pki.Request{}), "team-a/api")
		edit := b.bundle(t, pki.Request{})
		b.handPut(t, tg, edit)
		err := kv.Write(ctx, tg, b.bundle(t, pki.Request{}), meta("team-a/api"), o)
		if !errors.Is(err, target.ErrConflict) {
			t.Fatalf("Write = %v, want ErrConflict", err)
		}
		if !bytes.Equal(b.cert(t, tg), edit.Cert) {
			t.Error("the hand edit was overwritten")
		}
	})

	t.Run("a secret written after it was observed absent is not overwritten", func(t *testing.T) {
		tg := b.place()
		o := b.observe(t, tg)
		if o.Exists || o.Version != "0" {
			t.Fatalf("observed exists %v, version %q before anything was written", o.Exists, o.Version)
		}
		theirs := b.bundle(t, pki.Request{})
		b.handPut(t, tg, theirs)
		if err := kv.Write(ctx, tg, b.bundle(t, pki.Request{}), meta("team-a/api"), o); !errors.Is(err, target.ErrConflict) {
			t.Fatalf("Write = %v, want ErrConflict", err)
		}
		if !bytes.Equal(b.cert(t, tg), theirs.Cert) {
			t.Error("the secret that appeared was overwritten")
		}
	})

	t.Run("an unmarked secret is not overwritten unless adopted, and adopting keeps others' metadata", func(t *testing.T) {
		tg := b.place()
		theirs := b.bundle(t, pki.Request{})
		b.handPut(t, tg, theirs)
		if err := b.kv().PatchMetadata(ctx, tg.Path, vaultapi.KVMetadataPatchInput{CustomMetadata: map[string]any{"owner": "team-x"}}); err != nil {
			t.Fatal(err)
		}
		o := b.observe(t, tg)
		if !o.Exists || o.Managed {
			t.Fatalf("the hand-made secret is observed as exists %v, managed %v", o.Exists, o.Managed)
		}
		if err := kv.Write(ctx, tg, b.bundle(t, pki.Request{}), meta("team-a/api"), o); !errors.Is(err, target.ErrNotOwned) {
			t.Fatalf("Write = %v, want ErrNotOwned", err)
		}
		if !bytes.Equal(b.cert(t, tg), theirs.Cert) {
			t.Fatal("the unmarked secret was overwritten")
		}

		ours := b.bundle(t, pki.Request{})
		if err := (&target.VaultKV{Client: b.client, Adopt: true}).Write(ctx, tg, ours, meta("team-a/api"), o); err != nil {
			t.Fatalf("adopting: %v", err)
		}
		if !bytes.Equal(b.cert(t, tg), ours.Cert) {
			t.Error("the adopted secret does not hold our certificate")
		}
		cm := b.customMetadata(t, tg)
		if cm["owner"] != "team-x" || cm[target.LabelManagedBy] != target.ManagedByValue || cm[target.AnnCertificateID] != "team-a/api" {
			t.Errorf("custom metadata after adopting: %v", cm)
		}
	})

	t.Run("another certificate's secret is not overwritten", func(t *testing.T) {
		tg := b.place()
		first := b.bundle(t, pki.Request{})
		o := b.written(t, tg, first, "team-a/api")
		if err := kv.Write(ctx, tg, b.bundle(t, pki.Request{}), meta("team-b/api"), o); !errors.Is(err, target.ErrNotOwned) {
			t.Fatalf("Write = %v, want ErrNotOwned", err)
		}
		if !bytes.Equal(b.cert(t, tg), first.Cert) {
			t.Error("team-a/api's secret was overwritten by team-b/api")
		}
	})

	t.Run("a rewrite keeps others' custom metadata and drops certfleet's keys that no longer apply", func(t *testing.T) {
		tg := b.place()
		o := b.written(t, tg, b.bundle(t, pki.Request{CommonName: "api.example.test", DNSNames: []string{"api.example.test"}, IPAddresses: []string{"10.0.0.1"}}), "team-a/api")
		if o.Annotations[target.AnnIPSANs] != "10.0.0.1" {
			t.Fatalf("ip-sans %q after the first write", o.Annotations[target.AnnIPSANs])
		}
		if err := b.kv().PatchMetadata(ctx, tg.Path, vaultapi.KVMetadataPatchInput{CustomMetadata: map[string]any{"owner": "team-x"}}); err != nil {
			t.Fatal(err)
		}
		if err := kv.Write(ctx, tg, b.bundle(t, pki.Request{}), meta("team-a/api"), o); err != nil {
			t.Fatal(err)
		}
		cm := b.customMetadata(t, tg)
		if cm["owner"] != "team-x" {
			t.Errorf("another tool's metadata key was dropped: %v", cm)
		}
		if v, ok := cm[target.AnnIPSANs]; ok {
			t.Errorf("ip-sans is still %v for a certificate without IP SANs", v)
		}
	})
}

func TestVaultKVDelete(t *testing.T) {
	b := newKVBed(t)
	ctx := context.Background()
	kv := &target.VaultKV{Client: b.client}

	t.Run("a prune deletes only the latest version, and a later write follows it", func(t *testing.T) {
		tg := b.place()
		first := b.bundle(t, pki.Request{})
		o := b.written(t, tg, first, "team-a/api")
		if err := kv.Write(ctx, tg, b.bundle(t, pki.Request{}), meta("team-a/api"), o); err != nil {
			t.Fatal(err)
		}
		o = b.observe(t, tg)
		if err := kv.Delete(ctx, tg, "team-a/api", o); err != nil {
			t.Fatal(err)
		}
		if after := b.observe(t, tg); after.Exists {
			t.Error("the pruned secret is still observed as existing")
		}
		old, err := b.kv().GetVersion(ctx, tg.Path, 1)
		if err != nil {
			t.Fatalf("version 1 after the prune: %v", err)
		}
		if c, _ := old.Data["tls.crt"].(string); c != string(first.Cert) {
			t.Error("version 1 no longer holds the first certificate")
		}
		if err := kv.Delete(ctx, tg, "team-a/api", o); err != nil {
			t.Errorf("pruning a secret with no live version: %v", err)
		}
		// Declared again: the deleted version is still the current one,
		// which a check-and-set write must name.
		again := b.bundle(t, pki.Request{})
		if err := kv.Write(ctx, tg, again, meta("team-a/api"), b.observe(t, tg)); err != nil {
			t.Fatalf("writing after the prune: %v", err)
		}
		if !bytes.Equal(b.cert(t, tg), again.Cert) {
			t.Error("the secret does not hold the certificate written after the prune")
		}
	})

	t.Run("DestroyHistory removes the secret with every version", func(t *testing.T) {
		tg := b.place()
		o := b.written(t, tg, b.bundle(t, pki.Request{}), "team-a/api")
		if err := (&target.VaultKV{Client: b.client, DestroyHistory: true}).Delete(ctx, tg, "team-a/api", o); err != nil {
			t.Fatal(err)
		}
		if _, err := b.kv().GetVersion(ctx, tg.Path, 1); !errors.Is(err, vaultapi.ErrSecretNotFound) {
			t.Errorf("version 1 after destroying the history: %v", err)
		}
	})

	t.Run("an unmarked secret is not pruned", func(t *testing.T) {
		tg := b.place()
		theirs := b.bundle(t, pki.Request{})
		b.handPut(t, tg, theirs)
		if err := kv.Delete(ctx, tg, "team-a/api", b.observe(t, tg)); !errors.Is(err, target.ErrTakenOver) {
			t.Fatalf("Delete = %v, want ErrTakenOver", err)
		}
		if !bytes.Equal(b.cert(t, tg), theirs.Cert) {
			t.Error("the unmarked secret was deleted")
		}
	})

	t.Run("a secret whose certificate-id was changed by hand is taken over and survives", func(t *testing.T) {
		tg := b.place()
		first := b.bundle(t, pki.Request{})
		o := b.written(t, tg, first, "team-a/api")
		if err := b.kv().PatchMetadata(ctx, tg.Path, vaultapi.KVMetadataPatchInput{CustomMetadata: map[string]any{target.AnnCertificateID: "team-b/api"}}); err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, tg, "team-a/api", o); !errors.Is(err, target.ErrTakenOver) {
			t.Fatalf("Delete = %v, want ErrTakenOver", err)
		}
		if !bytes.Equal(b.cert(t, tg), first.Cert) {
			t.Error("the taken-over secret was deleted")
		}
	})

	t.Run("a secret with a version written since observed is not pruned", func(t *testing.T) {
		tg := b.place()
		o := b.written(t, tg, b.bundle(t, pki.Request{}), "team-a/api")
		edit := b.bundle(t, pki.Request{})
		b.handPut(t, tg, edit)
		if err := kv.Delete(ctx, tg, "team-a/api", o); !errors.Is(err, target.ErrConflict) {
			t.Fatalf("Delete = %v, want ErrConflict", err)
		}
		if !bytes.Equal(b.cert(t, tg), edit.Cert) {
			t.Error("the version written since was deleted")
		}
	})
}
