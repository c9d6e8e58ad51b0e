package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// bundlePlace is one place a TrustBundle is published: how to write it
// (returning what the place holds afterwards, read back) and how to only
// read it (a dry run).
type bundlePlace struct {
	what  string
	write func(pem string) (string, error)
	read  func() (string, error)
}

// trustBundles publishes every TrustBundle (the CA certificates of its
// authorities: during a rotation, old and new) as a ConfigMap or Secret in
// its clusters, or a ca.crt in its directories, and reads each one back.
// Applying the same content again changes nothing, so each pass simply
// applies. It returns, per authority, how many bundle places name it and
// how many read back holding its current CA (with why the first one does
// not): leaves signed by a previous CA wait (decide.AwaitingTrust) until
// every place does, rather than be reissued under a CA that a workload
// reading that bundle would not trust. It also returns which previous CAs
// it retired from the bundles (nil: none could be). A dry run only reads.
func (p *Pass) trustBundles(ctx context.Context, res *render.Result, obs observed, rep *Result) (map[string]decide.Trust, func(schemas.PreviousIssuer) bool) {
	trust := map[string]decide.Trust{}
	count := func(a string, trusted bool, why string) {
		t := trust[a]
		t.Places++
		if trusted {
			t.Trusting++
		} else if t.Why == "" {
			t.Why = why
		}
		trust[a] = t
	}
	retired := retiredCAs(p.Catalog, obs, res.Scope.Whole())
	for _, tb := range res.TrustBundles {
		name := tb.Metadata.Name
		places := p.bundlePlaces(ctx, tb)
		certs, err := p.Catalog.TrustedCertificates(tb.Spec.Authorities, p.now(), retired)
		if err != nil {
			rep.Failures = append(rep.Failures, inventory.Failed("trust bundle "+name, err))
			for _, a := range tb.Spec.Authorities {
				for range max(len(places), 1) {
					count(a, false, fmt.Sprintf("trust bundle %s cannot be built: %v", name, err))
				}
			}
			continue
		}
		pem := strings.Join(certs, "")
		for _, place := range places {
			var held string
			var err error
			if p.DryRun {
				held, err = place.read()
			} else if held, err = place.write(pem); err != nil {
				rep.Failures = append(rep.Failures, inventory.Failed(fmt.Sprintf("trust bundle %s at %s", name, place.what), err))
			} else {
				rep.TrustBundles++
			}
			for _, a := range tb.Spec.Authorities {
				switch current := strings.TrimSpace(p.Catalog.Authorities[a].Status.Certificate); {
				case err != nil:
					count(a, false, fmt.Sprintf("trust bundle %s at %s could not be written or read back: %v", name, place.what, err))
				case !strings.Contains(held, current):
					count(a, false, fmt.Sprintf("trust bundle %s at %s does not hold the current CA of %s yet", name, place.what, a))
				default:
					count(a, true, "")
				}
			}
		}
	}
	return trust, retired
}

// untrustedOf names the authorities some bundle place does not yet hold
// the current CA of, with why (decide.Input.Untrusted).
func untrustedOf(trust map[string]decide.Trust) map[string]string {
	out := map[string]string{}
	for a, t := range trust {
		if t.Trusting < t.Places {
			out[a] = t.Why
		}
	}
	return out
}

// retiredCAs says which previous CAs nothing depends on any more: no
// observed certificate (a delivered leaf, an unmanaged TLS Secret) and no
// CA certificate of the catalog names it as its signer (by authority key
// ID). They leave the trust bundles before they expire, which ends a
// rotation. Only a pass that saw everything can know that: a scoped pass
// (--path, .certfleetignore) or one that could not observe some target
// retires nothing (nil).
func retiredCAs(cat *schemas.Catalog, obs observed, whole bool) func(schemas.PreviousIssuer) bool {
	if !whole || len(obs.unobservable) > 0 {
		return nil
	}
	used := map[string]bool{}
	for _, o := range obs.byKey {
		if o.Cert != nil {
			used[string(o.Cert.AuthorityKeyId)] = true
		}
	}
	for _, a := range cat.Authorities {
		pems := append([]string{a.Status.Certificate}, a.Status.CAChain...)
		for _, p := range a.Status.PreviousIssuers {
			pems = append(pems, p.Certificate)
		}
		for _, pem := range pems {
			// A self-signed root names itself: that keeps nothing.
			if c, err := pki.ParseCertificate([]byte(pem)); err == nil && !bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId) {
				used[string(c.AuthorityKeyId)] = true
			}
		}
	}
	return func(p schemas.PreviousIssuer) bool {
		c, err := pki.ParseCertificate([]byte(p.Certificate))
		return err == nil && len(c.SubjectKeyId) > 0 && !used[string(c.SubjectKeyId)]
	}
}

// bundlePlaces lists where a TrustBundle goes: each cluster its
// Kubernetes targets name or select, and each directory.
func (p *Pass) bundlePlaces(ctx context.Context, tb *schemas.TrustBundle) []bundlePlace {
	var out []bundlePlace
	for _, t := range tb.Spec.Targets {
		switch {
		case t.Kubernetes != nil:
			k := t.Kubernetes
			clusters := []string{k.Cluster}
			if k.ClusterSelector != nil {
				clusters = nil
				for _, c := range p.Catalog.ClustersMatching(k.ClusterSelector.MatchLabels) {
					clusters = append(clusters, c.Metadata.Name)
				}
			}
			key := k.Key
			if key == "" {
				key = "ca.crt"
			}
			for _, c := range clusters {
				out = append(out, bundlePlace{
					what: fmt.Sprintf("cluster %s %s/%s", c, k.Namespace, k.Name),
					write: func(pem string) (string, error) {
						return p.Kube.WriteTrustBundle(ctx, c, k.Namespace, k.Name, k.Kind, key, pem, tb.Metadata.Name)
					},
					read: func() (string, error) { return p.Kube.ReadTrustBundle(ctx, c, k.Namespace, k.Name, k.Kind, key) },
				})
			}
		case t.Directory != nil:
			dir := t.Directory.Path
			read := func() (string, error) {
				b, err := p.Dir.ReadFile(dir, "ca.crt")
				return string(b), err
			}
			out = append(out, bundlePlace{
				what: "directory " + dir,
				write: func(pem string) (string, error) {
					if err := p.Dir.WriteFile(dir, "ca.crt", []byte(pem)); err != nil {
						return "", err
					}
					return read()
				},
				read: read,
			})
		}
	}
	return out
}
