package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
)

// trustBundles publishes every TrustBundle: the CA certificates of its
// authorities (during a rotation, old and new) as a ConfigMap or Secret in
// its clusters, or a ca.crt in its directories. Applying the same content
// again changes nothing, so each pass simply applies.
func (p *Pass) trustBundles(ctx context.Context, res *render.Result, rep *Result) {
	for _, tb := range res.TrustBundles {
		name := tb.Metadata.Name
		certs, err := p.Catalog.TrustedCertificates(tb.Spec.Authorities, p.now())
		if err != nil {
			rep.Failures = append(rep.Failures, inventory.Failed("trust bundle "+name, err))
			continue
		}
		pem := strings.Join(certs, "")
		for i, t := range tb.Spec.Targets {
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
					if p.DryRun {
						continue
					}
					if err := p.Kube.WriteTrustBundle(ctx, c, k.Namespace, k.Name, k.Kind, key, pem, name); err != nil {
						rep.Failures = append(rep.Failures, inventory.Failed(fmt.Sprintf("trust bundle %s (targets[%d])", name, i), err))
					} else {
						rep.TrustBundles++
					}
				}
			case t.Directory != nil:
				if p.DryRun {
					continue
				}
				if err := p.Dir.WriteFile(t.Directory.Path, "ca.crt", []byte(pem)); err != nil {
					rep.Failures = append(rep.Failures, inventory.Failed(fmt.Sprintf("trust bundle %s (targets[%d])", name, i), err))
				} else {
					rep.TrustBundles++
				}
			}
		}
	}
}
