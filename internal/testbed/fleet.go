package testbed

import (
	"fmt"
	"strings"
)

// FleetCatalog is a catalog snapshot matching the manifests Fleet writes:
// issuer fleet (any name under svc.cluster.local, SPIFFE IDs) and a policy
// that selects it. The authority's status only has an expiry, enough for
// plan's cross-checks; callers that issue apply the catalog to a backend.
const FleetCatalog = `apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata:
  name: fleet
spec:
  type: root
  mount: pki-fleet
  commonName: Fleet
status:
  notAfter: "2036-01-01T00:00:00Z"
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata:
  name: fleet
spec:
  authority: fleet
  allowedDomains: [svc.cluster.local]
  allowSubdomains: true
  allowedURISANs: ["spiffe://fleet.test/*"]
  maxTTL: 2160h
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: fleet
spec:
  selector:
    issuers: [fleet]
    paths: ["teams/**"]
  dnsNames: ["**.svc.cluster.local"]
  uris: ["spiffe://fleet.test/ns/*/sa/*"]
  keyAlgorithms: [{algorithm: ECDSA, minSize: 256}]
  maxDuration: 2160h
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: bench
  labels: {env: bench}
spec:
  credentials: {kubeconfigContext: bench}
`

// Fleet writes n Certificate manifests, perFile documents to a file, as a
// map of path → content for Worktree.Write or a snapshot. Certificate i has
// DNS name, SPIFFE ID and Secret derived from i; generation g adds a SAN to
// the first n/100 certificates, so two generations differ by n/100
// certificates, as a pull request touching one file of a team would.
func Fleet(n, perFile, generation int) map[string]string {
	files := map[string]string{}
	var b strings.Builder
	for i := 0; i < n; i++ {
		team := fmt.Sprintf("team-%03d", i/perFile)
		extra := ""
		if generation > 0 && i < n/100 {
			extra = fmt.Sprintf("\n    - svc-%d-g%d.%s.svc.cluster.local", i, generation, team)
		}
		fmt.Fprintf(&b, `---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: svc-%[1]d
  namespace: %[2]s
spec:
  issuer: fleet
  commonName: svc-%[1]d.%[2]s.svc.cluster.local
  dnsNames:
    - svc-%[1]d.%[2]s.svc.cluster.local%[3]s
  uris: ["spiffe://fleet.test/ns/%[2]s/sa/svc-%[1]d"]
  duration: 720h
  privateKey: {algorithm: ECDSA, size: 256}
  targets:
    - kubernetes: {cluster: bench, namespace: %[2]s, secretName: svc-%[1]d-tls}
`, i, team, extra)
		if (i+1)%perFile == 0 || i == n-1 {
			files["teams/"+team+"/certificates.yaml"] = b.String()
			b.Reset()
		}
	}
	return files
}

// FleetPKI is the catalog the reconciler's and the daemon's tests apply to
// a Vault backend: a root authority on mount, an mTLS issuer (names under
// svc.cluster.local and example.test, SPIFFE IDs under fleet.test), a
// policy that allows those names, and the clusters alpha and beta
// (labelled env=prod, reached through their kubeconfig contexts).
func FleetPKI(mount string) string { return strings.ReplaceAll(fleetPKI, "MOUNT", mount) }

const fleetPKI = `apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: root}
spec: {type: root, mount: MOUNT, commonName: Test Root, ttl: 720h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: mtls}
spec:
  authority: root
  allowedDomains: [svc.cluster.local, example.test]
  allowSubdomains: true
  allowedURISANs: ["spiffe://fleet.test/*"]
  maxTTL: 240h
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: all}
spec:
  dnsNames: ["**.svc.cluster.local", "**.example.test"]
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata: {name: alpha, labels: {env: prod}}
spec: {credentials: {kubeconfigContext: alpha}}
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata: {name: beta, labels: {env: prod}}
spec: {credentials: {kubeconfigContext: beta}}
`

// LocalPKI is a local backend's catalog for the tests that drive the
// certfleet binary on it (faults, scale): an ECDSA P-256 root, an mTLS
// issuer for names under svc.cluster.local (at most 72h), a policy that
// allows them.
const LocalPKI = `apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: root}
spec: {type: root, mount: pki, commonName: Local Root, keyType: ec, keyBits: 256, ttl: 8760h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: mtls}
spec: {authority: root, allowedDomains: [svc.cluster.local], allowSubdomains: true, maxTTL: 72h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: all}
spec: {dnsNames: ["**.svc.cluster.local"]}
`

// ShardCert is a Certificate of namespace payments, issued by mtls
// (FleetPKI, LocalPKI) into the directory name, labelled for a shard
// (certfleet.dev/shard) when label is set.
func ShardCert(name, label string) string {
	labels := ""
	if label != "" {
		labels = ", labels: {certfleet.dev/shard: " + label + "}"
	}
	return fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: %[1]s, namespace: payments%[2]s}
spec:
  issuer: mtls
  commonName: %[1]s.payments.svc.cluster.local
  dnsNames: [%[1]s.payments.svc.cluster.local]
  duration: 24h
  targets:
    - directory: {path: %[1]s}
`, name, labels)
}

// ShardFleet is a repository (path → content) of ShardCerts by name →
// shard label ("": none).
func ShardFleet(labels map[string]string) map[string]string {
	files := map[string]string{}
	for name, l := range labels {
		files["certs/"+name+".yaml"] = ShardCert(name, l)
	}
	return files
}
