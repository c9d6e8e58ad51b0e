package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
)

func renewCommand() *cobra.Command {
	var (
		f        passFlags
		selector string
		now      bool
	)
	cmd := &cobra.Command{
		Use:   "renew [<certificate>...]",
		Short: "Ask for certificates to be reissued (a new key and serial, not a copy): at the next pass, or now",
		Long: `Record a request to reissue each named certificate (namespace/name, as
inventory lists it) and each declared certificate whose labels match
--selector. The request names the serial delivered now: the next pass that
finds it delivered issues a new certificate (with a new key unless the
certificate's rotationPolicy is Never) and delivers it everywhere, and the
request is met once that serial is replaced, so an interrupted pass never
reissues twice. Each request goes into the audit log with who asked;
the issuance that meets it carries the reason RenewalRequested.

With --now, a pass runs at once (as reconcile --once does) and reports.`,
		Example: `  certfleet renew payments/api --source . --backend vault
  certfleet renew --selector team=payments --now --source . --kubeconfig ~/.kube/config`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && selector == "" {
				return fmt.Errorf("name the certificates to renew (namespace/name) or give --selector")
			}
			sel := labels.Nothing()
			if selector != "" {
				var err error
				if sel, err = labels.Parse(selector); err != nil {
					return fmt.Errorf("--selector %q: %w; write a label selector such as team=payments or tier in (web,api)", selector, err)
				}
			}
			ctx := cmd.Context()
			p, err := f.prepare(cmd)
			if err != nil {
				return err
			}
			defer p.close()
			ids, err := chosen(p.result.Desired, args, sel)
			if err != nil {
				return err
			}
			if _, err := requestRenewals(cmd, p, ids, "renew-requested", string(decide.RenewalRequested), nil); err != nil {
				return err
			}
			if !now {
				note(cmd, "the next pass reissues them (or run with --now)")
				return nil
			}
			rep, err := p.pass.Run(ctx, p.result, p.verdicts)
			if err != nil {
				return interrupted(ctx, err)
			}
			if err := rep.Text(cmd.OutOrStdout()); err != nil {
				return err
			}
			if len(rep.Failures) > 0 {
				return WithExitCode(ExitError)
			}
			return interrupted(ctx, nil)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "also renew every declared certificate whose labels match this selector (team=payments, tier in (web,api))")
	cmd.Flags().BoolVar(&now, "now", false, "run a pass now instead of leaving the reissue to the next one")
	return cmd
}

// requestRenewals records a renewal request for each of ids against the
// serial delivered now, with an audit line (action, reason) saying who
// asked; it returns the inventory as it was. A certificate never issued
// has nothing to renew, and check (nil: none) may refuse an entry: nothing
// is recorded then.
func requestRenewals(cmd *cobra.Command, p *prepared, ids []string, action, reason string,
	check func(*inventory.Entry) error) (map[string]*inventory.Entry, error) {
	ctx, b := cmd.Context(), p.pass.Backend
	inv, err := inventory.Load(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("reading the inventory: %w", err)
	}
	var notIssued []string
	for _, id := range ids {
		if e := inv[id]; e == nil || e.Serial == "" {
			notIssued = append(notIssued, id)
		}
	}
	if len(notIssued) > 0 {
		return nil, fmt.Errorf("not issued yet, so there is nothing to renew: %s (the next pass issues them)", strings.Join(notIssued, ", "))
	}
	for _, id := range ids {
		if check == nil {
			break
		}
		if err := check(inv[id]); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
	}
	who, at := actor(), time.Now().UTC()
	for _, id := range ids {
		r := inventory.Renewal{ID: id, Serial: inv[id].Serial, By: who, At: at}
		if err := inventory.RequestRenewal(ctx, b, r); err != nil {
			return nil, fmt.Errorf("recording the renewal of %s in %s: %w", id, b.Describe(), err)
		}
		if err := p.pass.Audit.Log(inventory.Event{Time: at, Action: action, Certificate: id,
			Reason: reason, Serial: r.Serial, Issuer: inv[id].Issuer, Actor: who}); err != nil {
			return nil, fmt.Errorf("writing the audit log: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: renewal of serial %s requested\n", id, r.Serial)
	}
	return inv, nil
}

// chosen is the IDs named, each declared at this revision, and those of the
// declared certificates sel matches, without repeats.
func chosen(desired []*render.Desired, named []string, sel labels.Selector) ([]string, error) {
	declared := map[string]bool{}
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, d := range desired {
		declared[d.ID] = true
		if sel.Matches(labels.Set(d.Certificate.Metadata.Labels)) {
			add(d.ID)
		}
	}
	var unknown []string
	for _, id := range named {
		if !declared[id] {
			unknown = append(unknown, id)
			continue
		}
		add(id)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("not declared at this revision: %s; name certificates as namespace/name, as `certfleet inventory` lists them", strings.Join(unknown, ", "))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("--selector matches no declared certificate")
	}
	return ids, nil
}
