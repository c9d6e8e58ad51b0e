package decide_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// now is the time every decision is made at.
var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// lifetime is the default lifetime of a certificate (90 days): it renews
// at two thirds, 60 days after it was issued.
const lifetime = 90 * day

var errDown = errors.New("connection refused")

// fixture issues real certificates under one test CA.
type fixture struct {
	t  *testing.T
	ca *pki.CA
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca, err := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "Test Root"}, KeyType: "ec", TTL: 1000 * day, MaxPathLength: -1, Now: now.Add(-500 * day)})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ca: ca}
}

// issue makes a bundle for a certificate issued at the given time.
func (f *fixture) issue(at time.Time, ttl time.Duration) target.Bundle {
	f.t.Helper()
	key, err := pki.GenerateKey("ECDSA", 256)
	if err != nil {
		f.t.Fatal(err)
	}
	csrPEM, err := pki.CSR(key, pki.Request{CommonName: "api.example.com", DNSNames: []string{"api.example.com"}})
	if err != nil {
		f.t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		f.t.Fatal(err)
	}
	leaf, err := f.ca.Sign(csr, pki.Profile{AllowAnyName: true}, ttl, at)
	if err != nil {
		f.t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key, "PKCS1")
	if err != nil {
		f.t.Fatal(err)
	}
	return target.Bundle{Cert: pki.EncodeCertificate(leaf), Key: keyPEM, CA: pki.EncodeCertificate(f.ca.Cert)}
}

// catalog holds issuer "fleet" of the fixture's CA: what a delivered
// certificate must chain to before the inventory records it.
func (f *fixture) catalog() *schemas.Catalog {
	c := schemas.NewCatalog()
	c.Authorities["root"] = &schemas.Authority{Metadata: schemas.ObjectMeta{Name: "root"},
		Status: schemas.AuthorityStatus{Certificate: string(pki.EncodeCertificate(f.ca.Cert))}}
	c.Issuers["fleet"] = &schemas.Issuer{Metadata: schemas.ObjectMeta{Name: "fleet"}, Spec: schemas.IssuerSpec{Authority: "root"}}
	return c
}

// recordedAt is an inventory that records what o holds as d's certificate
// (empty when o holds none).
func recordedAt(d *render.Desired, o *target.Observed) map[string]*inventory.Entry {
	if o == nil || o.Cert == nil {
		return map[string]*inventory.Entry{}
	}
	return map[string]*inventory.Entry{d.ID: {ID: d.ID, Serial: pki.Serial(o.Cert.SerialNumber)}}
}

// recorded is an inventory that records b as d's certificate.
func recorded(d *render.Desired, b target.Bundle) map[string]*inventory.Entry {
	c, err := pki.ParseCertificate(b.Cert)
	if err != nil {
		panic(err)
	}
	return map[string]*inventory.Entry{d.ID: {ID: d.ID, Serial: pki.Serial(c.SerialNumber)}}
}

// fresh is a certificate issued a day ago: in sync.
func (f *fixture) fresh() target.Bundle { return f.issue(now.Add(-day), lifetime) }

// delivered is what certfleet wrote for d at tg: b and its metadata.
func (f *fixture) delivered(d *render.Desired, tg render.Target, b target.Bundle) *target.Observed {
	m := target.Meta{CertificateID: d.ID, Issuer: d.Certificate.Spec.Issuer, IssueHash: d.IssueHash, TemplateHash: tg.TemplateHash, Revision: "main@abc"}
	a := m.Annotations(b)
	a[target.LabelManagedBy] = target.ManagedByValue
	return observed(tg, b, a, true)
}

// observed is what a target holding b reads as, parsed the way target does.
func observed(tg render.Target, b target.Bundle, annotations map[string]string, managed bool) *target.Observed {
	o := &target.Observed{Target: &tg, Exists: true, Bundle: b, Annotations: annotations, Managed: managed}
	o.Cert, _ = target.NewLeaf(b.Cert) // the key is checked on first use (KeyMatches)
	return o
}

// plantKey puts a key of no certificate in o's tls.key.
func plantKey(o *target.Observed) {
	k, err := pki.GenerateKey(string(schemas.ECDSA), 256)
	if err != nil {
		panic(err)
	}
	if o.Bundle.Key, err = pki.EncodeKey(k, "PKCS8"); err != nil {
		panic(err)
	}
}

// with changes an observed target.
func with(o *target.Observed, change func(o *target.Observed)) *target.Observed {
	change(o)
	return o
}

func dirTarget(path string) render.Target {
	return render.Target{Address: render.Address{Kind: render.Directory, Path: path, Key: "directory/" + path}, TemplateHash: "template-1"}
}

func kubeTarget(cluster, namespace, name string) render.Target {
	return render.Target{Address: render.KubernetesAddress(cluster, namespace, name), TemplateHash: "template-1"}
}

// desired is a certificate of ID id ("namespace/name" or "name") issued by
// "fleet", delivered to targets.
func desired(id string, change func(*schemas.CertificateSpec), targets ...render.Target) *render.Desired {
	c := &schemas.Certificate{Spec: schemas.CertificateSpec{Issuer: "fleet", DNSNames: []string{"api.example.com"}}}
	if ns, name, ok := strings.Cut(id, "/"); ok {
		c.Metadata.Namespace, c.Metadata.Name = ns, name
	} else {
		c.Metadata.Name = id
	}
	if change != nil {
		change(&c.Spec)
	}
	return &render.Desired{ID: id, Certificate: c, Targets: targets, IssueHash: schemas.IssueHash(&c.Spec)}
}

// observedBy indexes observed targets by key.
func observedBy(os ...*target.Observed) map[string]*target.Observed {
	m := map[string]*target.Observed{}
	for _, o := range os {
		m[o.Target.Key] = o
	}
	return m
}

func reasons(ts []decide.Target) []decide.Reason {
	out := make([]decide.Reason, len(ts))
	for i, t := range ts {
		out[i] = t.Reason
	}
	return out
}

func writes(ts []decide.Target) []bool {
	out := make([]bool, len(ts))
	for i, t := range ts {
		out[i] = t.Write
	}
	return out
}

// TestChain checks each link of the chain on one target, and that each
// wins over the links after it: every case but the first few also carries
// the next link's defect.
func TestChain(t *testing.T) {
	f := newFixture(t)
	tg := dirTarget("/etc/tls/api")
	d := desired("team-a/api", nil, tg)
	other := f.fresh()
	tests := []struct {
		name string
		obs  func() *target.Observed
		want decide.Reason
		// msg is a part of the message the link returns with its reason.
		msg string
		// issue: a new certificate is needed; write: the target is written;
		// source: the target's own certificate is kept and copied.
		issue, write, source bool
	}{
		{name: "a target that holds nothing is Missing",
			obs: func() *target.Observed { return nil }, want: decide.Missing, msg: "but not delivered", issue: true, write: true},
		{name: "a target observed as absent is Missing",
			obs: func() *target.Observed { return &target.Observed{Target: &tg} }, want: decide.Missing, issue: true, write: true},
		{name: "a tls.crt without tls.key is MissingData, before a key mismatch",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.fresh()), func(o *target.Observed) { o.Bundle.Key = nil })
			}, want: decide.MissingData, issue: true, write: true},
		{name: "a target without certfleet's marks is TakenOver, whatever it holds, and left alone",
			obs: func() *target.Observed {
				b := f.fresh()
				b.Cert = []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
				return observed(tg, b, nil, false)
			}, want: decide.TakenOver, msg: "does not carry certfleet's marks"},
		{name: "an unreadable tls.crt is MissingData",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.fresh()), func(o *target.Observed) {
					o.Bundle.Cert, o.Cert = []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"), nil
				})
			}, want: decide.MissingData, issue: true, write: true},
		{name: "a key of another certificate is KeyMismatch, before data certfleet did not write",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.fresh()), func(o *target.Observed) { o.Bundle.Key = other.Key })
			}, want: decide.KeyMismatch, msg: "tls.key does not belong to tls.crt", issue: true, write: true},
		{name: "certfleet's marks on a certificate it did not write is ModifiedOutOfBand",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.fresh()), func(o *target.Observed) { o.Bundle = other; o.Cert, _ = target.NewLeaf(other.Cert) })
			},
			want: decide.ModifiedOutOfBand, issue: true, write: true},
		{name: "a data hash that differs is ModifiedOutOfBand, before an issuer change",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.fresh()), func(o *target.Observed) {
					o.Bundle.CA = []byte("a CA bundle edited by hand")
					o.Annotations[target.AnnIssuer] = "old-issuer"
				})
			}, want: decide.ModifiedOutOfBand, issue: true, write: true},
		{name: "another issuer is IssuerChanged, before a spec change",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.fresh()), func(o *target.Observed) {
					o.Annotations[target.AnnIssuer] = "old-issuer"
					o.Annotations[target.AnnSpecHash] = "old-spec"
				})
			}, want: decide.IssuerChanged, msg: "now names issuer " + d.Certificate.Spec.Issuer, issue: true, write: true},
		{name: "another spec hash is SpecChanged, before expiry",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.issue(now.Add(-lifetime-day), lifetime)), func(o *target.Observed) {
					o.Annotations[target.AnnSpecHash] = "old-spec"
				})
			}, want: decide.SpecChanged, issue: true, write: true},
		{name: "an expired certificate is Expired, before renewal and a template change",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.issue(now.Add(-lifetime-day), lifetime)), func(o *target.Observed) {
					o.Annotations[target.AnnTemplateHash] = "template-0"
				})
			}, want: decide.Expired, issue: true, write: true},
		{name: "a certificate expiring this very second is Expired",
			obs:  func() *target.Observed { return f.delivered(d, tg, f.issue(now.Add(-time.Hour), time.Hour)) },
			want: decide.Expired, msg: "expired " + now.UTC().Format(time.RFC3339), issue: true, write: true},
		{name: "a certificate past its renewal time is Expiring, before a template change",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.issue(now.Add(-61*day), lifetime)), func(o *target.Observed) {
					o.Annotations[target.AnnTemplateHash] = "template-0"
				})
			}, want: decide.Expiring, msg: "past its renewal time; expires " + now.Add(-61*day+lifetime).UTC().Format(time.RFC3339) + " (in 696h0m0s)", issue: true, write: true},
		{name: "only another template is TemplateChanged: rewritten with the same certificate",
			obs: func() *target.Observed {
				return with(f.delivered(d, tg, f.fresh()), func(o *target.Observed) { o.Annotations[target.AnnTemplateHash] = "template-0" })
			}, want: decide.TemplateChanged, write: true, source: true},
		{name: "a healthy certificate is InSync: nothing to do",
			obs:  func() *target.Observed { return f.delivered(d, tg, f.issue(now.Add(-59*day), lifetime)) },
			want: decide.InSync, source: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.obs()
			obs := map[string]*target.Observed{}
			if o != nil {
				obs[tg.Key] = o
			}
			dec := decide.Decide(decide.Input{Desired: []*render.Desired{d}, Observed: obs, Now: now, Inventory: recordedAt(d, o), Catalog: f.catalog()})
			if len(dec.Certificates) != 1 || len(dec.Certificates[0].Targets) != 1 {
				t.Fatalf("decisions = %+v", dec)
			}
			c := dec.Certificates[0]
			td := c.Targets[0]
			if td.Reason != tt.want || c.Reason != tt.want {
				t.Errorf("target %s, certificate %s; want %s", td.Reason, c.Reason, tt.want)
			}
			if !strings.Contains(td.Message, tt.msg) || c.Message != td.Message || (td.Reason != decide.InSync) != (td.Message != "") {
				t.Errorf("target message %q, certificate message %q; want one message containing %q (none when InSync)", td.Message, c.Message, tt.msg)
			}
			if c.Issue != tt.issue || td.Write != tt.write {
				t.Errorf("Issue %v Write %v; want %v %v", c.Issue, td.Write, tt.issue, tt.write)
			}
			if (c.Source != nil) != tt.source || tt.source && c.Source != o {
				t.Errorf("Source = %v, want the target's own: %v", c.Source, tt.source)
			}
			if td.Observed != o || td.Target.Key != tg.Key {
				t.Errorf("the decision does not carry the target and what it holds")
			}
			if tt.source {
				if want := decide.RenewAt(d, o.Cert.NotBefore, o.Cert.NotAfter, 0); !c.RenewAt.Equal(want) {
					t.Errorf("RenewAt = %s, want %s", c.RenewAt, want)
				}
			} else if !c.RenewAt.IsZero() {
				t.Errorf("RenewAt = %s with no certificate kept", c.RenewAt)
			}
			if len(dec.Orphans) != 0 || len(dec.Unmanaged) != 0 {
				t.Errorf("orphans %v, unmanaged %v", dec.Orphans, dec.Unmanaged)
			}
		})
	}
}

