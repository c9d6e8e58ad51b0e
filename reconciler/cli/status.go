package cli

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/reconciler/fleetpage"
)

func statusCommand() *cobra.Command {
	var (
		f      passFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "status <certificate>",
		Short: "Show one certificate as the fleet page does: where it is declared, the policies' verdict, chain, targets and history",
		Long: `Observe one certificate, changing nothing: its manifest file, line and
revision, the policies' verdict, its SANs and chain, each target's state, and
its history from the audit log (commit → verdict → serial → each target's
write). The certificate is namespace/name, as inventory lists it.`,
		Example: `  certfleet status payments/api --source . --kubeconfig ~/.kube/config
  certfleet status payments/api -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("unknown output format %q: use text or json", output)
			}
			p, err := f.prepare(cmd)
			if err != nil {
				return err
			}
			defer p.close()
			dry := *p.pass
			dry.DryRun, dry.Prune = true, false
			rep, err := dry.Run(cmd.Context(), p.result, p.verdicts)
			if err != nil {
				return err
			}
			fleet := &fleetpage.Fleet{Now: time.Now(), Revision: rep.Revision, Result: rep, Verdicts: p.verdicts,
				Catalog: p.catalog, Inventory: rep.Inventory, AuditLog: p.auditLog}
			facts, err := fleetpage.FactsOf(fleet, args[0])
			if err != nil {
				return err
			}
			return writeReport(cmd.OutOrStdout(), output, facts, func(w io.Writer) error { return statusText(w, facts) })
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// statusText writes a certificate's facts for people.
func statusText(out io.Writer, f *fleetpage.Facts) error {
	e := f.Entry
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "certificate\t%s\n", e.ID)
	fmt.Fprintf(w, "manifest\t%s at %s\n", f.Where, cmp.Or(e.Revision, "(not issued)"))
	fmt.Fprintf(w, "owner\t%s\n", cmp.Or(e.Author, "-"))
	fmt.Fprintf(w, "issuer\t%s\n", e.Issuer)
	if e.Serial != "" {
		fmt.Fprintf(w, "serial\t%s\n", e.Serial)
		fmt.Fprintf(w, "valid\t%s → %s, renews %s\n", e.NotBefore.UTC().Format(time.RFC3339), e.NotAfter.UTC().Format(time.RFC3339), e.RenewAt.UTC().Format(time.RFC3339))
	}
	names := append(append(append([]string{e.CommonName}, e.DNSNames...), e.URIs()...), e.IPAddresses()...)
	fmt.Fprintf(w, "names\t%s\n", strings.Trim(strings.Join(names, ", "), ", "))
	fmt.Fprintf(w, "chain\t%s\n", strings.Join(f.Chain, " ← "))
	switch v := f.Verdict; {
	case v == nil:
		fmt.Fprintf(w, "policies\tno verdict: not declared at this revision\n")
	case v.Allowed:
		fmt.Fprintf(w, "policies\tallowed by %s\n", strings.Join(v.Policies, ", "))
	default:
		fmt.Fprintf(w, "policies\tDENIED by %s\n", strings.Join(v.Policies, ", "))
		for _, x := range v.Violations {
			fmt.Fprintf(w, "\t%v\n", x)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\ntargets:\n")
	for _, t := range f.Targets {
		fmt.Fprintf(out, "  %-14s %s  %s %s\n", t.Reason, t.Target, t.Serial, t.Message)
	}
	fmt.Fprintf(out, "\nhistory:\n")
	for _, h := range f.History {
		line := fmt.Sprintf("  %s  %-8s %s", h.Time.UTC().Format(time.RFC3339), h.Action, cmp.Or(h.Revision, "-"))
		if h.Author != "" {
			line += " by " + h.Author
		}
		if h.Serial != "" {
			line += "  serial " + h.Serial
		}
		if h.Target != "" {
			line += "  → " + h.Target
		}
		if h.Error != "" {
			line += "  FAILED: " + h.Error
		}
		fmt.Fprintln(out, line+"  ("+h.Actor+")")
	}
	return nil
}
