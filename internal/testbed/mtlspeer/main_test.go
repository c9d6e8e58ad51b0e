package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned returns a certificate and its key, PEM.
func selfSigned(t *testing.T, n int64) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "peer"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestATornReadKeepsWhatWasInUse: a certificate read with another
// certificate's key (a write caught half done) or a bundle with no
// certificate keeps the previous pair and pool, and the next read that
// finds matching files takes them.
func TestATornReadKeepsWhatWasInUse(t *testing.T) {
	dir := t.TempDir()
	crtA, keyA := selfSigned(t, 1)
	crtB, keyB := selfSigned(t, 2)
	write(t, dir, "tls.crt", crtA)
	write(t, dir, "tls.key", keyA)
	write(t, dir, "ca.crt", crtA)
	f := &files{certDir: dir, caFile: filepath.Join(dir, "ca.crt")}
	if err := f.reload(); err != nil || f.serial != "01" {
		t.Fatalf("first load: serial %q, %v", f.serial, err)
	}
	write(t, dir, "tls.crt", crtB) // the key is still A's
	write(t, dir, "ca.crt", []byte("-----BEGIN CERT"))
	if _, serial, pool := f.current(); serial != "01" || pool == nil || f.TornReads != 2 {
		t.Fatalf("torn read: serial %q, torn reads %d; want the previous pair (01) kept and two torn reads", serial, f.TornReads)
	}
	write(t, dir, "tls.key", keyB)
	write(t, dir, "ca.crt", crtB)
	if _, serial, _ := f.current(); serial != "02" || f.Reloads != 4 {
		t.Fatalf("after the write: serial %q, reloads %d; want 02 and four reloads", serial, f.Reloads)
	}
}

// TestAFirstLoadThatDoesNotMatchFails: with nothing to keep, a mismatched
// pair is an error, so the peer does not start half configured.
func TestAFirstLoadThatDoesNotMatchFails(t *testing.T) {
	dir := t.TempDir()
	crtA, _ := selfSigned(t, 1)
	_, keyB := selfSigned(t, 2)
	write(t, dir, "tls.crt", crtA)
	write(t, dir, "tls.key", keyB)
	write(t, dir, "ca.crt", crtA)
	if err := (&files{certDir: dir, caFile: filepath.Join(dir, "ca.crt")}).reload(); err == nil {
		t.Fatal("a mismatched first pair loaded")
	}
}