// TestChainAgainstTheDirectoryTarget decides on what the directory target
// really wrote and read back: the metadata Write records is what the chain
// reads.
func TestChainAgainstTheDirectoryTarget(t *testing.T) {
	f := newFixture(t)
	dir := &target.Directory{Root: t.TempDir()}
	tg := dirTarget("api")
	d := desired("team-a/api", nil, tg)
	b := f.fresh()
	leaf, _ := pki.ParseCertificate(b.Cert)
	if err := dir.Write(tg, b, target.Meta{CertificateID: d.ID, Issuer: "fleet", IssueHash: d.IssueHash, TemplateHash: tg.TemplateHash,
		RenewAt: decide.RenewAt(d, leaf.NotBefore, leaf.NotAfter, 0)}); err != nil {
		t.Fatal(err)
	}
	o, err := dir.Observe(&tg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		d    *render.Desired
		want decide.Reason
	}{
		{name: "what was written for the certificate is InSync", d: d, want: decide.InSync},
		{name: "the same delivery for another issuer is IssuerChanged", d: desired("team-a/api", func(s *schemas.CertificateSpec) { s.Issuer = "other" }, tg), want: decide.IssuerChanged},
		{name: "the same delivery for other names is SpecChanged", d: desired("team-a/api", func(s *schemas.CertificateSpec) { s.DNSNames = []string{"www.example.com"} }, tg), want: decide.SpecChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := decide.Decide(decide.Input{Desired: []*render.Desired{tt.d}, Observed: observedBy(o), Now: now, Inventory: recordedAt(tt.d, o)})
			if got := dec.Certificates[0].Targets[0].Reason; got != tt.want {
				t.Errorf("reason %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRenewalTime(t *testing.T) {
	f := newFixture(t)
	tg := dirTarget("/etc/tls/api")
	d := desired("team-a/api", nil, tg)
	b := f.issue(now.Add(-50*day), lifetime)
	o := f.delivered(d, tg, b)
	plain := decide.RenewAt(d, o.Cert.NotBefore, o.Cert.NotAfter, 0)
	jittered := decide.RenewAt(d, o.Cert.NotBefore, o.Cert.NotAfter, time.Hour)
	if want := schemas.RenewalTime(o.Cert.NotBefore, o.Cert.NotAfter, "", nil); !plain.Equal(want) {
		t.Fatalf("RenewAt with no jitter = %s, want the plain renewal time %s", plain, want)
	}
	if want := o.Cert.NotAfter.Add(-o.Cert.NotAfter.Sub(o.Cert.NotBefore) / 3).Truncate(time.Second); !plain.Equal(want) {
		t.Fatalf("RenewAt = %s, want two thirds of the lifetime, %s", plain, want)
	}
	if jitter := plain.Sub(jittered); jitter < 2*time.Second || jitter > time.Hour {
		t.Fatalf("jitter = %s, want in [2s, 1h]: the cases below need it", jitter)
	}
	renewBefore := desired("team-a/api", func(s *schemas.CertificateSpec) { s.RenewBefore = "240h" }, tg)
	tests := []struct {
		name      string
		d         *render.Desired
		now       time.Time
		maxJitter time.Duration
		want      decide.Reason
		// wantRenewAt is the certificate's renewal time when it is kept.
		wantRenewAt time.Time
	}{
		{name: "a second before the renewal time is InSync", d: d, now: plain.Add(-time.Second), want: decide.InSync, wantRenewAt: plain},
		{name: "at the renewal time is Expiring", d: d, now: plain, want: decide.Expiring},
		{name: "with no jitter, a second before the jittered time is InSync", d: d, now: jittered.Add(-time.Second), want: decide.InSync, wantRenewAt: plain},
		{name: "with jitter, a second before the plain renewal time is already Expiring", d: d, now: plain.Add(-time.Second), maxJitter: time.Hour, want: decide.Expiring},
		{name: "with jitter, a second before the jittered time is InSync", d: d, now: jittered.Add(-time.Second), maxJitter: time.Hour, want: decide.InSync, wantRenewAt: jittered},
		{name: "with jitter, at the jittered time is Expiring", d: d, now: jittered, maxJitter: time.Hour, want: decide.Expiring},
		{name: "renewBefore moves the renewal later: past two thirds is still InSync", d: renewBefore, now: plain.Add(time.Hour), want: decide.InSync,
			wantRenewAt: o.Cert.NotAfter.Add(-240 * time.Hour)},
		{name: "renewBefore: inside its window is Expiring", d: renewBefore, now: o.Cert.NotAfter.Add(-240 * time.Hour), want: decide.Expiring},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.delivered(tt.d, tg, b)
			c := decide.Decide(decide.Input{Desired: []*render.Desired{tt.d}, Observed: observedBy(o), Now: tt.now, MaxJitter: tt.maxJitter,
				Inventory: recordedAt(tt.d, o)}).Certificates[0]
			if c.Reason != tt.want {
				t.Fatalf("reason %s, want %s", c.Reason, tt.want)
			}
			if c.Issue != (tt.want == decide.Expiring) {
				t.Errorf("Issue = %v", c.Issue)
			}
			if !c.RenewAt.Equal(tt.wantRenewAt) {
				t.Errorf("RenewAt = %s, want %s", c.RenewAt, tt.wantRenewAt)
			}
		})
	}
}

// TestRenewalWindow checks how the window an ACME CA suggests (ARI) moves
// the renewal time: earlier when it comes first, never later.
func TestRenewalWindow(t *testing.T) {
	f := newFixture(t)
	tg := dirTarget("/etc/tls/api")
	d := desired("team-a/api", nil, tg)
	b := f.issue(now.Add(-50*day), lifetime) // two thirds is 10 days from now
	o := f.delivered(d, tg, b)
	serial := pki.Serial(o.Cert.SerialNumber)
	twoThirds := decide.RenewAt(d, o.Cert.NotBefore, o.Cert.NotAfter, 0)
	// The point of a window the certificate's ID picks, as RenewAtWithin does.
	pick := func(w decide.Window) time.Time {
		return w.Start.Add(schemas.Jitter(d.ID, w.End.Sub(w.Start))).Truncate(time.Second)
	}
	early := decide.Window{Start: now.Add(2 * day), End: now.Add(4 * day)}
	late := decide.Window{Start: twoThirds.Add(day), End: twoThirds.Add(3 * day)}
	revoked := decide.Window{Start: now.Add(-time.Hour), End: now.Add(-time.Hour + time.Second)}
	straddling := decide.Window{Start: twoThirds.Add(-day), End: twoThirds.Add(day)}
	tests := []struct {
		name    string
		windows map[string]decide.Window
		now     time.Time
		want    decide.Reason
		// wantRenewAt is the certificate's renewal time when it is kept.
		wantRenewAt time.Time
		wantMsg     string
	}{
		{name: "no window: two thirds of the lifetime, unchanged", now: now, want: decide.InSync, wantRenewAt: twoThirds},
		{name: "no window: at two thirds it renews", now: twoThirds, want: decide.Expiring, wantMsg: "past its renewal time"},
		{name: "a window for another serial changes nothing", windows: map[string]decide.Window{"01:02": early}, now: now,
			want: decide.InSync, wantRenewAt: twoThirds},
		{name: "a window earlier than two thirds: kept before its pick", windows: map[string]decide.Window{serial: early},
			now: pick(early).Add(-time.Second), want: decide.InSync, wantRenewAt: pick(early)},
		{name: "a window earlier than two thirds: renews in the window", windows: map[string]decide.Window{serial: early},
			now: pick(early), want: decide.Expiring, wantMsg: "inside the renewal window its CA suggests (ARI)"},
		{name: "a window in the past (a revoked certificate): renews now", windows: map[string]decide.Window{serial: revoked},
			now: now, want: decide.Expiring, wantMsg: "inside the renewal window its CA suggests (ARI)"},
		{name: "a window later than two thirds: two thirds still rules", windows: map[string]decide.Window{serial: late},
			now: twoThirds.Add(-time.Second), want: decide.InSync, wantRenewAt: twoThirds},
		{name: "a window later than two thirds: renews at two thirds", windows: map[string]decide.Window{serial: late},
			now: twoThirds, want: decide.Expiring, wantMsg: "past its renewal time"},
		{name: "a window around two thirds whose pick falls after it: two thirds still rules", windows: map[string]decide.Window{serial: straddling},
			now: twoThirds.Add(-time.Second), want: decide.InSync, wantRenewAt: twoThirds},
		{name: "an empty window (end not after start) is ignored", windows: map[string]decide.Window{serial: {Start: now, End: now}},
			now: now, want: decide.InSync, wantRenewAt: twoThirds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decide.Decide(decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(o), Now: tt.now,
				Inventory: recordedAt(d, o), Windows: tt.windows}).Certificates[0]
			if c.Reason != tt.want {
				t.Fatalf("reason %s (%s), want %s", c.Reason, c.Message, tt.want)
			}
			if c.Issue != (tt.want == decide.Expiring) {
				t.Errorf("Issue = %v", c.Issue)
			}
			if !c.RenewAt.Equal(tt.wantRenewAt) {
				t.Errorf("RenewAt = %s, want %s", c.RenewAt, tt.wantRenewAt)
			}
			if !strings.HasPrefix(c.Message, tt.wantMsg) {
				t.Errorf("message %q, want it to start %q", c.Message, tt.wantMsg)
			}
		})
	}
	if !pick(straddling).After(twoThirds) || !pick(early).After(now) {
		t.Errorf("the cases above need the pick in the straddling window after two thirds (%s) and the early one after now (%s)",
			pick(straddling), pick(early))
	}
}

