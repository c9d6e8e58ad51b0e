package reconcile

import (
	"context"
	"crypto/x509"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// renewalWindows asks the ACME CAs for the renewal windows (ARI) of the
// unexpired certificates their issuers' targets hold with certfleet's marks,
// by serial, for decide. The backend keeps answers until the CA says to ask
// again, so most passes make no request. A CA without ARI, or a failed
// request, leaves the certificate to its lifetime-based renewal time.
func (p *Pass) renewalWindows(ctx context.Context, desired []*render.Desired, obs map[string]*target.Observed, now time.Time) map[string]decide.Window {
	leaves := map[string][]*x509.Certificate{} // by issuer
	ids := map[string]string{}                 // certificate ID by serial, for the log
	for _, d := range desired {
		issuer := d.Certificate.Spec.Issuer
		if iss, ok := p.Catalog.Issuers[issuer]; !ok || iss.Spec.ACME == nil {
			continue
		}
		for _, t := range d.Targets {
			o := obs[t.Key]
			if o == nil || o.Cert == nil || !o.Managed || o.Annotation(target.AnnIssuer) != issuer || !now.Before(o.Cert.NotAfter) {
				continue
			}
			serial := pki.Serial(o.Cert.SerialNumber)
			if _, seen := ids[serial]; !seen {
				leaf, err := o.Cert.X509()
				if err != nil {
					continue
				}
				ids[serial] = d.ID
				leaves[issuer] = append(leaves[issuer], leaf)
			}
		}
	}
	windows := map[string]decide.Window{}
	for _, issuer := range slices.Sorted(maps.Keys(leaves)) {
		found, errs := backend.RenewalWindows(ctx, p.Backend, p.Catalog.Issuers[issuer], leaves[issuer], now)
		maps.Copy(windows, found)
		for _, serial := range slices.Sorted(maps.Keys(errs)) {
			err := errs[serial]
			if errors.Is(err, backend.ErrNoARI) {
				p.log().Debug("no renewal window from the ACME CA: renewing at the lifetime-based time",
					"issuer", issuer, "certificate", ids[serial], "serial", serial, "reason", err.Error())
				continue
			}
			p.log().Warn("asking the ACME CA for a renewal window (ARI) failed: renewing at the lifetime-based time",
				"issuer", issuer, "certificate", ids[serial], "serial", serial, "error", err.Error())
		}
	}
	return windows
}
