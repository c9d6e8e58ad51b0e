package render_test

import (
	"testing"

	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// fuzzCatalog is small: two clusters sharing a label, so selectors fan out.
const fuzzCatalog = `apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: prod-eu
  labels: {env: prod}
spec:
  credentials: {kubeconfigContext: prod-eu}
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: prod-us
  labels: {env: prod}
spec:
  credentials: {kubeconfigContext: prod-us}
`

var fuzzSeeds = []string{
	`apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
  namespace: payments
  labels: {team: payments}
spec:
  issuer: fleet
  commonName: api.payments.svc.cluster.local
  dnsNames:
    - api.payments.svc.cluster.local
    - api.payments.svc
  ipAddresses: [10.0.0.1, "fd00::1"]
  uris: ["spiffe://fleet.test/ns/payments/sa/api"]
  usages: [digital signature, key encipherment, server auth, client auth]
  duration: 90d
  renewBefore: 720h
  privateKey: {algorithm: RSA, size: 3072, encoding: PKCS8}
  targets:
    - kubernetes:
        clusterSelector: {matchLabels: {env: prod}}
        namespace: payments
        secretName: api-tls
        secretTemplate:
          labels: {team: payments}
          annotations: {owner: "payments@example.com"}
    - kubernetes: {cluster: prod-eu, namespace: payments, secretName: api-tls}
    - vaultKV: {mount: secret, path: tls/api}
    - directory: {path: /etc/tls/api}
`,
	`apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata:
  name: services
  namespace: web
spec:
  nameTemplate: ${svc}-tls
  template:
    issuer: fleet
    dnsNames: ["${svc}.web.svc.cluster.local"]
    duration: ${days:=30}d
    privateKey: {size: ${bits:=256}}
    targets:
      - kubernetes: {cluster: "${cluster}", namespace: web, secretName: "${svc}-tls"}
      - vaultKV: {mount: secret, path: "web/${svc}"}
  items:
    - {svc: www, cluster: prod-eu}
    - {svc: www, cluster: prod-us}
    - {svc: api, cluster: prod-ap, bits: "384"}
`,
	`# a repository's mixed file
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
---
apiVersion: certfleet.dev/v1alpha1
kind: TrustBundle
metadata: {name: fleet-ca}
spec:
  authorities: [fleet]
  targets:
    - kubernetes: {clusterSelector: {matchLabels: {env: prod}}, namespace: kube-system, name: fleet-ca}
    - directory: {path: /etc/ssl/fleet}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: rogue}
spec: {authority: fleet}
---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: dup}
spec:
  issuer: fleet
  dnsNames: [dup.example.com]
  targets: [{directory: {path: /etc/tls/dup/}}, {directory: {path: /etc/tls/dup}}]
---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: dup}
spec: {issuer: fleet, commonName: dup, targets: [{vaultKV: {mount: secret, path: /a/b/}}]}
`,
	"apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: &m {name: a}\nspec:\n  issuer: fleet\n  commonName: a\n  targets:\n    - &t {kubernetes: {cluster: prod-eu, namespace: a, secretName: a}}\n    - *t\n",
	"---\n---\nkind: Certificate\n\t- broken: [\n",
}

// FuzzRender renders one or two files, with and without a catalog: Render
// never panics, every desired certificate has an ID, and no two targets of
// the result write the same place.
func FuzzRender(f *testing.F) {
	for _, a := range fuzzSeeds {
		f.Add([]byte(a), []byte(nil), true)
		f.Add([]byte(a), []byte(nil), false)
		for _, b := range fuzzSeeds {
			f.Add([]byte(a), []byte(b), true)
		}
	}
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(fuzzCatalog))
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, a, b []byte, withCatalog bool) {
		snap := &source.Snapshot{Files: []source.File{{Path: "a.yaml", Data: a}}}
		if len(b) > 0 {
			snap.Files = append(snap.Files, source.File{Path: "b.yaml", Data: b})
		}
		c := cat
		if !withCatalog {
			c = nil
		}
		rr := render.NewRenderer()
		r := rr.Render(snap, c)
		keys := map[string]string{}
		ids := map[string]bool{}
		for _, d := range r.Desired {
			if d.ID == "" {
				t.Fatalf("a desired certificate from %s:%d has no ID", d.File(), d.Line())
			}
			if ids[d.ID] {
				t.Fatalf("ID %s is desired twice", d.ID)
			}
			ids[d.ID] = true
			for _, tg := range d.Targets {
				if tg.Key == "" {
					t.Fatalf("%s has a target without a key: %+v", d.ID, tg)
				}
				if other, taken := keys[tg.Key]; taken {
					t.Fatalf("target %s is written by %s and %s", tg.Key, other, d.ID)
				}
				keys[tg.Key] = d.ID
			}
		}
		// The cache gives the same answer as a fresh parse.
		again := rr.Render(snap, c)
		if len(again.Desired) != len(r.Desired) || len(again.Errors) != len(r.Errors) {
			t.Fatalf("a second render differs: %d desired and %d errors, then %d and %d",
				len(r.Desired), len(r.Errors), len(again.Desired), len(again.Errors))
		}
	})
}