// want is a certificate's expected decision; target indexes refer to the
// certificate's targets, -1 is none.
type want struct {
	reason  decide.Reason
	targets []decide.Reason
	writes  []bool
	issue   bool
	source  int
	reuse   int
	record  bool
}

func serialOf(b target.Bundle) string {
	c, err := pki.ParseCertificate(b.Cert)
	if err != nil {
		panic(err)
	}
	return pki.Serial(c.SerialNumber)
}

func checkCertificate(t *testing.T, c decide.Certificate, w want) {
	t.Helper()
	if c.Reason != w.reason {
		t.Errorf("reason %s, want %s", c.Reason, w.reason)
	}
	if got := reasons(c.Targets); !slices.Equal(got, w.targets) {
		t.Errorf("target reasons %v, want %v", got, w.targets)
	}
	if got := writes(c.Targets); !slices.Equal(got, w.writes) {
		t.Errorf("writes %v, want %v", got, w.writes)
	}
	if c.Issue != w.issue {
		t.Errorf("Issue = %v, want %v", c.Issue, w.issue)
	}
	if c.Record != w.record {
		t.Errorf("Record = %v, want %v", c.Record, w.record)
	}
	pick := func(i int) *target.Observed {
		if i < 0 {
			return nil
		}
		if c.Targets[i].Observed == nil {
			t.Fatalf("target %d holds nothing to pick", i)
		}
		return c.Targets[i].Observed
	}
	if c.Source != pick(w.source) {
		t.Errorf("Source = %v, want target %d's", c.Source, w.source)
	}
	if c.ReuseKey != pick(w.reuse) {
		t.Errorf("ReuseKey = %v, want target %d's", c.ReuseKey, w.reuse)
	}
}

