package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
)

// revocationReasons are RFC 5280's reason codes as people write them.
var revocationReasons = []string{"unspecified", "keyCompromise", "caCompromise", "affiliationChanged", "superseded", "cessationOfOperation"}

func revokeCommand() *cobra.Command {
	var (
		f      passFlags
		reason string
	)
	cmd := &cobra.Command{
		Use:   "revoke <certificate>...",
		Short: "Reissue certificates now, then revoke the serials they replace",
		Long: `Replace each named certificate (namespace/name) and revoke the one it
replaces, in that order: a pass runs at once and reissues them with new keys
(as renew --now does), and only a certificate whose new serial is recorded
has its old serial revoked, so no workload is left holding only a revoked
certificate. The revocation goes to the authority's CRL (Vault backends);
the audit log records the request, the reissue and the revocation with who
asked and why (Vault's revoke takes no reason code, so the CRL entry has
none).`,
		Example: `  certfleet revoke payments/api --reason keyCompromise --source . --backend vault`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(revocationReasons, reason) {
				return fmt.Errorf("--reason %q: use one of %s", reason, strings.Join(revocationReasons, ", "))
			}
			ctx := cmd.Context()
			p, err := f.prepare(cmd)
			if err != nil {
				return err
			}
			defer p.close()
			b := p.pass.Backend
			if _, ok := b.(backend.Revoker); !ok {
				return fmt.Errorf("%s publishes no CRL, so nothing can be revoked: renew the certificates instead (certfleet renew --now)", b.Describe())
			}
			ids, err := chosen(p.result.Desired, args, labels.Nothing())
			if err != nil {
				return err
			}
			// Every certificate must be revocable before anything is reissued.
			revocable := func(e *inventory.Entry) error {
				_, err := reconcile.RevocationAuthority(p.catalog, e.Issuer)
				return err
			}
			before, err := requestRenewals(cmd, p, ids, "revoke-requested", reason, revocable)
			if err != nil {
				return err
			}
			rep, err := p.pass.Run(ctx, p.result, p.verdicts)
			if err != nil {
				return interrupted(ctx, fmt.Errorf("%w; nothing was revoked", err))
			}
			if err := rep.Text(cmd.OutOrStdout()); err != nil {
				return err
			}
			after, err := inventory.Load(ctx, b)
			if err != nil {
				return fmt.Errorf("reading the inventory after the reissue (nothing was revoked): %w", err)
			}
			var kept []string
			for _, id := range ids {
				old := before[id].Serial
				now := after[id]
				if now == nil || now.Serial == old {
					kept = append(kept, fmt.Sprintf("%s (serial %s)", id, old))
					continue
				}
				if err := p.pass.Revoke(ctx, before[id], reason); err != nil {
					return fmt.Errorf("%s: reissued as %s, but revoking %s failed: %w", id, now.Serial, old, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: serial %s revoked (%s); serial %s delivered in its place\n", id, old, reason, now.Serial)
			}
			if len(kept) > 0 {
				return fmt.Errorf("not revoked, because the reissue did not complete (see the report above), so the old certificate is still the one delivered: %s; "+
					"once a pass has reissued them, revoke those serials in their authority's mount (vault write <mount>/revoke serial_number=<serial>)", strings.Join(kept, ", "))
			}
			return interrupted(ctx, nil)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "unspecified", "why, for the audit log: "+strings.Join(revocationReasons, ", "))
	return cmd
}
