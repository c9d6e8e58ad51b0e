// Command certfleet is both halves of certfleet in one binary: the Terraform
// provider when Terraform launches it, and the reconciler's command line
// otherwise.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/version"
	"github.com/certfleet/certfleet/provider"
	"github.com/certfleet/certfleet/reconciler/cli"
)

// providerAddress is the registry address Terraform configurations name in
// required_providers and in dev_overrides.
const providerAddress = "registry.terraform.io/certfleet/certfleet"

// magicCookieKey is set by Terraform (and OpenTofu) in the environment of every
// plugin it launches; it is how the binary tells a launch by Terraform from a
// person typing `certfleet` with no arguments.
const magicCookieKey = "TF_PLUGIN_MAGIC_COOKIE"

func main() {
	if len(os.Args) == 1 && os.Getenv(magicCookieKey) != "" {
		if err := serveProvider(context.Background(), false); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	root := cli.NewRoot()
	root.AddCommand(providerCommand())
	os.Exit(cli.Execute(root))
}

func serveProvider(ctx context.Context, debug bool) error {
	return providerserver.Serve(ctx, provider.New(version.String()), providerserver.ServeOpts{
		Address:         providerAddress,
		Debug:           debug,
		ProtocolVersion: 6,
	})
}

func providerCommand() *cobra.Command {
	var debug bool
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Serve the Terraform provider (Terraform starts this on its own; use --debug to attach by hand)",
		Long: `Serve the certfleet Terraform provider.

Terraform launches the binary itself; this command is for debugging: with
--debug the provider stays in the foreground and prints a TF_REATTACH_PROVIDERS
value to export in the shell that runs terraform.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveProvider(cmd.Context(), debug)
		},
	}
	cmd.Flags().BoolVar(&debug, "debug", false, "serve in debug mode and print TF_REATTACH_PROVIDERS (default false)")
	return cmd
}