func TestCertificate(t *testing.T) {
	f := newFixture(t)
	a, b, c := dirTarget("/a"), kubeTarget("eu", "web", "api-tls"), kubeTarget("us", "web", "api-tls")
	d := desired("team-a/api", nil, a, b, c)
	healthy := f.fresh()
	renewing := f.issue(now.Add(-61*day), lifetime)
	future, past := now.Add(time.Minute), now.Add(-time.Minute)
	never := func(s *schemas.CertificateSpec) {
		s.PrivateKey = &schemas.PrivateKey{RotationPolicy: schemas.RotationNever}
	}
	dNever := desired("team-a/api", never, a, b, c)
	tests := []struct {
		name string
		in   decide.Input
		want want
	}{
		{name: "a healthy copy heals a missing target without issuing, and only that target is written",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy), f.delivered(d, c, healthy))},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.InSync, decide.Missing, decide.InSync},
				writes: []bool{false, true, false}, source: 0, reuse: -1}},
		{name: "a healthy copy heals a target modified out of band without issuing",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy),
				with(f.delivered(d, b, healthy), func(o *target.Observed) { o.Bundle.CA = []byte("edited by hand") }), f.delivered(d, c, healthy))},
			want: want{reason: decide.ModifiedOutOfBand, targets: []decide.Reason{decide.InSync, decide.ModifiedOutOfBand, decide.InSync},
				writes: []bool{false, true, false}, source: 0, reuse: -1}},
		{name: "the first healthy target is the source, even when only its template changed",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(
				with(f.delivered(d, a, healthy), func(o *target.Observed) { o.Annotations[target.AnnTemplateHash] = "old" }), f.delivered(d, c, healthy))},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.TemplateChanged, decide.Missing, decide.InSync},
				writes: []bool{true, true, false}, source: 0, reuse: -1}},
		{name: "with no healthy copy anywhere a new certificate is issued for every target",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(with(f.delivered(d, a, healthy), plantKey))},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.KeyMismatch, decide.Missing, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "a renewal on one target issues and rewrites every target, the healthy ones too",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy), f.delivered(d, b, renewing), f.delivered(d, c, healthy))},
			want: want{reason: decide.Expiring, targets: []decide.Reason{decide.InSync, decide.Expiring, decide.InSync},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "a spec change issues and rewrites every target",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(
				f.delivered(d, a, healthy), f.delivered(d, b, healthy),
				with(f.delivered(d, c, healthy), func(o *target.Observed) { o.Annotations[target.AnnSpecHash] = "old" }))},
			want: want{reason: decide.SpecChanged, targets: []decide.Reason{decide.InSync, decide.InSync, decide.SpecChanged},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "the certificate's reason is its most urgent target's: Expired before Missing",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, b, f.issue(now.Add(-lifetime-day), lifetime)))},
			want: want{reason: decide.Expired, targets: []decide.Reason{decide.Missing, decide.Expired, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "an unreachable target (by key) is never written; the others are issued for",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, renewing), f.delivered(d, c, renewing)),
				Unobservable: map[string]error{b.Key: errDown}},
			want: want{reason: decide.Expiring, targets: []decide.Reason{decide.Expiring, decide.Unreachable, decide.Expiring},
				writes: []bool{true, false, true}, issue: true, source: -1, reuse: -1}},
		{name: "a target in an unreachable cluster is Unreachable and never written",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy)),
				Unobservable: map[string]error{"kubernetes/eu/": errDown}},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.InSync, decide.Unreachable, decide.Missing},
				writes: []bool{false, false, true}, source: 0, reuse: -1}},
		{name: "in sync where reachable, unreachable elsewhere: nothing to do",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy)),
				Unobservable: map[string]error{"kubernetes/eu/": errDown, "kubernetes/us/": errDown}},
			want: want{reason: decide.Unreachable, targets: []decide.Reason{decide.InSync, decide.Unreachable, decide.Unreachable},
				writes: []bool{false, false, false}, source: 0, reuse: -1}},
		{name: "a certificate whose targets are all unreachable does not issue",
			in: decide.Input{Desired: []*render.Desired{d},
				Unobservable: map[string]error{a.Key: errDown, "kubernetes/eu/": errDown, "kubernetes/us/": errDown}},
			want: want{reason: decide.Unreachable, targets: []decide.Reason{decide.Unreachable, decide.Unreachable, decide.Unreachable},
				writes: []bool{false, false, false}, source: -1, reuse: -1}},
		{name: "a certificate the policies deny acts on nothing",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy), f.delivered(d, b, renewing)),
				Verdicts: map[string]schemas.CertificateVerdict{d.ID: {ID: d.ID, Allowed: false}}},
			want: want{reason: decide.PolicyViolation, targets: []decide.Reason{decide.InSync, decide.Expiring, decide.Missing},
				writes: []bool{false, false, false}, source: -1, reuse: -1}},
		{name: "a certificate the policies allow is decided as usual",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy)),
				Verdicts: map[string]schemas.CertificateVerdict{d.ID: {ID: d.ID, Allowed: true}, "other": {ID: "other"}}},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.InSync, decide.Missing, decide.Missing},
				writes: []bool{false, true, true}, source: 0, reuse: -1}},
		{name: "a suspended certificate acts on nothing, even when denied",
			in: func() decide.Input {
				s := desired("team-a/api", func(s *schemas.CertificateSpec) { s.Suspend = true }, a, b, c)
				return decide.Input{Desired: []*render.Desired{s}, Observed: observedBy(f.delivered(s, a, renewing)),
					Verdicts: map[string]schemas.CertificateVerdict{s.ID: {ID: s.ID}}}
			}(),
			want: want{reason: decide.Suspended, targets: []decide.Reason{decide.Expiring, decide.Missing, decide.Missing},
				writes: []bool{false, false, false}, source: -1, reuse: -1}},
		{name: "a certificate backing off does not issue or write before its retry time",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, renewing)),
				Inventory: map[string]*inventory.Entry{d.ID: {ID: d.ID, Rare: &inventory.Rare{Attempts: 3, RetryAt: &future}}}},
			want: want{reason: decide.BackingOff, targets: []decide.Reason{decide.Expiring, decide.Missing, decide.Missing},
				writes: []bool{false, false, false}, source: -1, reuse: -1}},
		{name: "a certificate backing off does not copy a healthy certificate before its retry time",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy)),
				Inventory: map[string]*inventory.Entry{d.ID: {ID: d.ID, Serial: serialOf(healthy), Rare: &inventory.Rare{Attempts: 1, RetryAt: &future}}}},
			want: want{reason: decide.BackingOff, targets: []decide.Reason{decide.InSync, decide.Missing, decide.Missing},
				writes: []bool{false, false, false}, source: -1, reuse: -1}},
		{name: "a certificate whose retry time has passed is issued",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, renewing)),
				Inventory: map[string]*inventory.Entry{d.ID: {ID: d.ID, Rare: &inventory.Rare{Attempts: 3, RetryAt: &past}}}},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.Expiring, decide.Missing, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "a certificate with a retry time but nothing to do stays InSync",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy), f.delivered(d, b, healthy), f.delivered(d, c, healthy)),
				Inventory: map[string]*inventory.Entry{d.ID: {ID: d.ID, Serial: serialOf(healthy), Rare: &inventory.Rare{Attempts: 3, RetryAt: &future}}}},
			want: want{reason: decide.InSync, targets: []decide.Reason{decide.InSync, decide.InSync, decide.InSync},
				writes: []bool{false, false, false}, source: 0, reuse: -1}},
		{name: "rotationPolicy Never reuses the key of a target whose key matches",
			in: decide.Input{Desired: []*render.Desired{dNever}, Observed: observedBy(
				with(f.delivered(dNever, a, renewing), plantKey), f.delivered(dNever, b, renewing)),
				Inventory: recorded(dNever, renewing)},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.KeyMismatch, decide.Expiring, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: 1}},
		{name: "rotationPolicy Never with no matching key anywhere makes a new one",
			in: decide.Input{Desired: []*render.Desired{dNever}, Observed: observedBy(
				with(f.delivered(dNever, a, renewing), plantKey))},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.KeyMismatch, decide.Missing, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "rotationPolicy Always never reuses a key",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, renewing))},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.Expiring, decide.Missing, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "rotationPolicy Never never reuses a key planted in a target without certfleet's marks (with --adopt)",
			in: decide.Input{Desired: []*render.Desired{dNever}, Adopt: true, Observed: observedBy(
				observed(a, f.fresh(), nil, false), f.delivered(dNever, b, renewing)), Inventory: recorded(dNever, renewing)},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.ModifiedOutOfBand, decide.Expiring, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: 1}},
		{name: "rotationPolicy Never never reuses a planted key under copied marks (the data is not what certfleet wrote)",
			in: decide.Input{Desired: []*render.Desired{dNever}, Observed: observedBy(
				with(f.delivered(dNever, a, renewing), func(o *target.Observed) {
					o.Bundle = f.issue(now.Add(-61*day), lifetime)
					o.Cert, _ = target.NewLeaf(o.Bundle.Cert)
				})),
				Inventory: recorded(dNever, renewing)},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.ModifiedOutOfBand, decide.Missing, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "rotationPolicy Never never reuses the key of a certificate the inventory does not record",
			in: decide.Input{Desired: []*render.Desired{dNever}, Observed: observedBy(f.delivered(dNever, a, renewing)),
				Inventory: recorded(dNever, healthy)},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.Expiring, decide.Missing, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "a target holding something without certfleet's marks is TakenOver: never written, the others are",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy), observed(b, f.fresh(), nil, false))},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.InSync, decide.TakenOver, decide.Missing},
				writes: []bool{false, false, true}, source: 0, reuse: -1}},
		{name: "a target marked as another certificate's (not recorded as ours) is TakenOver",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy),
				f.delivered(desired("team-b/other", nil), b, f.fresh()), f.delivered(d, c, healthy))},
			want: want{reason: decide.TakenOver, targets: []decide.Reason{decide.InSync, decide.TakenOver, decide.InSync},
				writes: []bool{false, false, false}, source: 0, reuse: -1}},
		{name: "with --adopt a target without marks is rewritten from the healthy copy",
			in: decide.Input{Desired: []*render.Desired{d}, Adopt: true, Observed: observedBy(f.delivered(d, a, healthy), observed(b, f.fresh(), nil, false), f.delivered(d, c, healthy))},
			want: want{reason: decide.ModifiedOutOfBand, targets: []decide.Reason{decide.InSync, decide.ModifiedOutOfBand, decide.InSync},
				writes: []bool{false, true, false}, source: 0, reuse: -1}},
		{name: "every target TakenOver: nothing is issued",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(observed(a, f.fresh(), nil, false), observed(b, f.fresh(), nil, false), observed(c, f.fresh(), nil, false))},
			want: want{reason: decide.TakenOver, targets: []decide.Reason{decide.TakenOver, decide.TakenOver, decide.TakenOver},
				writes: []bool{false, false, false}, source: -1, reuse: -1}},
		{name: "a delivered certificate the inventory does not record, signed by the issuer's authority, is recorded without issuing",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy), f.delivered(d, b, healthy), f.delivered(d, c, healthy)),
				Inventory: map[string]*inventory.Entry{}},
			want: want{reason: decide.NotRecorded, targets: []decide.Reason{decide.NotRecorded, decide.NotRecorded, decide.NotRecorded},
				writes: []bool{false, false, false}, source: 0, reuse: -1, record: true}},
		{name: "a delivered certificate newer than the inventory's serial (a crash before record) is recorded and copied where missing",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, healthy)),
				Inventory: recorded(d, renewing)},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.NotRecorded, decide.Missing, decide.Missing},
				writes: []bool{false, true, true}, source: 0, reuse: -1, record: true}},
		{name: "targets holding two certfleet serials: the recorded one is the source, the other gets its copy",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, f.fresh()), f.delivered(d, b, healthy), f.delivered(d, c, healthy))},
			want: want{reason: decide.NotRecorded, targets: []decide.Reason{decide.NotRecorded, decide.InSync, decide.InSync},
				writes: []bool{true, false, false}, source: 1, reuse: -1}},
		{name: "an unrecorded certificate with certfleet's marks that its issuer's authority did not sign is replaced",
			in: decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(f.delivered(d, a, newFixture(t).fresh())),
				Inventory: map[string]*inventory.Entry{}},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.ModifiedOutOfBand, decide.Missing, decide.Missing},
				writes: []bool{true, true, true}, issue: true, source: -1, reuse: -1}},
		{name: "rotationPolicy Never reuses no key when nothing is issued",
			in: decide.Input{Desired: []*render.Desired{dNever}, Observed: observedBy(f.delivered(dNever, a, healthy))},
			want: want{reason: decide.Missing, targets: []decide.Reason{decide.InSync, decide.Missing, decide.Missing},
				writes: []bool{false, true, true}, source: 0, reuse: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = now
			if tt.in.Inventory == nil {
				// As after a pass that recorded what it delivered.
				tt.in.Inventory = recorded(tt.in.Desired[0], healthy)
			}
			if tt.in.Catalog == nil {
				tt.in.Catalog = f.catalog()
			}
			dec := decide.Decide(tt.in)
			if len(dec.Certificates) != 1 {
				t.Fatalf("%d certificates decided", len(dec.Certificates))
			}
			checkCertificate(t, dec.Certificates[0], tt.want)
		})
	}
}

