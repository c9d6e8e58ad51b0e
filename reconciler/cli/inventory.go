package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gobwas/glob"
	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/schemas"
)

// filter selects inventory entries; empty fields select everything.
type filter struct {
	expiring time.Duration
	issuer   string
	san      glob.Glob
	cluster  string
	path     glob.Glob
	now      time.Time
}

func (f filter) keep(e *inventory.Entry) bool {
	if f.expiring > 0 && e.NotAfter.After(f.now.Add(f.expiring)) {
		return false
	}
	if f.issuer != "" && e.Issuer != f.issuer {
		return false
	}
	if f.san != nil {
		names := append([]string{e.CommonName}, e.DNSNames...)
		names = append(append(append(names, e.URIs...), e.IPAddresses...), e.EmailAddresses...)
		found := false
		for _, n := range names {
			if n != "" && f.san.Match(n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.cluster != "" {
		found := false
		for _, t := range e.Targets {
			found = found || t.Cluster == f.cluster
		}
		if !found {
			return false
		}
	}
	return f.path == nil || f.path.Match(e.File)
}

func inventoryCommand() *cobra.Command {
	var (
		cat       catalogFlags
		expiring  string
		issuer    string
		san, path string
		cluster   string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "List every certificate the fleet holds, with owner and expiry; search by name, issuer, cluster or path",
		Example: `  certfleet inventory --expiring 7d
  certfleet inventory --san '*.payments.svc.cluster.local' --cluster prod-eu -o json
  certfleet inventory --san 'spiffe://fleet.example.com/ns/payments/**'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := filter{issuer: issuer, cluster: cluster, now: time.Now()}
			if expiring != "" {
				d, err := schemas.Duration(expiring).Parse()
				if err != nil {
					return fmt.Errorf("--expiring: %w", err)
				}
				f.expiring = d
			}
			var err error
			if san != "" {
				if f.san, err = glob.Compile(san); err != nil {
					return fmt.Errorf("--san %q: %w", san, err)
				}
			}
			if path != "" {
				if f.path, err = glob.Compile(path, '/'); err != nil {
					return fmt.Errorf("--path %q: %w", path, err)
				}
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("unknown output format %q: use table or json", output)
			}
			b, err := cat.openBackend(cmd.Context())
			if err != nil {
				return err
			}
			all, err := inventory.Load(cmd.Context(), b)
			if err != nil {
				return err
			}
			var entries []*inventory.Entry
			for _, e := range all {
				if f.keep(e) {
					entries = append(entries, e)
				}
			}
			sort.Slice(entries, func(i, j int) bool { return entries[i].NotAfter.Before(entries[j].NotAfter) })
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if entries == nil {
					entries = []*inventory.Entry{}
				}
				return enc.Encode(entries)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CERTIFICATE\tISSUER\tEXPIRES\tRENEWS\tOWNER\tTARGETS\tFILE")
			for _, e := range entries {
				targets := make([]string, len(e.Targets))
				for i, t := range e.Targets {
					targets[i] = t.Key
				}
				status := ""
				if e.FailingSince != nil {
					status = " (failing since " + e.FailingSince.UTC().Format(time.RFC3339) + ")"
				}
				fmt.Fprintf(w, "%s%s\t%s\t%s (%s)\t%s\t%s\t%s\t%s\n", e.ID, status, e.Issuer, e.NotAfter.UTC().Format("2006-01-02 15:04"),
					until(e.NotAfter, f.now), e.RenewAt.UTC().Format("2006-01-02 15:04"), cmp.Or(e.Author, "-"),
					strings.Join(targets, ","), e.File)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d certificates\n", len(entries), len(all))
			return nil
		},
	}
	cat.register(cmd, "local")
	fl := cmd.Flags()
	fl.StringVar(&expiring, "expiring", "", "only certificates expiring within this long (e.g. 7d)")
	fl.StringVar(&issuer, "issuer", "", "only certificates of this issuer")
	fl.StringVar(&san, "san", "", "only certificates with a common name or SAN (DNS, URI/SPIFFE ID, IP, e-mail) matching this glob")
	fl.StringVar(&cluster, "cluster", "", "only certificates delivered to this cluster")
	fl.StringVar(&path, "path", "", "only certificates declared in files matching this glob (teams/payments/**)")
	fl.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// until says how long until t, in days or hours.
func until(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d < 0:
		return "expired"
	case d >= 48*time.Hour:
		return fmt.Sprintf("in %dd", int(d.Hours()/24))
	}
	return fmt.Sprintf("in %dh", int(d.Hours()))
}
