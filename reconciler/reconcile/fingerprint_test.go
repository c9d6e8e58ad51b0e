package reconcile_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/target"
)

// TestTheFingerprintSparesOnlyWhatCertfleetWrote: the inventory records
// the fingerprint of the bundle certfleet wrote, and a pass takes a Secret
// holding exactly those bytes for one whose key matches without parsing
// it. Every other content of a Secret that keeps certfleet's marks — a
// planted key, a swapped tls.crt with its data-hash annotation forged to
// match, a changed ca.crt — is still seen and repaired.
func TestTheFingerprintSparesOnlyWhatCertfleetWrote(t *testing.T) {
	e, inv := issued(t)
	s := e.secret(alpha, "payments", "api-tls")
	wrote := target.Bundle{Cert: s.Data["tls.crt"], Key: s.Data["tls.key"], CA: s.Data["ca.crt"]}
	if got := inv["payments/api"]; got == nil || got.Fingerprint != wrote.Fingerprint() {
		t.Fatalf("the inventory records fingerprint %v, want the written bundle's %s", got, wrote.Fingerprint())
	}
	if rep := e.run(e.api()); len(rep.Actions) != 0 || len(rep.Failures) != 0 {
		t.Fatalf("a no-op pass: actions %v, failures %v", rep.Actions, rep.Failures)
	}
	if bytes.Contains(e.audit.Bytes(), []byte(wrote.Fingerprint())) {
		t.Error("the audit log holds the fingerprint")
	}

	other := e.foreignBundle()
	tests := []struct {
		name   string
		edit   func(data map[string][]byte, annotations map[string]string)
		reason decide.Reason
	}{
		{name: "a planted key (valid, another certificate's)", reason: decide.KeyMismatch,
			edit: func(data map[string][]byte, _ map[string]string) { data["tls.key"] = other.Key }},
		{name: "another tls.crt, its data-hash annotation forged to match", reason: decide.KeyMismatch,
			edit: func(data map[string][]byte, a map[string]string) {
				data["tls.crt"] = other.Cert
				a[target.AnnDataHash] = target.Bundle{Cert: data["tls.crt"], CA: data["ca.crt"]}.DataHash()
			}},
		{name: "another ca.crt", reason: decide.ModifiedOutOfBand,
			edit: func(data map[string][]byte, _ map[string]string) { data["ca.crt"] = other.CA }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			s := e.secret(alpha, "payments", "api-tls")
			tt.edit(s.Data, s.Annotations)
			e.update(alpha, s)
			rep := e.run(e.api())
			if rep.Reasons[tt.reason] != 1 || len(rep.Actions) == 0 || len(rep.Failures) != 0 {
				t.Fatalf("reasons %v, actions %v, failures %v; want one %s, repaired", rep.Reasons, rep.Actions, rep.Failures, tt.reason)
			}
			repaired := e.secret(alpha, "payments", "api-tls")
			e.leaf(repaired.Data["tls.crt"], repaired.Data["tls.key"], repaired.Data["ca.crt"]) // its key belongs to it, and it chains
			if bytes.Equal(repaired.Data["tls.key"], other.Key) {
				t.Error("the planted key is still there")
			}
			if rep := e.run(e.api()); len(rep.Actions) != 0 {
				t.Errorf("after the repair: actions %v, want none", rep.Actions)
			}
		})
	}
}

// TestAnInventoryWithoutFingerprintsStillChecksKeys: entries recorded
// before fingerprints existed (or by an older certfleet) have every key
// checked in full: a no-op stays a no-op, and a planted key is found.
func TestAnInventoryWithoutFingerprintsStillChecksKeys(t *testing.T) {
	e, inv := issued(t)
	ctx := context.Background()
	for _, en := range inv {
		en.Fingerprint = ""
	}
	if failed := inventory.Save(ctx, e.backend, "", inv, []string{"payments/api"}); len(failed) > 0 {
		t.Fatal(failed)
	}
	if inv, err := inventory.Load(ctx, e.backend); err != nil || inv["payments/api"].Fingerprint != "" {
		t.Fatalf("the inventory still holds a fingerprint (%v)", err)
	}
	if rep := e.run(e.api()); len(rep.Actions) != 0 || len(rep.Reasons) != 1 || rep.Reasons[decide.InSync] == 0 {
		t.Fatalf("a no-op pass: actions %v, reasons %v", rep.Actions, rep.Reasons)
	}
	s := e.secret(beta, "payments", "api-tls")
	s.Data["tls.key"] = e.foreignBundle().Key
	e.update(beta, s)
	if rep := e.run(e.api()); rep.Reasons[decide.KeyMismatch] != 1 || len(rep.Actions) == 0 {
		t.Fatalf("a planted key: reasons %v, actions %v; want one KeyMismatch, repaired", rep.Reasons, rep.Actions)
	}
	repaired := e.secret(beta, "payments", "api-tls")
	e.leaf(repaired.Data["tls.crt"], repaired.Data["tls.key"], repaired.Data["ca.crt"])
}

// issued is a new env where apiCert was issued, and its inventory.
func issued(t *testing.T) (*env, map[string]*inventory.Entry) {
	t.Helper()
	e := newEnv(t)
	e.run(e.api())
	inv, err := inventory.Load(context.Background(), e.backend)
	if err != nil {
		t.Fatal(err)
	}
	return e, inv
}

// update writes s back to cluster c as it is, as someone editing it would.
func (e *env) update(c *testbed.Cluster, s *corev1.Secret) {
	e.t.Helper()
	if _, err := clientset(e.t, c).CoreV1().Secrets(s.Namespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// foreignBundle is a valid bundle certfleet never wrote: a key, a
// certificate of it under a CA of someone else's.
func (e *env) foreignBundle() target.Bundle {
	e.t.Helper()
	ca, err := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "someone else"}, TTL: time.Hour, MaxPathLength: -1, Now: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	key, _ := pki.GenerateKey("ECDSA", 256)
	csr, _ := pki.CSR(key, pki.Request{DNSNames: []string{"api.payments.svc.cluster.local"}})
	parsed, _ := pki.ParseCSR(csr)
	leaf, err := ca.Sign(parsed, pki.Profile{AllowAnyName: true}, time.Hour, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKey(key, "PKCS8")
	return target.Bundle{Cert: pki.EncodeCertificate(leaf), Key: keyPEM, CA: pki.EncodeCertificate(ca.Cert)}
}
