package target_test

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/certfleet/certfleet/internal/memsize"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/target"
)

// labelValue is what Kubernetes accepts as a label value.
var labelValue = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)

func TestCertificateLabel(t *testing.T) {
	long := "team-platform-observability/" + strings.Repeat("ingress-gateway-", 4) + "a"
	tests := []struct {
		name string
		id   string
		want string
	}{
		{name: "a cluster-scoped ID is its own label", id: "api", want: "api"},
		{name: "the namespace separator becomes an underscore", id: "team-a/api", want: "team-a_api"},
		{name: "an ID of exactly 63 characters is kept whole", id: "ns/" + strings.Repeat("a", 60), want: "ns_" + strings.Repeat("a", 60)},
		{name: "a longer ID is cut to 63 characters with a hash of the whole ID", id: long, want: "team-platform-observability_ingress-gateway-ingress--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := target.CertificateLabel(tt.id)
			if len(got) > 63 || !labelValue.MatchString(got) {
				t.Errorf("CertificateLabel(%q) = %q is not a label value", tt.id, got)
			}
			if len(tt.id) <= 63 {
				if got != tt.want {
					t.Errorf("CertificateLabel(%q) = %q, want %q", tt.id, got, tt.want)
				}
				return
			}
			if len(got) != 63 || !strings.HasPrefix(got, tt.want) || !regexp.MustCompile(`-[0-9a-f]{10}$`).MatchString(got) {
				t.Errorf("CertificateLabel(%q) = %q, want %q and ten hex digits", tt.id, got, tt.want)
			}
			if again := target.CertificateLabel(tt.id); again != got {
				t.Errorf("not stable: %q then %q", got, again)
			}
		})
	}
	t.Run("two long IDs that differ only past the cut get different labels", func(t *testing.T) {
		a, b := target.CertificateLabel(long+"-one"), target.CertificateLabel(long+"-two")
		if a == b {
			t.Errorf("both are %q", a)
		}
	})
	t.Run("a namespaced ID and a cluster-scoped one with an underscore do not collide", func(t *testing.T) {
		// "_" cannot be in a Kubernetes name, so only a "/" makes one.
		if target.CertificateLabel("a/b") == target.CertificateLabel("a-b") {
			t.Error("a/b and a-b collide")
		}
	})
}

func TestMetaAnnotations(t *testing.T) {
	is := newIssuer(t)
	b := is.bundle(t, pki.Request{CommonName: "api.example.com", DNSNames: []string{"api.example.com", "www.example.com"},
		IPAddresses: []string{"10.0.0.1", "2001:db8::1"}, URIs: []string{"spiffe://example.com/api"}, EmailAddresses: []string{"ops@example.com"}})
	leaf, err := pki.ParseCertificate(b.Cert)
	if err != nil {
		t.Fatal(err)
	}
	paris := time.FixedZone("CET", 3600)
	m := target.Meta{CertificateID: "team-a/api", Issuer: "fleet", RenewAt: time.Date(2026, 3, 21, 13, 0, 0, 0, paris),
		IssueHash: "ih", TemplateHash: "th", Revision: "main@abc"}
	ours := map[string]string{
		target.AnnCertificateID: "team-a/api", target.AnnIssuer: "fleet", target.AnnRenewAt: "2026-03-21T12:00:00Z",
		target.AnnSpecHash: "ih", target.AnnTemplateHash: "th", target.AnnRevision: "main@abc",
	}
	tests := []struct {
		name   string
		bundle target.Bundle
		want   map[string]string
	}{
		{name: "a certificate's names are written in cert-manager's annotations", bundle: b, want: map[string]string{
			target.AnnDataHash: b.DataHash(), target.AnnSerial: pki.Serial(leaf.SerialNumber),
			target.AnnNotAfter: leaf.NotAfter.UTC().Format(time.RFC3339), target.AnnCommonName: "api.example.com",
			target.AnnAltNames: "api.example.com,www.example.com", target.AnnIPSANs: "10.0.0.1,2001:db8::1",
			target.AnnURISANs: "spiffe://example.com/api", target.AnnEmailSANs: "ops@example.com",
		}},
		{name: "an unreadable certificate gets certfleet's annotations only", bundle: target.Bundle{Cert: []byte("garbage")}, want: map[string]string{
			target.AnnDataHash: target.Bundle{Cert: []byte("garbage")}.DataHash(),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := maps.Clone(ours)
			maps.Copy(want, tt.want)
			got := m.Annotations(tt.bundle)
			if !maps.Equal(got, want) {
				t.Errorf("annotations =\n%v\nwant\n%v", got, want)
			}
			for k, v := range got {
				if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, "BEGIN") {
					t.Errorf("annotation %s holds PEM", k)
				}
			}
		})
	}
	t.Run("the data hash covers tls.crt and ca.crt, not the key", func(t *testing.T) {
		other := b
		other.Key = []byte("another key")
		if b.DataHash() != other.DataHash() {
			t.Error("the key changed the data hash")
		}
		other.CA = append([]byte(nil), b.Cert...)
		if b.DataHash() == other.DataHash() {
			t.Error("ca.crt did not change the data hash")
		}
		if (target.Bundle{Cert: []byte("ab"), CA: []byte("c")}).DataHash() == (target.Bundle{Cert: []byte("a"), CA: []byte("bc")}).DataHash() {
			t.Error("moving bytes between tls.crt and ca.crt keeps the hash")
		}
	})
}