func TestOrphansAndUnmanaged(t *testing.T) {
	f := newFixture(t)
	cur := dirTarget("/srv/current")
	d := desired("team-a/api", nil, cur, kubeTarget("eu", "web", "api-tls"))
	old := desired("team-a/old", nil)
	// inv records a delivery of the old certificate at t.
	inv := func(t render.Target) inventory.Target {
		return t.Address
	}
	entry := func(id string, ts ...render.Target) *inventory.Entry {
		e := &inventory.Entry{ID: id}
		for _, t := range ts {
			e.Targets = append(e.Targets, inv(t))
		}
		return e
	}
	oldDir, oldSecret := dirTarget("/srv/old"), kubeTarget("eu", "web", "old-tls")
	oldSecretUS, oldSecretGone := kubeTarget("us", "web", "old-tls"), kubeTarget("eu", "web", "gone-tls")
	foreign := kubeTarget("eu", "web", "other-certfleet-tls")
	handmade, handmade2 := kubeTarget("eu", "legacy", "wildcard-tls"), kubeTarget("eu", "a-legacy", "wildcard-tls")
	handDir := dirTarget("/srv/handmade")
	oldIn := func(t render.Target) *target.Observed {
		o := f.delivered(old, t, f.fresh())
		o.Target = &render.Target{Address: inv(t)} // what observing an inventory record gives
		return o
	}

	curBundle := f.fresh()
	in := decide.Input{
		Desired: []*render.Desired{d},
		Observed: observedBy(
			f.delivered(d, cur, curBundle),
			// The old certificate's deliveries: a directory and a Secret still there, one Secret already gone.
			oldIn(oldDir), oldIn(oldSecret), &target.Observed{Target: &oldSecretGone},
			// A managed Secret another certfleet instance wrote: not in our inventory.
			f.delivered(desired("elsewhere/x", nil), foreign, f.fresh()),
			// Secrets and a directory nobody manages.
			observed(handmade, f.fresh(), nil, false), observed(handmade2, f.fresh(), nil, false), observed(handDir, f.fresh(), nil, false),
		),
		Unobservable: map[string]error{"kubernetes/us/": errDown},
		Inventory: map[string]*inventory.Entry{
			d.ID: entry(d.ID, cur, kubeTarget("eu", "web", "api-tls")),
			// Its first target moved to the current certificate: now declared, not orphaned.
			old.ID: entry(old.ID, cur, oldDir, oldSecret, oldSecretUS, oldSecretGone, kubeTarget("eu", "web", "never-observed-tls")),
		},
		Now: now,
	}
	in.Inventory[d.ID].Serial = serialOf(curBundle)
	dec := decide.Decide(in)

	keys := func(ts []decide.Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Target.Key)
		}
		return out
	}
	t.Run("orphans are inventory targets nobody declares, still there, in observable places, sorted", func(t *testing.T) {
		want := []string{oldDir.Key, oldSecret.Key}
		slices.Sort(want)
		if got := keys(dec.Orphans); !slices.Equal(got, want) {
			t.Errorf("orphans %v, want %v", got, want)
		}
		for _, o := range dec.Orphans {
			if o.Reason != decide.Orphaned || o.Observed == nil || o.Observed.Target.Key != o.Target.Key || o.Write {
				t.Errorf("orphan %s: reason %s, observed %v, write %v", o.Target.Key, o.Reason, o.Observed != nil, o.Write)
			}
			if !strings.Contains(o.Message, "`certfleet reconcile --prune` deletes it") {
				t.Errorf("orphan %s: message %q", o.Target.Key, o.Message)
			}
		}
	})
	t.Run("an orphan's address is rebuilt from the inventory", func(t *testing.T) {
		for _, o := range dec.Orphans {
			want := oldDir
			if o.Target.Kind == render.Kubernetes {
				want = oldSecret
			}
			if o.Target.Kind != want.Kind || o.Target.Cluster != want.Cluster || o.Target.Namespace != want.Namespace ||
				o.Target.Name != want.Name || o.Target.Path != want.Path {
				t.Errorf("orphan target %+v, want %+v", o.Target, want)
			}
		}
	})
	t.Run("unmanaged are Kubernetes Secrets nobody manages, sorted; directories and other instances' Secrets are not", func(t *testing.T) {
		want := []string{handmade2.Key, handmade.Key}
		if got := keys(dec.Unmanaged); !slices.Equal(got, want) {
			t.Errorf("unmanaged %v, want %v", got, want)
		}
		for _, u := range dec.Unmanaged {
			if u.Reason != decide.Unmanaged || u.Write {
				t.Errorf("%s: reason %s, write %v", u.Target.Key, u.Reason, u.Write)
			}
			if !strings.HasPrefix(u.Message, "a TLS Secret certfleet does not manage") {
				t.Errorf("%s: message %q", u.Target.Key, u.Message)
			}
		}
	})
	t.Run("a managed Secret of another certfleet instance is neither orphan nor unmanaged", func(t *testing.T) {
		if slices.Contains(keys(dec.Orphans), foreign.Key) || slices.Contains(keys(dec.Unmanaged), foreign.Key) {
			t.Errorf("%s is listed", foreign.Key)
		}
	})
	t.Run("the declared certificate is decided, not orphaned", func(t *testing.T) {
		if len(dec.Certificates) != 1 || dec.Certificates[0].Desired != d {
			t.Fatalf("certificates %+v", dec.Certificates)
		}
		if got := reasons(dec.Certificates[0].Targets); !slices.Equal(got, []decide.Reason{decide.InSync, decide.Missing}) {
			t.Errorf("reasons %v", got)
		}
	})
	t.Run("a declared target that holds an unmanaged Secret is the certificate's, not unmanaged", func(t *testing.T) {
		taken := kubeTarget("eu", "web", "api-tls")
		in := in
		in.Observed = observedBy(observed(taken, f.fresh(), nil, false))
		dec := decide.Decide(in)
		if len(dec.Unmanaged) != 0 {
			t.Errorf("unmanaged %v", keys(dec.Unmanaged))
		}
		if got := dec.Certificates[0].Targets[1].Reason; got != decide.TakenOver {
			t.Errorf("reason %s, want TakenOver", got)
		}
	})
	t.Run("a target two removed certificates both delivered to is one orphan", func(t *testing.T) {
		in := in
		in.Inventory = map[string]*inventory.Entry{old.ID: entry(old.ID, oldDir), "team-b/moved": entry("team-b/moved", oldDir)}
		dec := decide.Decide(in)
		if got := keys(dec.Orphans); !slices.Equal(got, []string{oldDir.Key}) {
			t.Errorf("orphans %v, want [%s]", got, oldDir.Key)
		}
	})
	t.Run("a directory the inventory recorded under another spelling of a declared one is not an orphan", func(t *testing.T) {
		// Keys used to keep the path as written; pruning the old spelling
		// would delete the directory the declared certificate is in.
		for _, recorded := range []string{"/srv/current/", "/srv//current", "/srv/./current"} {
			rec := render.Target{Address: render.Address{Kind: render.Directory, Path: recorded, Key: "directory/" + strings.TrimRight(recorded, "/")}}
			in := in
			in.Inventory = map[string]*inventory.Entry{old.ID: entry(old.ID, rec)}
			in.Observed = observedBy(oldIn(rec))
			if dec := decide.Decide(in); len(dec.Orphans) != 0 {
				t.Errorf("recorded as %s: orphans %v", recorded, keys(dec.Orphans))
			}
		}
		rel := desired("team-a/api", nil, render.Target{Address: render.Address{Kind: render.Directory, Path: "web", Key: render.DirectoryKey("/srv/tls", "web")}})
		in := in
		in.Desired, in.OutputDir = []*render.Desired{rel}, "/srv/tls"
		abs := render.Target{Address: render.Address{Kind: render.Directory, Path: "/srv/tls/web", Key: "directory//srv/tls/web"}}
		in.Inventory = map[string]*inventory.Entry{old.ID: entry(old.ID, abs)}
		in.Observed = observedBy(oldIn(abs))
		if dec := decide.Decide(in); len(dec.Orphans) != 0 {
			t.Errorf("recorded by its absolute path under the output root: orphans %v", keys(dec.Orphans))
		}
	})
	t.Run("an inventory target whose marks were removed by hand is not unmanaged, not orphaned: TakenOver", func(t *testing.T) {
		in := in
		in.Observed = observedBy(observed(oldSecret, f.fresh(), nil, false), f.delivered(desired("team-z/other", nil), oldDir, f.fresh()))
		dec := decide.Decide(in)
		if len(dec.Unmanaged) != 0 {
			t.Errorf("unmanaged %v", keys(dec.Unmanaged))
		}
		if len(dec.Orphans) != 0 {
			t.Errorf("orphans %v: a target certfleet no longer owns must never be pruned", keys(dec.Orphans))
		}
		if got, want := keys(dec.TakenOver), []string{oldDir.Key, oldSecret.Key}; !slices.Equal(got, want) {
			t.Errorf("taken over %v, want %v", got, want)
		}
	})
	t.Run("an entry declared outside the rendered scope is never an orphan", func(t *testing.T) {
		in := in
		in.Inventory = map[string]*inventory.Entry{d.ID: entry(d.ID, cur), old.ID: entry(old.ID, oldDir, oldSecret)}
		in.Inventory[old.ID].File = "teams/other/certs.yaml"
		in.InScope = func(file string) bool { return strings.HasPrefix(file, "teams/web/") }
		if dec := decide.Decide(in); len(dec.Orphans) != 0 {
			t.Errorf("orphans %v outside the scope", keys(dec.Orphans))
		}
		in.Inventory[old.ID].File = "teams/web/certs.yaml"
		if dec := decide.Decide(in); len(dec.Orphans) != 2 {
			t.Errorf("orphans %v inside the scope, want 2", keys(dec.Orphans))
		}
	})
}

func TestCertificatesKeepTheDesiredOrderAndTargets(t *testing.T) {
	f := newFixture(t)
	var ds []*render.Desired
	obs := map[string]*target.Observed{}
	for _, id := range []string{"a/one", "b/two", "c/three", "d/four"} {
		tg := dirTarget("/srv/" + id)
		dd := desired(id, nil, tg)
		ds = append(ds, dd)
		obs[tg.Key] = f.delivered(dd, tg, f.fresh())
	}
	inv := map[string]*inventory.Entry{}
	for _, dd := range ds {
		maps.Copy(inv, recordedAt(dd, obs[dd.Targets[0].Key]))
	}
	dec := decide.Decide(decide.Input{Desired: ds, Observed: obs, Now: now, Inventory: inv})
	if len(dec.Certificates) != len(ds) {
		t.Fatalf("%d certificates, want %d", len(dec.Certificates), len(ds))
	}
	for i, c := range dec.Certificates {
		if c.Desired != ds[i] || c.Reason != decide.InSync {
			t.Errorf("certificate %d is %s (%s), want %s in sync", i, c.Desired.ID, c.Reason, ds[i].ID)
		}
		// A target's decision points at the desired target, not at a copy
		// of it: a pass holds a decision for every target of the fleet.
		if len(c.Targets) != 1 || c.Targets[0].Target != &ds[i].Targets[0] {
			t.Errorf("certificate %d's target decision holds a copy of its desired target", i)
		}
	}
}

