package reconcile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/schemas"
)

// proofEnvs are the two "clusters" of the proof: each a kube cluster
// labelled env=<name> and a directory tree feeding a pair of mTLS peers.
var proofEnvs = []struct{ env, cluster string }{{"staging", "alpha"}, {"production", "beta"}}

// proofCertificates are one environment's leaves: a server and a client
// certificate, each in a directory the peers read and in a Secret, and a
// worker certificate only in a Secret.
const proofCertificates = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: ENV-server, namespace: payments}
spec:
  issuer: mtls
  commonName: server.ENV.example.test
  dnsNames: [server.ENV.example.test]
  duration: 24h
  targets:
    - directory: {path: ENV/server}
    - kubernetes: {cluster: CLUSTER, namespace: NS-payments, secretName: server-tls}
---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: ENV-client, namespace: payments}
spec:
  issuer: mtls
  commonName: client.ENV.example.test
  dnsNames: [client.ENV.example.test]
  uris: ["spiffe://fleet.test/ns/payments/sa/client"]
  duration: 24h
  targets:
    - directory: {path: ENV/client}
    - kubernetes: {cluster: CLUSTER, namespace: NS-payments, secretName: client-tls}
---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: ENV-worker, namespace: payments}
spec:
  issuer: mtls
  commonName: worker.ENV.example.test
  dnsNames: [worker.ENV.example.test]
  duration: 24h
  targets:
    - kubernetes: {cluster: CLUSTER, namespace: NS-payments, secretName: worker-tls}
`

// proofTrustBundle publishes the authority to a ConfigMap on the staging
// cluster, a Secret on the production one, one directory per environment,
// whose ca.crt the peers verify each other with, and a directory for other
// hosts (no peer reads it: the proof breaks it for one pass).
const proofTrustBundle = `apiVersion: certfleet.dev/v1alpha1
kind: TrustBundle
metadata: {name: fleet}
spec:
  authorities: [root]
  targets:
    - kubernetes: {clusterSelector: {matchLabels: {env: staging}}, namespace: NS-payments, name: fleet-ca}
    - kubernetes: {clusterSelector: {matchLabels: {env: production}}, namespace: NS-payments, name: fleet-ca, kind: Secret}
    - directory: {path: trust/staging}
    - directory: {path: trust/production}
    - directory: {path: trust/hosts}