func TestObservedOwnedBy(t *testing.T) {
	marked := func(id string) *target.Observed {
		return &target.Observed{Managed: true, Annotations: map[string]string{target.AnnCertificateID: id}}
	}
	tests := []struct {
		name string
		o    *target.Observed
		id   string
		want bool
	}{
		{name: "certfleet's marks for the certificate own it", o: marked("team-a/api"), id: "team-a/api", want: true},
		{name: "another certificate's marks do not", o: marked("team-b/api"), id: "team-a/api"},
		{name: "a certificate-id without the managed-by mark does not", o: &target.Observed{Annotations: map[string]string{target.AnnCertificateID: "team-a/api"}}, id: "team-a/api"},
		{name: "the managed-by mark without a certificate-id does not", o: &target.Observed{Managed: true}, id: "team-a/api"},
		{name: "an empty ID matches nothing, not a missing annotation", o: &target.Observed{Managed: true}, id: ""},
		{name: "no observation owns nothing", o: nil, id: "team-a/api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.OwnedBy(tt.id); got != tt.want {
				t.Errorf("OwnedBy(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

// TestRecordedSparesOnlyTheBundleWritten: a fingerprint the inventory
// recorded settles the key check of exactly the bundle it was made of;
// any other bytes — a planted key, another tls.crt, another ca.crt — are
// left to the full check, which answers as it would have without it.
func TestRecordedSparesOnlyTheBundleWritten(t *testing.T) {
	is := newIssuer(t)
	r := pki.Request{CommonName: "api.example.com", DNSNames: []string{"api.example.com"}}
	written, other := is.bundle(t, r), is.bundle(t, r)
	leaf, err := pki.ParseCertificate(written.Cert)
	if err != nil {
		t.Fatal(err)
	}
	fp := target.FingerprintOf(written, leaf)
	if fp == "" || fp != written.Fingerprint() {
		t.Fatalf("FingerprintOf = %q, want the bundle's fingerprint %q", fp, written.Fingerprint())
	}
	// The observation as a LIST leaves a managed Secret's: leaf parsed, key not checked.
	observe := func(b target.Bundle) *target.Observed {
		o := &target.Observed{Exists: true, Bundle: b, Managed: true}
		if o.Cert, err = target.NewLeaf(b.Cert); err != nil {
			t.Fatal(err)
		}
		return o
	}
	with := func(change func(b *target.Bundle)) target.Bundle {
		b := written
		change(&b)
		return b
	}
	tests := []struct {
		name                 string
		observed             target.Bundle
		fingerprint          string
		wantSettled, wantKey bool
	}{
		{name: "exactly what was written: the key matches, unparsed", observed: written, fingerprint: fp, wantSettled: true, wantKey: true},
		{name: "a planted key (valid, of another certificate) is a mismatch",
			observed: with(func(b *target.Bundle) { b.Key = other.Key }), fingerprint: fp},
		{name: "another tls.crt under the written key is a mismatch",
			observed: with(func(b *target.Bundle) { b.Cert = other.Cert }), fingerprint: fp},
		{name: "another ca.crt is not what was written: checked in full (the key still matches)",
			observed: with(func(b *target.Bundle) { b.CA = other.Cert }), fingerprint: fp, wantKey: true},
		{name: "a byte added to the key's PEM is not what was written",
			observed: with(func(b *target.Bundle) { b.Key = append(slices.Clone(b.Key), '\n') }), fingerprint: fp, wantKey: true},
		{name: "no fingerprint recorded (an older inventory): checked in full", observed: written, wantKey: true},
		{name: "no fingerprint recorded, a planted key: a mismatch", observed: with(func(b *target.Bundle) { b.Key = other.Key })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := observe(tt.observed)
			if got := o.Recorded(tt.fingerprint); got != tt.wantSettled {
				t.Errorf("Recorded = %v, want %v", got, tt.wantSettled)
			}
			if got := o.KeyMatches(); got != tt.wantKey {
				t.Errorf("KeyMatches = %v, want %v", got, tt.wantKey)
			}
			// CheckKeys answers the same.
			o = observe(tt.observed)
			target.CheckKeys(map[string]*target.Observed{"k": o}, map[string]string{"k": tt.fingerprint})
			if got := o.KeyMatches(); got != tt.wantKey {
				t.Errorf("after CheckKeys, KeyMatches = %v, want %v", got, tt.wantKey)
			}
		})
	}

	// A fingerprint is trusted, not checked: so FingerprintOf vouches only
	// for a bundle whose key belongs to its leaf.
	mismatched := with(func(b *target.Bundle) { b.Key = other.Key })
	if got := target.FingerprintOf(mismatched, leaf); got != "" {
		t.Errorf("FingerprintOf a bundle with another certificate's key = %q, want none", got)
	}
	if o := observe(mismatched); !o.Recorded(mismatched.Fingerprint()) || !o.KeyMatches() {
		t.Error("a recorded fingerprint did not spare the key check")
	}
}

func TestFingerprintCoversEveryPart(t *testing.T) {
	b := target.Bundle{Cert: []byte("cert"), Key: []byte("key"), CA: []byte("ca")}
	seen := map[string]string{}
	for name, v := range map[string]target.Bundle{
		"whole":              b,
		"key changed":        {Cert: b.Cert, Key: []byte("kex"), CA: b.CA},
		"cert changed":       {Cert: []byte("cerx"), Key: b.Key, CA: b.CA},
		"ca changed":         {Cert: b.Cert, Key: b.Key, CA: []byte("cx")},
		"a byte moved parts": {Cert: []byte("cer"), Key: b.Key, CA: []byte("tca")},
		"key empty":          {Cert: b.Cert, CA: b.CA},
	} {
		fp := v.Fingerprint()
		if len(fp) != 32 {
			t.Errorf("%s: fingerprint %q, want 32 hex digits", name, fp)
		}
		if was, ok := seen[fp]; ok {
			t.Errorf("%s and %s have the same fingerprint", name, was)
		}
		seen[fp] = name
		if strings.Contains(fp, "key") {
			t.Errorf("%s: the fingerprint holds the key's bytes", name)
		}
	}
}

// TestCheckKeysLeavesOthersUnparsed: CheckKeys settles the keys asked for
// and only those; another's Secret keeps its key unparsed until something
// asks, and then answers as a full check would.
func TestCheckKeysLeavesOthersUnparsed(t *testing.T) {
	is := newIssuer(t)
	r := pki.Request{CommonName: "api.example.com", DNSNames: []string{"api.example.com"}}
	ours, theirs, other := is.bundle(t, r), is.bundle(t, r), is.bundle(t, r)
	theirs.Key = other.Key // a mismatch, for the check on first use to find
	obs := map[string]*target.Observed{}
	for key, b := range map[string]target.Bundle{"ours": ours, "theirs": theirs} {
		o := &target.Observed{Exists: true, Bundle: b}
		o.Cert, _ = target.NewLeaf(b.Cert)
		obs[key] = o
	}
	target.CheckKeys(obs, map[string]string{"ours": ours.Fingerprint(), "absent": ""})
	if !target.KeyChecked(obs["ours"]) || !obs["ours"].KeyMatches() {
		t.Error("the declared target's key is not settled as matching")
	}
	if target.KeyChecked(obs["theirs"]) {
		t.Error("CheckKeys checked the key of a target it was not asked about")
	}
	if obs["theirs"].KeyMatches() || !target.KeyChecked(obs["theirs"]) {
		t.Error("the key checked on first use is not a mismatch")
	}
}

// A pass holds every target's observation at once: an Observed holds the
// target it is of by pointer (it was a 160-byte copy of the desired one)
// and its fields are ordered so that none pads; 352 bytes before.
func TestObservedIsSmall(t *testing.T) {
	var o target.Observed
	if got, want := unsafe.Sizeof(o), uintptr(176); got > want {
		t.Errorf("an Observed is %d bytes, want at most %d", got, want)
	}
	var l target.Leaf
	if got, want := unsafe.Sizeof(l), uintptr(128); got > want {
		t.Errorf("a Leaf is %d bytes, want at most %d", got, want)
	}
}

// A directory observation holds its data hash: 20 hex digits, not a slice
// of a longer encoding that would keep all of it alive (64 bytes). The
// digits take 24 (their size class); the bound leaves the measure room
// for the heap's noise, which at exactly 24 one byte more would fail.
func TestDataHashKeepsItsDigitsOnly(t *testing.T) {
	b := target.Bundle{Cert: []byte("tls.crt"), CA: []byte("ca.crt")}
	if h := b.DataHash(); len(h) != 20 {
		t.Fatalf("DataHash = %q, want 20 hex digits", h)
	}
	if per := memsize.PerItem(100_000, func(int) string { return b.DataHash() }); per > 32 {
		t.Errorf("a data hash keeps %d bytes, want at most 32", per)
	} else {
		t.Logf("a data hash keeps %d bytes", per)
	}
}