func TestAPermanentFailureWaitsForTheDeclarationOrTheCatalogToChange(t *testing.T) {
	f := newFixture(t)
	tg := dirTarget("/srv/api")
	d := desired("team-a/api", nil, tg)
	cat := f.catalog()
	refused := map[string]*inventory.Entry{d.ID: {ID: d.ID, Rare: &inventory.Rare{Attempts: 1, FailureKind: "Permanent", PermanentFor: decide.FailureKey(d, cat)}}}
	decideOne := func(d *render.Desired, cat *schemas.Catalog) decide.Certificate {
		return decide.Decide(decide.Input{Desired: []*render.Desired{d}, Inventory: refused, Catalog: cat, Now: now}).Certificates[0]
	}
	if c := decideOne(d, cat); c.Issue || c.Reason != decide.PermanentFailure || c.Targets[0].Write {
		t.Errorf("unchanged: issue %v, reason %s, write %v; want no attempt, PermanentFailure", c.Issue, c.Reason, c.Targets[0].Write)
	}
	changed := desired("team-a/api", func(s *schemas.CertificateSpec) { s.DNSNames = []string{"www.example.com"} }, tg)
	if c := decideOne(changed, cat); !c.Issue {
		t.Errorf("a changed declaration is not tried again: %s", c.Reason)
	}
	widened := f.catalog()
	widened.Issuers["fleet"].Spec.AllowAnyName = true
	if c := decideOne(d, widened); !c.Issue {
		t.Errorf("a changed issuer is not tried again: %s", c.Reason)
	}
}

func TestRetryDelayDoublesUpToTheCap(t *testing.T) {
	tests := []struct {
		name      string
		attempts  int
		base, max time.Duration
		want      time.Duration
	}{
		{name: "no base retries on every pass", attempts: 3, want: 0},
		{name: "the first failure waits the base", attempts: 1, base: 30 * time.Second, max: time.Hour, want: 30 * time.Second},
		{name: "each failure doubles it", attempts: 4, base: 30 * time.Second, max: time.Hour, want: 4 * time.Minute},
		{name: "the cap holds", attempts: 10, base: 30 * time.Second, max: time.Hour, want: time.Hour},
		{name: "no cap keeps doubling, bounded in shift", attempts: 100, base: time.Nanosecond, want: time.Nanosecond << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide.RetryDelay(tt.attempts, tt.base, tt.max); got != tt.want {
				t.Errorf("RetryDelay(%d, %s, %s) = %s, want %s", tt.attempts, tt.base, tt.max, got, tt.want)
			}
		})
	}
}

func TestRetryDelayForACMENeverOrdersOnEveryPass(t *testing.T) {
	acmeIssuer := &schemas.Issuer{Spec: schemas.IssuerSpec{ACME: &schemas.ACMEIssuer{Server: "https://ca.test/dir"}}}
	vaultIssuer := &schemas.Issuer{Spec: schemas.IssuerSpec{Authority: "root"}}
	tests := []struct {
		name             string
		iss              *schemas.Issuer
		attempts         int
		base, max, after time.Duration
		want             time.Duration
	}{
		{name: "a Vault issuer without backoff retries on every pass", iss: vaultIssuer, attempts: 3, want: 0},
		{name: "an ACME issuer without backoff still waits a minute", iss: acmeIssuer, attempts: 1, want: decide.ACMERetryBackoff},
		{name: "and doubles it per failure", iss: acmeIssuer, attempts: 4, want: 8 * decide.ACMERetryBackoff},
		{name: "up to its own cap", iss: acmeIssuer, attempts: 30, want: decide.ACMEMaxRetryBackoff},
		{name: "a configured backoff wins", iss: acmeIssuer, attempts: 2, base: time.Hour, max: 3 * time.Hour, want: 2 * time.Hour},
		{name: "the CA's Retry-After wins when longer", iss: acmeIssuer, attempts: 1, after: 5 * time.Hour, want: 5 * time.Hour},
		{name: "Retry-After holds for any issuer", iss: vaultIssuer, attempts: 1, base: time.Second, after: time.Minute, want: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide.RetryDelayFor(tt.iss, tt.attempts, tt.base, tt.max, tt.after); got != tt.want {
				t.Errorf("RetryDelayFor(%d, %s, %s, %s) = %s, want %s", tt.attempts, tt.base, tt.max, tt.after, got, tt.want)
			}
		})
	}
}

