package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

func catalogCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Export the catalog to a snapshot file, or load catalog objects into a backend",
	}
	cmd.AddCommand(catalogExportCommand(), catalogApplyCommand())
	return cmd
}

func catalogExportCommand() *cobra.Command {
	var (
		cat  catalogFlags
		file string
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the backend's catalog as a snapshot file, so pull-request checks need no Vault",
		Example: `  certfleet catalog export --backend vault -f catalog.yaml
  certfleet catalog export --backend local --state-dir ./state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := cat.openBackend(cmd.Context())
			if err != nil {
				return err
			}
			c, err := backend.LoadCatalog(cmd.Context(), b)
			if err != nil {
				return err
			}
			data, err := c.Encode()
			if err != nil {
				return err
			}
			if file == "" || file == "-" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return os.WriteFile(file, data, 0o644)
		},
	}
	cat.register(cmd, "local")
	cmd.Flags().StringVarP(&file, "file", "f", "", "where to write the snapshot (default: standard output)")
	return cmd
}

func catalogApplyCommand() *cobra.Command {
	var (
		cat    catalogFlags
		file   string
		rotate bool
	)
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Load catalog objects (Authority, Issuer, Policy, Cluster) from a file into a backend",
		Long: `Load catalog objects into a backend — for the local backend, tests and the
quickstart; in production the Terraform provider writes the catalog. An
Authority that does not exist yet is created, with its key and certificate
(signed by its parent for an intermediate), through the same backend code the
provider uses; one that exists keeps its key until its rotateBefore is reached
(a third of its ttl by default), when it is rotated as the provider rotates it:
a new issuer with a new key becomes the default and the old one stays until it
expires. --rotate rotates every authority in the file now. Issuers' roles are
written.`,
		Example: `  certfleet catalog apply -f examples/quickstart/pki.yaml --backend local --state-dir ./state`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f is required: the file of catalog objects to load")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			c, errs := schemas.DecodeCatalog(file, data)
			if len(errs) > 0 {
				return fmt.Errorf("%s is invalid, nothing was applied:\n%w", file, errs)
			}
			b, err := cat.openBackend(cmd.Context())
			if err != nil {
				return err
			}
			var opts []backend.ApplyOption
			if rotate {
				opts = append(opts, backend.WithRotation())
			}
			done, err := backend.Apply(cmd.Context(), b, c, opts...)
			for _, line := range done {
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			return err
		},
	}
	cat.register(cmd, "local")
	cmd.Flags().StringVarP(&file, "file", "f", "", "the YAML file of catalog objects; required")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "rotate every authority in the file now, due or not (default: only those whose rotateBefore is reached)")
	return cmd
}
