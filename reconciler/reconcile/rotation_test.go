package reconcile_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/schemas"
)

// TestRotationPhasesEndWithTheOldVaultIssuerTidied follows an authority's
// rotation through its phases — in drift before any pass, in each pass's
// result, in the audit log — to the old Vault issuer tidied per
// retirePreviousIssuer: disable leaves it signing only its CRL; delete
// deletes it and its key, unless a serial it signed was revoked and has not
// expired (certfleet revokes the leaves a rotation supersedes), when it is
// disabled instead so that serial stays on its CRL. The new issuer still
// issues afterwards.
func TestRotationPhasesEndWithTheOldVaultIssuerTidied(t *testing.T) {
	for _, tc := range []struct {
		name           string
		mode           schemas.RetireMode
		keepSuperseded bool
		deleted        bool
	}{
		{name: "disable", mode: schemas.RetireDisable},
		{name: "delete, nothing revoked", mode: schemas.RetireDelete, keepSuperseded: true, deleted: true},
		{name: "delete, the superseded serial revoked and unexpired", mode: schemas.RetireDelete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			mount := e.id + "-pki"
			root := e.catalog.Authorities["root"]
			root.Spec.RetirePreviousIssuer = tc.mode
			if err := backend.PutObject(ctx, e.backend, root); err != nil {
				t.Fatal(err)
			}
			// Each run reads the catalog, as the commands and the daemon do.
			run := func() *reconcile.Result {
				t.Helper()
				cat, err := backend.LoadCatalog(ctx, e.backend)
				if err != nil {
					t.Fatal(err)
				}
				e.catalog = cat
				p := e.pass()
				p.KeepSuperseded = tc.keepSuperseded
				return e.runWith(p, files(e))
			}
			if rep := run(); rep.Actions["issue"] != 1 || len(rep.Rotations) != 0 {
				t.Fatalf("first pass: actions %v rotations %v, want an issue and no rotation", rep.Actions, rep.Rotations)
			}
			before := e.dirLeaf("api")

			if err := backend.RotateAuthority(ctx, e.backend, root); err != nil {
				t.Fatal(err)
			}
			cat, err := backend.LoadCatalog(ctx, e.backend)
			if err != nil {
				t.Fatal(err)
			}
			e.catalog = cat
			old := cat.Authorities["root"].Status.PreviousIssuers[0].IssuerID
			current := cat.Authorities["root"].Status.IssuerID

			// drift, before any pass: no bundle place holds the new CA yet.
			d := e.drift(files(e))
			checkPhase(t, "drift after the rotation", d.Rotations, decide.PhaseNewIssuer, 0, 3, 4, 4)
			var text strings.Builder
			if err := d.Text(&text); err != nil || !strings.Contains(text.String(), "rotation of authority root: phase 1/4 NewIssuer") {
				t.Errorf("drift's text does not show the phase (%v):\n%s", err, text.String())
			}
			b, err := json.Marshal(d)
			if err != nil || !strings.Contains(string(b), `"rotations":[{"authority":"root","phase":1,"phaseName":"NewIssuer","placesTrusting":0,"places":3,"leavesRemaining":4,"leavesAwaitingTrust":4`) {
				t.Errorf("drift's JSON does not carry the rotation (%v): %s", err, b)
			}

			// One bundle place cannot take the new CA: the leaves wait.
			trust := filepath.Join(e.dir, "trust")
			if err := os.RemoveAll(trust); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(trust, []byte("not a directory"), 0o644); err != nil {
				t.Fatal(err)
			}
			rep := run()
			checkPhase(t, "a bundle place failing", rep.Rotations, decide.PhaseTrustPublishing, 2, 3, 4, 4)
			if len(rep.Actions) != 0 {
				t.Errorf("a leaf was reissued while a bundle place lacks the new CA: %v", rep.Actions)
			}
			if rep := run(); len(rep.Rotations) != 1 || rep.Rotations[0].Since == nil || !rep.Rotations[0].Since.Equal(e.now) {
				t.Errorf("the same phase again: %+v, want since the pass that entered it", rep.Rotations)
			}

			if err := os.Remove(trust); err != nil {
				t.Fatal(err)
			}
			rep = run()
			checkPhase(t, "every place trusting, the leaves reissued", rep.Rotations, decide.PhaseReissuing, 3, 3, 0, 0)
			if rep.Actions["reissue"] != 1 {
				t.Errorf("actions %v, want the reissue", rep.Actions)
			}

			rep = run()
			checkPhase(t, "nothing signed by the old CA", rep.Rotations, decide.PhaseRetired, 3, 3, 0, 0)
			if b, err := os.ReadFile(filepath.Join(trust, "ca.crt")); err != nil || strings.Contains(string(b), strings.TrimSpace(cat.Authorities["root"].Status.PreviousIssuers[0].Certificate)) {
				t.Errorf("the old CA is still in the directory bundle (%v)", err)
			}
			issuers := vaultIssuers(t, e, mount)
			switch usage, listed := issuers[old]; {
			case tc.deleted && listed:
				t.Errorf("the old issuer %s is still in %s (usage %q), want it deleted", old, mount, usage)
			case !tc.deleted && usage != "crl-signing,read-only":
				t.Errorf("the old issuer's usage is %q, want crl-signing,read-only", usage)
			}
			if u := issuers[current]; !strings.Contains(u, "issuing-certificates") {
				t.Errorf("the new issuer's usage is %q: it must still issue", u)
			}
			if !tc.keepSuperseded && !tc.deleted {
				if !issuerCRL(t, mount, old)[serial(before)] {
					t.Errorf("the superseded serial %s is not on the old issuer's CRL any more", serial(before))
				}
			}

			rep = run()
			want := decide.PhaseRetired // the old issuer stays, disabled: until it expires
			if tc.deleted {
				want = decide.PhaseIdle // the catalog no longer names it
			}
			if want == decide.PhaseIdle && len(rep.Rotations) != 0 {
				t.Errorf("after the old issuer was deleted: rotations %+v, want none", rep.Rotations)
			} else if want != decide.PhaseIdle {
				checkPhase(t, "the pass after", rep.Rotations, want, 3, 3, 0, 0)
			}

			// The audit log tells the sequence, one line per change.
			var phases []string
			var retired []inventory.Event
			for _, line := range strings.Split(strings.TrimSpace(e.audit.String()), "\n") {
				var ev inventory.Event
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatal(err)
				}
				switch ev.Action {
				case "rotation-phase":
					if ev.Authority != "root" {
						t.Errorf("a phase line names authority %q", ev.Authority)
					}
					name, _, _ := strings.Cut(strings.TrimPrefix(ev.Reason, "phase "), " (")
					phases = append(phases, name)
				case "retire-issuer", "retire-issuer-failed":
					retired = append(retired, ev)
				}
			}
			wantPhases := "2 TrustPublishing,3 Reissuing,4 Retired"
			if tc.deleted {
				wantPhases += ",0 Idle"
			}
			if got := strings.Join(phases, ","); got != wantPhases {
				t.Errorf("audit log phases %s, want %s", got, wantPhases)
			}
			wantRetire := map[string]string{"disable": "disabled issuer " + old, "delete, nothing revoked": "deleted issuer " + old + " and its key",
				"delete, the superseded serial revoked and unexpired": "it is deleted once revoked serial " + serial(before) + " expires"}[tc.name]
			if len(retired) != 1 || retired[0].Action != "retire-issuer" || !strings.Contains(retired[0].Reason, wantRetire) {
				t.Errorf("audit log retire lines %+v, want one saying %q", retired, wantRetire)
			}

			// The new issuer still issues.
			if e.catalog, err = backend.LoadCatalog(ctx, e.backend); err != nil {
				t.Fatal(err)
			}
			more := files(e)
			more["other.yaml"] = otherCert
			if rep := e.run(more); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
				t.Fatalf("issuing after the rotation: actions %v failures %v", rep.Actions, rep.Failures)
			}
			newCA, err := pki.ParseCertificate([]byte(e.catalog.Authorities["root"].Status.Certificate))
			if err != nil {
				t.Fatal(err)
			}
			if leaf := e.dirLeaf("other"); leaf.CheckSignatureFrom(newCA) != nil {
				t.Error("the certificate issued after the rotation is not signed by the new CA")
			}
		})
	}
}

const otherCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: other, namespace: payments}
spec:
  issuer: mtls
  dnsNames: [other.payments.svc.cluster.local]
  duration: 24h
  targets: [{directory: {path: other}}]
`

func files(e *env) map[string]string {
	f := e.api()
	f["trust.yaml"] = fleetTrustBundle
	return f
}

// checkPhase checks the root authority's rotation: its phase, the bundle
// places trusting the new CA of all, the leaves left and those awaiting trust.
func checkPhase(t *testing.T, when string, rotations []decide.AuthorityPhase, phase decide.Phase, trusting, places, left, awaiting int) {
	t.Helper()
	if len(rotations) != 1 || rotations[0].Authority != "root" {
		t.Fatalf("%s: rotations %+v, want root's", when, rotations)
	}
	r := rotations[0]
	if r.Phase != phase || r.PhaseName != phase.String() || r.PlacesTrusting != trusting || r.Places != places ||
		r.LeavesRemaining != left || r.LeavesAwaitingTrust != awaiting {
		t.Errorf("%s: phase %d %s, places %d/%d, leaves %d (awaiting %d); want phase %d, places %d/%d, leaves %d (awaiting %d) — %s",
			when, r.Phase, r.PhaseName, r.PlacesTrusting, r.Places, r.LeavesRemaining, r.LeavesAwaitingTrust,
			phase, trusting, places, left, awaiting, r.Message)
	}
}

// vaultIssuers are the issuers of a PKI mount by ID, with their usage.
func vaultIssuers(t *testing.T, e *env, mount string) map[string]string {
	t.Helper()
	c := e.vault.Client().Logical()
	list, err := c.List(mount + "/issuers")
	if err != nil || list == nil {
		t.Fatalf("listing the issuers of %s: %v", mount, err)
	}
	out := map[string]string{}
	for _, id := range list.Data["keys"].([]any) {
		s, err := c.Read(mount + "/issuer/" + id.(string))
		if err != nil {
			t.Fatal(err)
		}
		out[id.(string)], _ = s.Data["usage"].(string)
	}
	return out
}

// issuerCRL is the serials on one issuer's CRL (not the mount's default).
func issuerCRL(t *testing.T, mount, id string) map[string]bool {
	t.Helper()
	return crlAt(t, mount+"/issuer/"+id+"/crl/der")
}
