package schemas

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Catalog is the platform's declared PKI: the authorities, issuers, policies
// and clusters the Terraform provider writes and the reconciler reads.
type Catalog struct {
	Authorities map[string]*Authority
	Issuers     map[string]*Issuer
	Policies    map[string]*Policy
	Clusters    map[string]*Cluster
	// Rollout paces mass reissues (nil: every reissue goes at once).
	Rollout *Rollout
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{
		Authorities: map[string]*Authority{},
		Issuers:     map[string]*Issuer{},
		Policies:    map[string]*Policy{},
		Clusters:    map[string]*Cluster{},
	}
}

// IsCatalogKind reports whether kind belongs in the catalog.
func IsCatalogKind(kind string) bool {
	switch kind {
	case KindAuthority, KindIssuer, KindPolicy, KindCluster, KindRollout:
		return true
	}
	return false
}

// Add puts an object in the catalog, replacing one of the same kind and name.
func (c *Catalog) Add(obj any) error {
	switch o := obj.(type) {
	case *Authority:
		c.Authorities[o.Metadata.Name] = o
	case *Issuer:
		c.Issuers[o.Metadata.Name] = o
	case *Policy:
		c.Policies[o.Metadata.Name] = o
	case *Cluster:
		c.Clusters[o.Metadata.Name] = o
	case *Rollout:
		if c.Rollout != nil && c.Rollout.Metadata.Name != o.Metadata.Name {
			return fmt.Errorf("a second Rollout %q beside %q: a catalog holds one Rollout, which every pass follows (merge their waves into one)",
				o.Metadata.Name, c.Rollout.Metadata.Name)
		}
		c.Rollout = o
	default:
		return fmt.Errorf("%T is not a catalog kind (Authority, Issuer, Policy, Cluster, Rollout)", obj)
	}
	return nil
}

// Objects returns every object, by kind (Authority, Issuer, Policy, Cluster,
// Rollout) then name, so snapshots are stable.
func (c *Catalog) Objects() []any {
	var out []any
	for _, n := range slices.Sorted(maps.Keys(c.Authorities)) {
		out = append(out, c.Authorities[n])
	}
	for _, n := range slices.Sorted(maps.Keys(c.Issuers)) {
		out = append(out, c.Issuers[n])
	}
	for _, n := range slices.Sorted(maps.Keys(c.Policies)) {
		out = append(out, c.Policies[n])
	}
	for _, n := range slices.Sorted(maps.Keys(c.Clusters)) {
		out = append(out, c.Clusters[n])
	}
	if c.Rollout != nil {
		out = append(out, c.Rollout)
	}
	return out
}

// Encode writes the catalog as a multi-document YAML snapshot, the file
// `certfleet catalog export` writes and `--catalog` reads.
func (c *Catalog) Encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# certfleet catalog snapshot (" + APIVersion + ")\n")
	for _, o := range c.Objects() {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// DecodeCatalog reads a snapshot (or any file of catalog kinds), validating
// each object; repository kinds in it are errors.
func DecodeCatalog(file string, data []byte) (*Catalog, Errors) {
	c := NewCatalog()
	dec := Decode(file, data)
	list := dec.Errors
	for _, d := range dec.Documents {
		if !IsCatalogKind(d.Kind) {
			list = append(list, d.Locate(Errors{{Field: "kind", Problem: fmt.Sprintf("%s is not a catalog kind", d.Kind),
				Hint: "a catalog holds Authority, Issuer, Policy, Cluster and Rollout objects; certificates belong in the repository"}})...)
			continue
		}
		if errs := Validate(d.Object); len(errs) > 0 {
			list = append(list, d.Locate(errs)...)
			continue
		}
		if err := c.Add(d.Object); err != nil {
			list = append(list, d.Locate(Errors{{Field: "metadata.name", Problem: err.Error()}})...)
		}
	}
	return c, list
}

// ClustersMatching returns the clusters whose labels include every label of
// the selector, sorted by name.
func (c *Catalog) ClustersMatching(matchLabels map[string]string) []*Cluster {
	// Kubernetes' own selector semantics, so a selector means here what it
	// means to kubectl.
	sel := labels.SelectorFromSet(matchLabels)
	var out []*Cluster
	for _, n := range slices.Sorted(maps.Keys(c.Clusters)) {
		if cl := c.Clusters[n]; sel.Matches(labels.Set(cl.Metadata.Labels)) {
			out = append(out, cl)
		}
	}
	return out
}

// PolicyList returns the policies sorted by name.
func (c *Catalog) PolicyList() []*Policy {
	out := make([]*Policy, 0, len(c.Policies))
	for _, n := range slices.Sorted(maps.Keys(c.Policies)) {
		out = append(out, c.Policies[n])
	}
	return out
}

// IssuerLimits is what bounds a certificate's lifetime through its issuer:
// the role's max TTL and the authority's expiry.
type IssuerLimits struct {
	MaxTTL            time.Duration
	AuthorityNotAfter *time.Time
	Authority         string
}

// Limits returns the lifetime bounds of an issuer; found is false when the
// issuer is not in the catalog.
func (c *Catalog) Limits(issuer string) (IssuerLimits, bool) {
	iss, ok := c.Issuers[issuer]
	if !ok {
		return IssuerLimits{}, false
	}
	l := IssuerLimits{Authority: iss.Spec.Authority}
	l.MaxTTL, _ = iss.Spec.MaxTTL.Parse()
	if a, ok := c.Authorities[iss.Spec.Authority]; ok {
		l.AuthorityNotAfter = a.Status.NotAfter
	}
	return l, true
}

// TrustedCertificates are the CA certificates workloads should trust for
// the named authorities now: each one's current certificate, the ones
// rotation replaced that have not expired and are not retired (so during a
// rotation both old and new), and the root at the top of its chain; each
// once, in that order. retired (nil: none is) says a previous CA no
// certificate still depends on.
func (c *Catalog) TrustedCertificates(authorities []string, now time.Time, retired func(PreviousIssuer) bool) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(pem string) {
		pem = strings.TrimSpace(pem) + "\n"
		if pem != "\n" && !seen[pem] {
			seen[pem] = true
			out = append(out, pem)
		}
	}
	for _, name := range authorities {
		a, ok := c.Authorities[name]
		if !ok {
			return nil, fmt.Errorf("authority %q is not in the catalog", name)
		}
		if a.Status.Certificate == "" {
			return nil, fmt.Errorf("authority %q has no certificate yet", name)
		}
		add(a.Status.Certificate)
		for _, p := range a.Status.PreviousIssuers {
			if p.NotAfter.After(now) && (retired == nil || !retired(p)) {
				add(p.Certificate)
			}
		}
		if n := len(a.Status.CAChain); n > 0 {
			add(a.Status.CAChain[n-1])
		}
	}
	return out, nil
}