`

func proofFiles() map[string]string {
	files := map[string]string{"trust.yaml": proofTrustBundle}
	for _, p := range proofEnvs {
		files["teams/"+p.env+"/certificates.yaml"] = strings.NewReplacer("ENV", p.env, "CLUSTER", p.cluster).Replace(proofCertificates)
	}
	return files
}

// proofSoak is how long the staging wave soaks before production starts.
const proofSoak = 30 * time.Minute

// proofRollout reissues the staging cluster's certificates first and the
// production cluster's after the soak.
var proofRollout = &schemas.Rollout{
	TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindRollout},
	Metadata: schemas.ObjectMeta{Name: "fleet"},
	Spec: schemas.RolloutSpec{Waves: []schemas.RolloutWave{
		{Name: "staging", ClusterSelector: &schemas.LabelSelector{MatchLabels: map[string]string{"env": "staging"}}},
		{Name: "production", ClusterSelector: &schemas.LabelSelector{MatchLabels: map[string]string{"env": "production"}}},
	}, Soak: "30m"},
}

// proofCatalog gives the test's catalog clusters their proof labels (the
// shared FleetPKI labels both env=prod), the proof's rollout, and the
// authority retirePreviousIssuer: disable (the old issuer is tidied, its
// CRL stays), in the backend, and loads the catalog again.
func (e *env) proofCatalog() {
	e.t.Helper()
	ctx := context.Background()
	root := e.catalog.Authorities["root"]
	root.Spec.RetirePreviousIssuer = schemas.RetireDisable
	objs := []any{proofRollout, root}
	for _, p := range proofEnvs {
		c := e.catalog.Clusters[p.cluster]
		c.Metadata.Labels = map[string]string{"env": p.env}
		objs = append(objs, c)
	}
	for _, o := range objs {
		if err := backend.PutObject(ctx, e.backend, o); err != nil {
			e.t.Fatal(err)
		}
	}
	cat, err := backend.LoadCatalog(ctx, e.backend)
	if err != nil {
		e.t.Fatal(err)
	}
	e.catalog = cat
}

// bundlePlaces reads every place the trust bundle is written to.
func (e *env) bundlePlaces() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	cm, err := clientset(e.t, alpha).CoreV1().ConfigMaps(e.id+"-payments").Get(ctx, "fleet-ca", metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("the staging cluster's ConfigMap fleet-ca: %v", err)
	}
	out["ConfigMap fleet-ca on alpha (staging)"] = cm.Data["ca.crt"]
	s, err := clientset(e.t, beta).CoreV1().Secrets(e.id+"-payments").Get(ctx, "fleet-ca", metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("the production cluster's Secret fleet-ca: %v", err)
	}
	out["Secret fleet-ca on beta (production)"] = string(s.Data["ca.crt"])
	for _, dir := range []string{"staging", "production", "hosts"} {
		b, err := os.ReadFile(filepath.Join(e.dir, "trust", dir, "ca.crt"))
		if err != nil {
			e.t.Fatal(err)
		}
		out["directory trust/"+dir] = string(b)
	}
	return out
}

// peerPair is one environment's server and client.
type peerPair struct {
	env            string
	server, client *testbed.MTLSPeer
}

// handshakes waits until every client has made at least n more
// successful handshakes than in last (so each state between two passes
// is really exercised), failing at once on a failed handshake, and returns
// the counts. The wait is for progress, not speed: its bound is generous.
func handshakes(t *testing.T, pairs []peerPair, last map[*testbed.MTLSPeer]testbed.MTLSCounts, n int) map[*testbed.MTLSPeer]testbed.MTLSCounts {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		now := map[*testbed.MTLSPeer]testbed.MTLSCounts{}
		done := true
		for _, p := range pairs {
			for _, peer := range []*testbed.MTLSPeer{p.server, p.client} {
				c := peer.Counts(t)
				if c.Failed > 0 {
					t.Fatalf("%s %s: %d failed handshakes: %s", p.env, peer, c.Failed, strings.Join(c.Failures, "; "))
				}
				now[peer] = c
			}
			done = done && now[p.client].OK >= last[p.client].OK+n
		}
		if done {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clients made fewer than %d handshakes in 3 minutes: %+v", n, now)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// phaseSummary prints rotations as authority=phase (leaves remaining), for messages.
func phaseSummary(rs []decide.AuthorityPhase) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s=%d %s (%d leaves left)", r.Authority, r.Phase, r.PhaseName, r.LeavesRemaining)
	}
	return strings.Join(out, " ")
}

// waveSummary prints waves as name=status, for messages.
func waveSummary(ws []decide.Wave) string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name + "=" + string(w.Status)
	}
	return strings.Join(out, " ")
}

// TestTheFleetRotatesItsAuthorityWithoutAFailedHandshake is the proof of
// the CA lifecycle: two clusters' worth of leaves — per environment a
// server and a client certificate in directories feeding a real mTLS
// server and client process that make a handshake every 20 ms, each
// reloading its files, and the same certificates plus a worker's in
// Kubernetes Secrets — and a trust bundle in a ConfigMap, a Secret and
// three directories. The authority rotates in Vault, and passes follow it
// through every phase (NewIssuer in drift; TrustPublishing while one
// bundle place fails; Reissuing in two waves, staging and then, after a
// 30-minute soak on the pass's clock, production; Retired) until the
// rotation is over: not one handshake fails, every leaf is reissued
// exactly once under the new CA, the old CA is gone from every bundle
// place, the old Vault issuer is disabled, and every superseded serial is
// on its CRL.
func TestTheFleetRotatesItsAuthorityWithoutAFailedHandshake(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.proofCatalog()
	files := proofFiles()
	leaves := 3 * len(proofEnvs)

	rep := e.run(files)
	if rep.Actions["issue"] != leaves || rep.TrustBundles != 5 || len(rep.Failures) != 0 {
		t.Fatalf("first pass: actions %v, trust bundle places %d, failures %v", rep.Actions, rep.TrustBundles, rep.Failures)
	}
	// serials[certificate] lists the distinct serials its targets held, in
	// order; changedAt[certificate] is the pass after the rotation that
	// delivered its last one.
	serials, changedAt := map[string][]string{}, map[string]int{}
	passes := 0
	note := func(rep *reconcile.Result) {
		for _, s := range rep.State {
			// Unmanaged TLS Secrets (no certificate) that other tests of
			// the package left in the shared clusters are not the proof's.
			if s.Certificate == "" {
				continue
			}
			if s.Serial != "" && !slices.Contains(serials[s.Certificate], s.Serial) {
				serials[s.Certificate] = append(serials[s.Certificate], s.Serial)
				changedAt[s.Certificate] = passes
			}
		}
	}
	note(rep)
	if len(serials) != leaves {
		t.Fatalf("after the first pass, serials of %d certificates, want %d: %v", len(serials), leaves, serials)
	}
	oldCA := strings.TrimSpace(e.catalog.Authorities["root"].Status.Certificate)
	oldIssuer := e.catalog.Authorities["root"].Status.IssuerID

	var pairs []peerPair
	for _, p := range proofEnvs {
		ca := filepath.Join(e.dir, "trust", p.env, "ca.crt")
		server := testbed.StartMTLSServer(t, filepath.Join(e.dir, p.env, "server"), ca)
		client := testbed.StartMTLSClient(t, filepath.Join(e.dir, p.env, "client"), ca, server, "server."+p.env+".example.test", 20*time.Millisecond)
		pairs = append(pairs, peerPair{env: p.env, server: server, client: client})
	}
	const perPhase = 100 // handshakes each client makes in every state between two passes
	counts := handshakes(t, pairs, nil, perPhase)

	started := time.Now()
	var inPasses time.Duration // of the wall time, what the passes took; the rest is handshakes awaited between them
	if err := backend.RotateAuthority(ctx, e.backend, e.catalog.Authorities["root"]); err != nil {
		t.Fatal(err)
	}
	cat, err := backend.LoadCatalog(ctx, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	e.catalog = cat
	newCA := strings.TrimSpace(cat.Authorities["root"].Status.Certificate)
	newCert, err := pki.ParseCertificate([]byte(newCA))
	if err != nil || newCA == oldCA {
		t.Fatalf("the rotation made no new CA (%v)", err)
	}

	// Phase 1, before any pass: no bundle place holds the new CA.
	checkPhase(t, "drift after the rotation", e.drift(files).Rotations, decide.PhaseNewIssuer, 0, 5, 10, 10)

	// Phase 2: one bundle place (the hosts' directory; no peer reads it)
	// cannot take the new CA, so the others hold old and new and every leaf
	// waits (AwaitingTrust), in every wave.
	hosts := filepath.Join(e.dir, "trust", "hosts")
	if err := os.RemoveAll(hosts); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hosts, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(10 * time.Minute)
	passStart := time.Now()
	rep = e.run(files)
	inPasses += time.Since(passStart)
	t.Logf("pass 0 after the rotation, trust/hosts broken: reasons %v, actions %v, failures %d", rep.Reasons, rep.Actions, len(rep.Failures))
	checkPhase(t, "a bundle place failing", rep.Rotations, decide.PhaseTrustPublishing, 4, 5, 10, 10)
	if len(rep.Actions) != 0 || rep.Reasons[decide.AwaitingTrust] != 10 || len(rep.Failures) != 1 {
		t.Fatalf("a bundle place failing: actions %v reasons %v failures %v, want every leaf AwaitingTrust and the place's failure", rep.Actions, rep.Reasons, rep.Failures)
	}
	counts = handshakes(t, pairs, counts, perPhase)
	if err := os.Remove(hosts); err != nil {
		t.Fatal(err)
	}

	// Phases 3 and 4: passes follow the rotation, ten minutes apart on the pass's clock,
	// until the old CA has left every bundle place and a pass has nothing
	// to do: staging's wave first, production's once staging has soaked.
	reissued, revoked := 0, 0
	var sawRotated bool
	passNow := map[int]time.Time{}
	waves := map[int][]decide.Wave{}
	phases := map[int]decide.AuthorityPhase{}
	waiting := map[int]int{}
	for done := false; !done; {
		passes++
		if passes > 8 {
			t.Fatalf("the rotation is not over after 8 passes: serials %v", serials)
		}
		e.now = e.now.Add(10 * time.Minute)
		passNow[passes] = e.now
		passStart = time.Now()
		rep := e.run(files)
		inPasses += time.Since(passStart)
		if len(rep.Failures) != 0 {
			t.Fatalf("pass %d: failures %v", passes, rep.Failures)
		}
		t.Logf("pass %d after the rotation: reasons %v, actions %v, revoked %d, trust bundle places written %d, waves %s, phase %s",
			passes, rep.Reasons, rep.Actions, rep.Revoked, rep.TrustBundles, waveSummary(rep.Waves), phaseSummary(rep.Rotations))
		note(rep)
		reissued += rep.Actions["reissue"]
		revoked += rep.Revoked
		sawRotated = sawRotated || rep.Reasons[decide.AuthorityRotated] > 0
		waves[passes], waiting[passes] = rep.Waves, rep.Reasons[decide.WaitingForWave]
		if len(rep.Rotations) != 1 {
			t.Fatalf("pass %d: rotations %+v, want root's", passes, rep.Rotations)
		}
		phases[passes] = rep.Rotations[0]
		// Every bundle place holds the new CA after every pass (a leaf is
		// never reissued under a CA a bundle does not hold), and the old one
		// while any leaf still has an old serial.
		places := e.bundlePlaces()
		oldGone, oldNeeded := true, false
		for _, s := range serials {
			oldNeeded = oldNeeded || len(s) < 2
		}
		for place, pem := range places {
			if !strings.Contains(pem, newCA) {
				t.Fatalf("pass %d: %s does not hold the new CA", passes, place)
			}
			if oldNeeded && !strings.Contains(pem, oldCA) {
				t.Fatalf("pass %d: %s dropped the old CA while a leaf still depends on it", passes, place)
			}
			oldGone = oldGone && !strings.Contains(pem, oldCA)
		}
		counts = handshakes(t, pairs, counts, perPhase)
		done = oldGone && len(rep.Actions) == 0
	}
	wall := time.Since(started)

	if !sawRotated {
		t.Error("no pass reported AuthorityRotated")
	}
	if reissued != leaves {
		t.Errorf("%d reissues, want one per leaf (%d)", reissued, leaves)
	}
	// The waves: the staging wave in the first pass; the production wave
	// — the production cluster's leaves and every leaf with a directory
	// target, which no cluster label places (a Rollout puts them in its last
	// wave), so both mTLS pairs' — together in one later pass, at least the
	// soak after staging's; and the production wave held (WaitingForWave)
	// in every pass between.
	production := 0
	for name := range serials {
		if name == "payments/staging-worker" {
			if changedAt[name] != 1 {
				t.Errorf("%s was reissued in pass %d, want the first (the staging wave)", name, changedAt[name])
			}
		} else if production == 0 {
			production = changedAt[name]
		} else if changedAt[name] != production {
			t.Errorf("%s was reissued in pass %d, another leaf of the production wave in pass %d: want them together", name, changedAt[name], production)
		}
	}
	if soaked := passNow[production].Sub(passNow[1]); production <= 1 || soaked < proofSoak {
		t.Errorf("the production wave was reissued in pass %d, %s after staging: want a later pass, at least %s after", production, soaked, proofSoak)
	}
	for p := 1; p < production; p++ {
		if waiting[p] != 9 || len(waves[p]) != 2 || waves[p][1].Status != decide.WaveWaiting {
			t.Errorf("pass %d: %d targets WaitingForWave, waves %s; want the production wave's 9 targets held", p, waiting[p], waveSummary(waves[p]))
		}
	}
	// Reissuing (3) until the production wave's pass, which leaves no leaf
	// of the old CA; Retired (4) in the last, which drops it from the bundles.
	for p := 1; p <= passes; p++ {
		want, left := decide.PhaseReissuing, 9
		switch {
		case p == passes:
			want, left = decide.PhaseRetired, 0
		case p >= production:
			left = 0
		}
		if ph := phases[p]; ph.Phase != want || ph.LeavesRemaining != left || ph.PlacesTrusting != 5 || ph.Places != 5 {
			t.Errorf("pass %d: phase %s, want %d %s with %d leaves left and 5/5 places", p, phaseSummary([]decide.AuthorityPhase{ph}), want, want, left)
		}
	}
	if usage := vaultIssuers(t, e, e.id+"-pki")[oldIssuer]; usage != "crl-signing,read-only" {
		t.Errorf("the old issuer's usage after the rotation is %q, want crl-signing,read-only (retirePreviousIssuer: disable)", usage)
	}
	var superseded []string
	for name, s := range serials {
		if len(s) != 2 {
			t.Errorf("%s held serials %v, want its first and exactly one reissue", name, s)
			continue
		}
		superseded = append(superseded, s[0])
	}
	sort.Strings(superseded)
	for _, p := range proofEnvs {
		for _, kind := range []string{"server", "client"} {
			crt, err := os.ReadFile(filepath.Join(e.dir, p.env, kind, "tls.crt"))
			if err != nil {
				t.Fatal(err)
			}
			c, err := pki.ParseCertificate(crt)
			if err != nil || c.CheckSignatureFrom(newCert) != nil {
				t.Errorf("%s %s: the leaf is not signed by the new CA (%v)", p.env, kind, err)
			}
		}
	}

	// Each pair made handshakes with the old certificates and with the
	// new ones, on both sides, and not one failed.
	var made, failed, torn int // made: the clients' successful handshakes; failed and torn: both ends'
	for _, p := range pairs {
		first := func(kind string) string { return serials["payments/"+p.env+"-"+kind][0] }
		last := func(kind string) string { s := serials["payments/"+p.env+"-"+kind]; return s[len(s)-1] }
		for _, peer := range []struct {
			m         *testbed.MTLSPeer
			own, peer string
		}{{p.server, "server", "client"}, {p.client, "client", "server"}} {
			c := counts[peer.m]
			failed, torn = failed+c.Failed, torn+c.TornReads
			if peer.m == p.client {
				made += c.OK
			}
			if c.Presented[first(peer.own)] == 0 || c.Presented[last(peer.own)] == 0 || c.Peer[first(peer.peer)] == 0 || c.Peer[last(peer.peer)] == 0 {
				t.Errorf("%s %s did not make handshakes with both the old and the new certificates: presented %v, saw %v", p.env, peer.m, c.Presented, c.Peer)
			}
		}
	}
	if failed != 0 {
		t.Errorf("%d failed handshakes", failed)
	}

	// The superseded serials are on the old CA's CRL, and only they.
	if revoked != leaves {
		t.Errorf("%d revoked, want the %d superseded certificates", revoked, leaves)
	}
	crl := issuerCRL(t, e.id+"-pki", oldIssuer)
	for _, s := range superseded {
		if !crl[s] {
			t.Errorf("superseded serial %s is not on the old CA's CRL", s)
		}
	}
	for name, s := range serials {
		if crl[s[len(s)-1]] {
			t.Errorf("%s: the current serial %s is on the CRL", name, s[len(s)-1])
		}
	}

	if rep := e.run(files); len(rep.Actions) != 0 || len(rep.Failures) != 0 || rep.Revoked != 0 {
		t.Errorf("a pass after the rotation: actions %v revoked %d failures %v, want nothing", rep.Actions, rep.Revoked, rep.Failures)
	}
	t.Logf("proof: %d leaves reissued once each over %d passes in %s of wall time (%s in the passes); %d mTLS handshakes made, %d failed (either end), %d torn reads kept the previous files; %d superseded serials on the old CA's CRL",
		reissued, passes+1, wall.Round(time.Millisecond), inPasses.Round(time.Millisecond), made, failed, torn, len(superseded))
}
