package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

func acmeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acme",
		Short: "Manage ACME issuers' accounts",
	}
	cmd.AddCommand(acmeRotateKeyCommand())
	return cmd
}

func acmeRotateKeyCommand() *cobra.Command {
	var cat catalogFlags
	cmd := &cobra.Command{
		Use:   "rotate-key ISSUER",
		Short: "Replace an ACME issuer's account key (an RFC 8555 key rollover: the account stays)",
		Long: `Makes a new account key, has the ACME CA roll the account over to it, and
stores it in the backend in place of the old one. Certificates already issued
stay valid; the next orders are signed with the new key. An issuer that has
no account yet gets one.`,
		Example: `  certfleet acme rotate-key public --backend vault`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := cat.openBackend(cmd.Context())
			if err != nil {
				return err
			}
			iss, err := backend.GetObject[schemas.Issuer](cmd.Context(), b, schemas.KindIssuer, args[0])
			if errors.Is(err, backend.ErrNotFound) {
				return fmt.Errorf("issuer %q is not in the catalog of %s", args[0], b.Describe())
			}
			if err != nil {
				return err
			}
			if err := backend.RotateACMEKey(cmd.Context(), b, iss); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issuer %s: the ACME account key was rotated\n", args[0])
			return nil
		},
	}
	cat.register(cmd, "local")
	return cmd
}
