package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
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
	// owner matches the commit author, case-insensitively, as a substring
	// (a name or an e-mail address).
	owner string
	now   time.Time
}

func (f filter) keep(e *inventory.Entry) bool {
	if f.expiring > 0 && e.NotAfter.After(f.now.Add(f.expiring)) {
		return false
	}
	if f.issuer != "" && e.Issuer != f.issuer {
		return false
	}
	if f.owner != "" && !strings.Contains(strings.ToLower(e.Author), strings.ToLower(f.owner)) {
		return false
	}
	if f.san != nil {
		names := append([]string{e.CommonName}, e.DNSNames...)
		names = append(append(append(names, e.URIs()...), e.IPAddresses()...), e.EmailAddresses()...)
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

// filterFlags are the inventory's search flags.
type filterFlags struct {
	expiring, issuer, san, cluster, path, owner string
}

// compile turns the flags into a filter, naming the flag that is wrong.
func (fl filterFlags) compile(now time.Time) (filter, error) {
	f := filter{issuer: fl.issuer, cluster: fl.cluster, owner: fl.owner, now: now}
	var err error
	if fl.expiring != "" {
		if f.expiring, err = schemas.Duration(fl.expiring).Parse(); err != nil {
			return f, fmt.Errorf("--expiring: %w", err)
		}
	}
	if fl.san != "" {
		if f.san, err = glob.Compile(fl.san); err != nil {
			return f, fmt.Errorf("--san %q: %w", fl.san, err)
		}
	}
	if fl.path != "" {
		if f.path, err = glob.Compile(fl.path, '/'); err != nil {
			return f, fmt.Errorf("--path %q: %w", fl.path, err)
		}
	}
	return f, nil
}

// selected is the entries f keeps, soonest expiry first (then by ID).
func (f filter) selected(all map[string]*inventory.Entry) []*inventory.Entry {
	entries := []*inventory.Entry{}
	for _, e := range all {
		if f.keep(e) {
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b *inventory.Entry) int {
		return cmp.Or(a.NotAfter.Compare(b.NotAfter), strings.Compare(a.ID, b.ID))
	})
	return entries
}

func inventoryCommand() *cobra.Command {
	var (
		cat    catalogFlags
		search filterFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "List every certificate the fleet holds, with owner and expiry; search by name, owner, issuer, cluster or path",
		Example: `  certfleet inventory --expiring 7d
  certfleet inventory --san '*.payments.svc.cluster.local' --cluster prod-eu -o json
  certfleet inventory --owner alice@example.com
  certfleet inventory --san 'spiffe://fleet.example.com/ns/payments/**'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := search.compile(time.Now())
			if err != nil {
				return err
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
			entries := f.selected(all)
			if output == "json" {
				reported := make([]*inventory.Entry, len(entries))
				for i, e := range entries {
					reported[i] = e.Reported()
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(reported)
			}
			if err := inventoryTable(cmd.OutOrStdout(), entries, f.now); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d certificates\n", len(entries), len(all))
			return nil
		},
	}
	cat.register(cmd, "local")
	fl := cmd.Flags()
	fl.StringVar(&search.expiring, "expiring", "", "only certificates expiring within this long (e.g. 7d)")
	fl.StringVar(&search.issuer, "issuer", "", "only certificates of this issuer")
	fl.StringVar(&search.san, "san", "", "only certificates with a common name or SAN (DNS, URI/SPIFFE ID, IP, e-mail) matching this glob")
	fl.StringVar(&search.owner, "owner", "", "only certificates whose owner (the author of the commit they were issued from) contains this, case-insensitively")
	fl.StringVar(&search.cluster, "cluster", "", "only certificates delivered to this cluster")
	fl.StringVar(&search.path, "path", "", "only certificates declared in files matching this glob (teams/payments/**)")
	fl.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// inventoryTable writes entries as a table for people.
func inventoryTable(out io.Writer, entries []*inventory.Entry, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CERTIFICATE\tISSUER\tEXPIRES\tRENEWS\tOWNER\tTARGETS\tFILE")
	for _, e := range entries {
		targets := make([]string, len(e.Targets))
		for i, t := range e.Targets {
			targets[i] = t.Key
		}
		status := ""
		if e.FailingSince() != nil {
			status = " (failing since " + e.FailingSince().UTC().Format(time.RFC3339) + ")"
		}
		fmt.Fprintf(w, "%s%s\t%s\t%s (%s)\t%s\t%s\t%s\t%s\n", e.ID, status, e.Issuer, e.NotAfter.UTC().Format("2006-01-02 15:04"),
			until(e.NotAfter, now), e.RenewAt.UTC().Format("2006-01-02 15:04"), cmp.Or(e.Author, "-"),
			strings.Join(targets, ","), e.File)
	}
	return w.Flush()
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