func TestActionNamesWhatADecisionDoes(t *testing.T) {
	f := newFixture(t)
	tg := dirTarget("/srv/a")
	d := desired("a/b", nil, tg)
	held := f.delivered(d, tg, f.fresh())
	tests := []struct {
		name string
		c    decide.Certificate
		want string
	}{
		{name: "nothing to do", c: decide.Certificate{Desired: d, Reason: decide.InSync, Targets: []decide.Target{{Reason: decide.InSync}}}, want: ""},
		{name: "a first certificate is issued", c: decide.Certificate{Desired: d, Reason: decide.Missing, Issue: true,
			Targets: []decide.Target{{Reason: decide.Missing, Write: true}}}, want: "issue"},
		{name: "a missing target beside a broken one is a reissue", c: decide.Certificate{Desired: d, Reason: decide.Missing, Issue: true,
			Targets: []decide.Target{{Reason: decide.Missing, Write: true, Observed: held}}}, want: "reissue"},
		{name: "a renewal", c: decide.Certificate{Desired: d, Reason: decide.Expiring, Issue: true, Targets: []decide.Target{{Write: true}}}, want: "renew"},
		{name: "a spec change is a reissue", c: decide.Certificate{Desired: d, Reason: decide.SpecChanged, Issue: true, Targets: []decide.Target{{Write: true}}}, want: "reissue"},
		{name: "a healthy copy delivered is an update", c: decide.Certificate{Desired: d, Reason: decide.Missing, Targets: []decide.Target{{Write: true}}}, want: "update"},
		{name: "a delivery the inventory missed is recorded", c: decide.Certificate{Desired: d, Reason: decide.NotRecorded, Record: true,
			Targets: []decide.Target{{Reason: decide.NotRecorded}}}, want: "record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Action(); got != tt.want {
				t.Errorf("Action() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRefusePrune(t *testing.T) {
	certs := func(n int) []decide.Certificate {
		out := make([]decide.Certificate, n)
		for i := range out {
			out[i].Targets = []decide.Target{{}}
		}
		return out
	}
	orphans := func(n int) []decide.Target { return make([]decide.Target, n) }
	tests := []struct {
		name              string
		d                 decide.Decisions
		rendered, invalid int
		share             float64
		force             bool
		want              string // a substring of the refusal; "" allowed
	}{
		{name: "no orphans: nothing to refuse", d: decide.Decisions{Certificates: certs(2)}, rendered: 2},
		{name: "half the managed targets is allowed", d: decide.Decisions{Certificates: certs(2), Orphans: orphans(2)}, rendered: 2},
		{name: "more than half is refused", d: decide.Decisions{Certificates: certs(1), Orphans: orphans(2)}, rendered: 1, want: "2 of 3 managed targets (more than 50%)"},
		{name: "a configured share applies", d: decide.Decisions{Certificates: certs(3), Orphans: orphans(1)}, rendered: 3, share: 0.2, want: "more than 20%"},
		{name: "an empty render is refused", d: decide.Decisions{Orphans: orphans(1)}, want: "renders no certificate"},
		{name: "invalid manifests are refused", d: decide.Decisions{Certificates: certs(9), Orphans: orphans(1)}, rendered: 9, invalid: 1, want: "1 manifests are invalid"},
		{name: "force overrides", d: decide.Decisions{Orphans: orphans(5)}, force: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide.RefusePrune(tt.d, tt.rendered, tt.invalid, tt.share, tt.force)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("RefusePrune = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestACertificateWideReasonIsEveryTargetsWithItsMessage: suspended,
// denied, backing off and refused certificates report that reason (and its
// message) for every target, whatever each target holds.
func TestACertificateWideReasonIsEveryTargetsWithItsMessage(t *testing.T) {
	f := newFixture(t)
	a, b := dirTarget("/srv/a"), dirTarget("/srv/b")
	retry := now.Add(time.Hour)
	tests := []struct {
		name string
		d    *render.Desired
		in   func(in *decide.Input)
		want decide.Reason
		msg  string
	}{
		{name: "a suspended certificate is Suspended", d: desired("team-a/api", func(s *schemas.CertificateSpec) { s.Suspend = true }, a, b),
			want: decide.Suspended, msg: "suspended in Git"},
		{name: "a denied certificate is a PolicyViolation", d: desired("team-a/api", nil, a, b),
			in: func(in *decide.Input) {
				in.Verdicts = map[string]schemas.CertificateVerdict{"team-a/api": {Allowed: false}}
			},
			want: decide.PolicyViolation, msg: "policies deny the declaration"},
		{name: "a certificate that waits for its retry is BackingOff", d: desired("team-a/api", nil, a, b),
			in: func(in *decide.Input) {
				in.Inventory = map[string]*inventory.Entry{"team-a/api": {ID: "team-a/api", Rare: &inventory.Rare{Attempts: 2, RetryAt: &retry}}}
			},
			want: decide.BackingOff, msg: "retrying after a backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := decide.Input{Desired: []*render.Desired{tt.d}, Observed: observedBy(f.delivered(tt.d, a, f.fresh())), Now: now, Catalog: f.catalog()}
			if tt.in != nil {
				tt.in(&in)
			}
			c := decide.Decide(in).Certificates[0]
			if c.Reason != tt.want || !strings.Contains(c.Message, tt.msg) {
				t.Fatalf("certificate: %s %q, want %s with %q", c.Reason, c.Message, tt.want, tt.msg)
			}
			for _, td := range c.Targets {
				if r, msg := c.TargetReason(td); r != tt.want || msg != c.Message {
					t.Errorf("target %s: %s %q, want the certificate's %s %q", td.Target.Key, r, msg, tt.want, c.Message)
				}
			}
		})
	}
}

// TestRenewalRequested: an operator's request reissues the certificate
// whose serial it names, and only that one — a target already holding
// another serial has been renewed — and it ranks above a due renewal.
func TestRenewalRequested(t *testing.T) {
	f := newFixture(t)
	tg := dirTarget("/etc/tls/api")
	d := desired("team-a/api", nil, tg)
	b := f.issue(now.Add(-time.Hour), lifetime)
	o := f.delivered(d, tg, b)
	asked := inventory.Renewal{ID: d.ID, Serial: serialOf(b), By: "alice@ops", At: now.Add(-time.Minute)}
	tests := []struct {
		name     string
		renewals map[string]inventory.Renewal
		now      time.Time
		want     decide.Reason
	}{
		{name: "no request is InSync", now: now, want: decide.InSync},
		{name: "a request for the delivered serial renews", renewals: map[string]inventory.Renewal{d.ID: asked}, now: now, want: decide.RenewalRequested},
		{name: "a request for an earlier serial has been met", now: now, want: decide.InSync,
			renewals: map[string]inventory.Renewal{d.ID: {ID: d.ID, Serial: "01:02", By: "alice@ops", At: asked.At}}},
		{name: "another certificate's request changes nothing", now: now, want: decide.InSync,
			renewals: map[string]inventory.Renewal{"team-b/web": {ID: "team-b/web", Serial: asked.Serial}}},
		{name: "an expired certificate is Expired first", renewals: map[string]inventory.Renewal{d.ID: asked},
			now: o.Cert.NotAfter.Add(time.Minute), want: decide.Expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decide.Decide(decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(o), Now: tt.now,
				Inventory: recordedAt(d, o), Renewals: tt.renewals}).Certificates[0]
			if c.Reason != tt.want {
				t.Fatalf("reason %s (%s), want %s", c.Reason, c.Message, tt.want)
			}
			if c.Issue != (tt.want != decide.InSync) {
				t.Errorf("Issue = %v", c.Issue)
			}
			if tt.want == decide.RenewalRequested {
				if c.Supersedes() {
					t.Error("an operator's renewal supersedes (and would revoke) the certificate; `certfleet revoke` is for that")
				}
				if c.Action() != "renew" || !strings.Contains(c.Message, "alice@ops") {
					t.Errorf("action %q, message %q: want a renew that says who asked", c.Action(), c.Message)
				}
			}
		})
	}
}

// TestRotatedAuthority: a delivered leaf signed by a previous CA of its
// issuer's authority is reissued once every trust bundle holds the new CA
// (AuthorityRotated), and kept until then (AwaitingTrust), whatever its
// annotations say; a leaf of the current CA, or of a CA the authority never
// had, is no rotation's business.
func TestRotatedAuthority(t *testing.T) {
	old, next, foreign := newFixture(t), newFixture(t), newFixture(t)
	tg := dirTarget("/etc/tls/api")
	d := desired("team-a/api", nil, tg)
	rotated := next.catalog()
	rotated.Authorities["root"].Status.PreviousIssuers = []schemas.PreviousIssuer{
		{IssuerID: "old", Certificate: string(pki.EncodeCertificate(old.ca.Cert)), NotAfter: now.Add(400 * day)}}
	tests := []struct {
		name      string
		cat       *schemas.Catalog
		leaf      target.Bundle
		untrusted map[string]string
		want      decide.Reason
	}{
		{name: "a leaf of the current CA is InSync", cat: old.catalog(), leaf: old.fresh(), want: decide.InSync},
		{name: "after the rotation, a leaf of the new CA is InSync", cat: rotated, leaf: next.fresh(), want: decide.InSync},
		{name: "a leaf of the previous CA is reissued", cat: rotated, leaf: old.fresh(), want: decide.AuthorityRotated},
		{name: "…but not while a bundle lacks the new CA", cat: rotated, leaf: old.fresh(), want: decide.AwaitingTrust,
			untrusted: map[string]string{"root": "trust bundle fleet at directory trust does not hold the current CA of root yet"}},
		{name: "another authority's missing trust does not hold it back", cat: rotated, leaf: old.fresh(), want: decide.AuthorityRotated,
			untrusted: map[string]string{"other": "…"}},
		{name: "a leaf of a CA the authority never had is not a rotation", cat: rotated, leaf: foreign.fresh(), want: decide.InSync},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := old.delivered(d, tg, tt.leaf)
			c := decide.Decide(decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(o), Now: now,
				Inventory: recordedAt(d, o), Catalog: tt.cat, Untrusted: tt.untrusted}).Certificates[0]
			if c.Reason != tt.want {
				t.Fatalf("reason %s (%s), want %s", c.Reason, c.Message, tt.want)
			}
			if c.Issue != (tt.want == decide.AuthorityRotated) || c.Action() != map[bool]string{true: "reissue", false: ""}[c.Issue] {
				t.Errorf("Issue = %v, action %q", c.Issue, c.Action())
			}
			if c.Supersedes() != (tt.want == decide.AuthorityRotated) {
				t.Errorf("Supersedes = %v: a rotation's reissue supersedes, nothing else here does", c.Supersedes())
			}
			if tt.want == decide.AwaitingTrust && !strings.Contains(c.Targets[0].Message, "does not hold the current CA of root yet") {
				t.Errorf("AwaitingTrust does not say which bundle holds it back: %q", c.Targets[0].Message)
			}
		})
	}
}

// TestServedCertificateProbe: a target whose probe still serves another
// certificate than the one delivered, or cannot be dialled, is NotServed
// once the probe's grace has passed since the delivery (the inventory
// entry's UpdatedAt); NotServed never issues or writes.
func TestServedCertificateProbe(t *testing.T) {
	f := newFixture(t)
	probed := dirTarget("/etc/tls/api")
	probed.Probe = &schemas.Probe{Address: "api.internal:8443"}
	slow := dirTarget("/etc/tls/slow")
	slow.Probe = &schemas.Probe{Address: "slow.internal:8443", Grace: "1h"}
	plain := dirTarget("/etc/tls/plain")
	current, previous := f.fresh(), f.issue(now.Add(-70*day), lifetime)
	errReset := errors.New("read: connection reset by peer")
	tests := []struct {
		name      string
		tg        render.Target
		leaf      target.Bundle
		delivered time.Duration // how long before now the inventory entry was updated
		served    *decide.Served
		want      decide.Reason
		message   []string
	}{
		{name: "the delivered certificate served past the grace is InSync", tg: probed, leaf: current, delivered: time.Hour,
			served: &decide.Served{Serial: serialOf(current)}, want: decide.InSync},
		{name: "the previous certificate served within the grace is InSync", tg: probed, leaf: current, delivered: 4 * time.Minute,
			served: &decide.Served{Serial: serialOf(previous)}, want: decide.InSync},
		{name: "the previous certificate served past the grace is NotServed", tg: probed, leaf: current, delivered: 6 * time.Minute,
			served: &decide.Served{Serial: serialOf(previous)}, want: decide.NotServed,
			message: []string{"api.internal:8443 serves serial " + serialOf(previous), "not the delivered " + serialOf(current), "6m after the delivery (grace 5m)"}},
		{name: "a failed dial past the grace is NotServed with the error", tg: probed, leaf: current, delivered: 10 * time.Minute,
			served: &decide.Served{Err: errReset}, want: decide.NotServed,
			message: []string{"probing api.internal:8443 failed 10m after the delivery", "connection reset by peer"}},
		{name: "a failed dial within the grace is InSync", tg: probed, leaf: current, delivered: time.Minute,
			served: &decide.Served{Err: errReset}, want: decide.InSync},
		{name: "a probe's own grace replaces the default", tg: slow, leaf: current, delivered: 30 * time.Minute,
			served: &decide.Served{Serial: serialOf(previous)}, want: decide.InSync},
		{name: "…and past it the target is NotServed", tg: slow, leaf: current, delivered: 61 * time.Minute,
			served: &decide.Served{Serial: serialOf(previous)}, want: decide.NotServed, message: []string{"(grace 1h)"}},
		{name: "a target without a probe is never NotServed", tg: plain, leaf: current, delivered: time.Hour,
			served: &decide.Served{Serial: serialOf(previous)}, want: decide.InSync},
		{name: "a probe that was not dialled says nothing", tg: probed, leaf: current, delivered: time.Hour, want: decide.InSync},
		{name: "a certificate due for renewal is renewed whatever its probe saw", tg: probed, leaf: previous, delivered: time.Hour,
			served: &decide.Served{Serial: serialOf(current)}, want: decide.Expiring},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := desired("team-a/api", nil, tt.tg)
			o := f.delivered(d, tt.tg, tt.leaf)
			inv := recordedAt(d, o)
			inv[d.ID].UpdatedAt = now.Add(-tt.delivered)
			served := map[string]decide.Served{}
			if tt.served != nil {
				served[tt.tg.Key] = *tt.served
			}
			c := decide.Decide(decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(o), Now: now,
				Inventory: inv, Catalog: f.catalog(), Served: served}).Certificates[0]
			if c.Reason != tt.want || c.Targets[0].Reason != tt.want {
				t.Fatalf("reason %s, target %s (%s), want %s", c.Reason, c.Targets[0].Reason, c.Targets[0].Message, tt.want)
			}
			for _, m := range tt.message {
				if !strings.Contains(c.Targets[0].Message, m) || !strings.Contains(c.Message, m) {
					t.Errorf("message %q does not say %q", c.Targets[0].Message, m)
				}
			}
			if wantIssue := tt.want == decide.Expiring; c.Issue != wantIssue || c.Targets[0].Write != wantIssue {
				t.Errorf("Issue = %v, Write = %v, want %v: NotServed is fixed by the workload, not by writing again", c.Issue, c.Targets[0].Write, wantIssue)
			}
		})
	}
}

