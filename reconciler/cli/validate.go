package cli

import (
	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/plan"
	"github.com/certfleet/certfleet/reconciler/render"
)

func validateCommand() *cobra.Command {
	var (
		src sourceFlags
		cat catalogFlags
		out outputFlag
		ref string
	)
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check every manifest of a repository: schema, semantics and (with a catalog) policies",
		Long: `Render every YAML manifest under --path of --source and check it: strict schema,
semantic rules (SANs, durations, keys, targets), duplicate targets, and — with a
catalog (--catalog FILE, or --backend) — the policies and catalog cross-checks.

Exit codes: 0 clean, 3 any invalid manifest or policy violation, 1 could not run.`,
		Example: `  certfleet validate --source . --catalog catalog.yaml
  certfleet validate --source https://git.example.com/fleet.git --ref main --backend vault -o github`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			catalog, err := cat.load(cmd.Context())
			if err != nil {
				return err
			}
			snap, err := src.fetch(cmd.Context(), ref)
			if err != nil {
				return err
			}
			head := render.Render(snap, catalog)
			ev := evaluate.New(catalog, now(), evaluate.WithCatalogMount(cat.vault.CatalogMount))
			notes(cmd, head, ev)
			return out.print(cmd, plan.Validate(head, ev))
		},
	}
	src.register(cmd)
	cat.register(cmd, "")
	out.register(cmd)
	cmd.Flags().StringVar(&ref, "ref", "", "the branch, tag or commit to check (default: the working tree of a local --source, the main (else master) branch of a URL)")
	return cmd
}

// notes tell on stderr what was not checked and why.
func notes(cmd *cobra.Command, r *render.Result, ev *evaluate.Evaluator) {
	if !ev.HasCatalog() {
		note(cmd, "no catalog given (--catalog or --backend): policies and catalog cross-checks were not run")
	}
	if r.Unresolved > 0 {
		note(cmd, "%d clusterSelector targets were not resolved (no catalog)", r.Unresolved)
	}
	for name, errs := range ev.PolicyErrors {
		note(cmd, "policy %s is invalid and was not enforced:\n%v", name, errs)
	}
	if len(r.Ignored) > 0 {
		note(cmd, "%d documents of other API groups were ignored", len(r.Ignored))
	}
}
