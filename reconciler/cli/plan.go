package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/plan"
	"github.com/certfleet/certfleet/reconciler/render"
)

func planCommand() *cobra.Command {
	var (
		src        sourceFlags
		cat        catalogFlags
		out        outputFlag
		base, head string
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what merging a revision would change: certificates added, removed, reissued or updated",
		Long: `Render the --base and --head revisions of --source and print a semantic plan:
each certificate added, removed or changed, with every changed field (old → new),
classified as reissue (a new certificate is needed), update (only the delivered
objects change) or no-op; then the policy verdict on every certificate of the
head and the catalog cross-checks (issuer exists, duration ≤ issuer max TTL ≤
authority's remaining lifetime, clusters exist).

Exit codes: 0 nothing changes, 2 changes, 3 violations (wins over 2), 1 could not run.`,
		Example: `  certfleet plan --source . --base origin/main --head HEAD --catalog catalog.yaml -o markdown
  certfleet plan --source https://git.example.com/fleet.git --base main --head feature/new-cert --backend vault -o github`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if base == "" {
				return fmt.Errorf("--base is required: the branch, tag or commit the change would merge into")
			}
			catalog, err := cat.load(cmd.Context())
			if err != nil {
				return err
			}
			baseSnap, err := src.fetch(cmd.Context(), base)
			if err != nil {
				return fmt.Errorf("base: %w", err)
			}
			headSnap, err := src.fetch(cmd.Context(), head)
			if err != nil {
				return fmt.Errorf("head: %w", err)
			}
			rr := render.NewRenderer() // the head re-reads only the files the change touched
			b, h := rr.Render(baseSnap, catalog), rr.Render(headSnap, catalog)
			ev := evaluate.New(catalog, now(), evaluate.WithCatalogMount(cat.vault.CatalogMount))
			notes(cmd, h, ev)
			return out.print(cmd, plan.Plan(b, h, ev))
		},
	}
	src.register(cmd)
	cat.register(cmd, "")
	out.register(cmd)
	cmd.Flags().StringVar(&base, "base", "", "the revision the change merges into (branch, tag or commit); required")
	cmd.Flags().StringVar(&head, "head", "", "the revision with the change (default: the working tree of a local --source, the main (else master) branch of a URL)")
	return cmd
}