// TestNotServedOnOneTargetIsTheCertificatesStateAndWritesNothing: the
// certificate reports its not-served target; the others stay as they are.
func TestNotServedOnOneTargetIsTheCertificatesStateAndWritesNothing(t *testing.T) {
	f := newFixture(t)
	a, b := dirTarget("/etc/tls/a"), dirTarget("/etc/tls/b")
	a.Probe = &schemas.Probe{Address: "a.internal:443"}
	b.Probe = &schemas.Probe{Address: "b.internal:443"}
	d := desired("team-a/api", nil, a, b)
	leaf, old := f.fresh(), f.issue(now.Add(-70*day), lifetime)
	oa, ob := f.delivered(d, a, leaf), f.delivered(d, b, leaf)
	inv := recordedAt(d, oa)
	inv[d.ID].UpdatedAt = now.Add(-time.Hour)
	c := decide.Decide(decide.Input{Desired: []*render.Desired{d}, Observed: observedBy(oa, ob), Now: now, Inventory: inv, Catalog: f.catalog(),
		Served: map[string]decide.Served{a.Key: {Serial: serialOf(leaf)}, b.Key: {Serial: serialOf(old)}}}).Certificates[0]
	if got, want := reasons(c.Targets), []decide.Reason{decide.InSync, decide.NotServed}; !slices.Equal(got, want) {
		t.Fatalf("reasons %v, want %v", got, want)
	}
	if c.Reason != decide.NotServed || c.Issue || c.Record || slices.Contains(writes(c.Targets), true) || c.Action() != "" {
		t.Errorf("certificate %s, issue %v, record %v, writes %v, action %q: want NotServed, nothing done",
			c.Reason, c.Issue, c.Record, writes(c.Targets), c.Action())
	}
}

// TestRestart: a target's workload (restart:) is restarted once a write
// delivers another certificate than the one it held, and when its probe
// still sees the previous one past the grace — once per serial, never for
// the same certificate written again, never blind.
func TestRestart(t *testing.T) {
	f := newFixture(t)
	api := schemas.Restart{Kind: schemas.Deployment, Name: "api"}
	restarting := kubeTarget("prod", "team-a", "api-tls")
	restarting.Restart = &api
	restarting.Probe = &schemas.Probe{Address: "api.internal:443"}
	plain := kubeTarget("prod", "team-a", "plain-tls")
	other := dirTarget("/etc/tls/api")
	current, previous := f.fresh(), f.issue(now.Add(-70*day), lifetime)
	otherTemplate := restarting
	otherTemplate.TemplateHash = "template-0"
	gone := &target.Observed{} // a target holding nothing
	type setup struct {
		targets []render.Target
		// observed is what each target holds: nil, the current certificate in sync
		observed []*target.Observed
		served   *decide.Served // what the restarting target's probe saw
		workload *target.Workload
	}
	tests := []struct {
		name string
		setup
		want *decide.Restart // of the last target
	}{
		{name: "a first issuance restarts, for the serial it issues", want: &decide.Restart{},
			setup: setup{targets: []render.Target{restarting}, observed: []*target.Observed{gone}}},
		{name: "a copy of another certificate restarts, for its serial", want: &decide.Restart{Serial: serialOf(current)},
			setup: setup{targets: []render.Target{other, restarting}, observed: []*target.Observed{nil, gone},
				workload: &target.Workload{RestartedFor: []string{serialOf(previous)}}}},
		{name: "the same certificate written again (a template change) does not restart",
			setup: setup{targets: []render.Target{restarting}, observed: []*target.Observed{f.delivered(desired("team-a/api", nil, restarting), otherTemplate, current)}}},
		{name: "a copy of a serial the workload was restarted for does not restart",
			setup: setup{targets: []render.Target{other, restarting}, observed: []*target.Observed{nil, gone},
				workload: &target.Workload{RestartedFor: []string{serialOf(current)}}}},
		{name: "NotServed restarts, for the delivered serial", want: &decide.Restart{Serial: serialOf(current)},
			setup: setup{targets: []render.Target{restarting}, served: &decide.Served{Serial: serialOf(previous)},
				workload: &target.Workload{RestartedFor: []string{serialOf(previous), "0a"}}}},
		{name: "NotServed after a restart for the delivered serial does not restart again (the pods may still be rolling)",
			setup: setup{targets: []render.Target{restarting}, served: &decide.Served{Serial: serialOf(previous)},
				workload: &target.Workload{RestartedFor: []string{"0a", serialOf(current)}}}},
		{name: "NotServed with a workload that could not be read does not restart",
			setup: setup{targets: []render.Target{restarting}, served: &decide.Served{Serial: serialOf(previous)}}},
		{name: "a target serving what was delivered does not restart",
			setup: setup{targets: []render.Target{restarting}, served: &decide.Served{Serial: serialOf(current)}, workload: &target.Workload{}}},
		{name: "a target without restart: never restarts", setup: setup{targets: []render.Target{plain}, observed: []*target.Observed{gone}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := desired("team-a/api", nil, tt.targets...)
			last := tt.targets[len(tt.targets)-1]
			obs := map[string]*target.Observed{}
			inv := map[string]*inventory.Entry{}
			for i, tg := range tt.targets {
				o := f.delivered(d, tg, current) // in sync, unless setup says otherwise
				if i < len(tt.observed) && tt.observed[i] != nil {
					o = tt.observed[i]
				}
				if o != gone {
					obs[tg.Key] = o
					inv = recordedAt(d, o)
				}
			}
			if e := inv[d.ID]; e != nil {
				e.UpdatedAt = now.Add(-time.Hour)
			}
			served := map[string]decide.Served{}
			if tt.served != nil {
				served[last.Key] = *tt.served
			}
			workloads := map[string]*target.Workload{}
			if tt.workload != nil {
				workloads[last.Key] = tt.workload
			}
			c := decide.Decide(decide.Input{Desired: []*render.Desired{d}, Observed: obs, Now: now, Inventory: inv, Catalog: f.catalog(),
				Served: served, Workloads: workloads}).Certificates[0]
			got := c.Targets[len(c.Targets)-1]
			switch {
			case tt.want == nil && got.Restart != nil:
				t.Errorf("%s (write %v): restart for %q, want none", got.Reason, got.Write, got.Restart.Serial)
			case tt.want != nil && got.Restart == nil:
				t.Errorf("%s (write %v): no restart, want one for %q", got.Reason, got.Write, tt.want.Serial)
			case tt.want != nil && got.Restart.Serial != tt.want.Serial:
				t.Errorf("restart for %q, want %q", got.Restart.Serial, tt.want.Serial)
			}
		})
	}
}

// TestRevocationWait: a superseded serial is revoked only once no probe of
// the certificate's targets sees it served — past the grace too — and a
// probe that could not tell keeps it waiting; targets without a probe and
// certificates no longer declared are not waited for.
func TestRevocationWait(t *testing.T) {
	probed := dirTarget("/etc/tls/api")
	probed.Probe = &schemas.Probe{Address: "api.internal:8443"}
	plain := dirTarget("/etc/tls/plain")
	d := desired("team-a/api", nil, plain, probed)
	const old, fresh = "0a:01", "0b:02"
	since := now.Add(-2 * time.Minute)
	tests := []struct {
		name    string
		d       *render.Desired
		served  map[string]decide.Served
		since   time.Time
		waiting []string // what the reason says; none: revoke now
	}{
		{name: "the probe sees the new serial: revoke", d: d, since: since, served: map[string]decide.Served{probed.Key: {Serial: fresh}}},
		{name: "the probe sees the old serial within the grace: wait", d: d, since: since, served: map[string]decide.Served{probed.Key: {Serial: old}},
			waiting: []string{"api.internal:8443 still serves it", "2m after it was superseded (grace 5m)"}},
		{name: "the probe sees the old serial past the grace: still wait (NotServed), a superseded certificate is not compromised", d: d,
			since: now.Add(-time.Hour), served: map[string]decide.Served{probed.Key: {Serial: old}}, waiting: []string{"past the grace (5m)", "NotServed"}},
		{name: "a failed dial cannot tell: wait", d: d, since: since, served: map[string]decide.Served{probed.Key: {Err: errDown}},
			waiting: []string{"probing api.internal:8443 failed: connection refused"}},
		{name: "a probe not dialled this pass cannot tell: wait", d: d, since: since, served: map[string]decide.Served{},
			waiting: []string{"was not probed this pass"}},
		{name: "targets without a probe are not waited for", d: desired("team-a/api", nil, plain), since: since},
		{name: "a certificate no longer declared is not waited for", since: since},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide.RevocationWait(tt.d, old, tt.served, tt.since, now)
			if len(tt.waiting) == 0 && got != "" {
				t.Errorf("waits: %s; want it revoked now", got)
			}
			if len(tt.waiting) > 0 && got == "" {
				t.Errorf("revoked now; want it to wait")
			}
			for _, w := range tt.waiting {
				if !strings.Contains(got, w) {
					t.Errorf("reason %q does not say %q", got, w)
				}
			}
		})
	}
}
