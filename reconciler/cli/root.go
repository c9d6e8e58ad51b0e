// Package cli holds certfleet's command line: one cobra command per verb of the
// reconciler (validate, plan, reconcile, drift, inventory, catalog, serve).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/memlimit"
	"github.com/certfleet/certfleet/internal/version"
)

// Exit codes every command shares; validate, plan and drift add 2 (changes
// or drift) and 3 (violations).
const (
	ExitOK    = 0 // nothing to report
	ExitError = 1 // the command could not run
)

// exitCode lets a command end with a specific code after it printed its own
// report, instead of cobra printing an error.
type exitCode struct{ code int }

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", e.code) }

// WithExitCode ends a command with code without printing anything more.
func WithExitCode(code int) error { return exitCode{code} }

// NewRoot returns the certfleet command with every reconciler verb attached.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "certfleet",
		Short: "Declare, issue, deliver, renew and watch every TLS certificate of a fleet",
		Long: `certfleet keeps every TLS certificate of a microservice fleet declared in Git,
issued through Vault, delivered to Kubernetes clusters, Vault KV and directories,
renewed before it expires, and watched for drift.

Launched by Terraform, the same binary is the certfleet Terraform provider.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(versionCommand(), validateCommand(), planCommand(), catalogCommand(), reconcileCommand(), driftCommand(), inventoryCommand(), statusCommand(), renewCommand(), revokeCommand(), serveCommand(), fleetCommand(), acmeCommand())
	return root
}

// Execute runs root and turns its outcome into a process exit code. It
// first sets the runtime's soft memory limit from the container's
// (memlimit.Env), which the example layouts pass through the downward API.
func Execute(root *cobra.Command) int {
	if _, err := memlimit.FromEnvironment(); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return ExitError
	}
	return executeTo(root, os.Stderr)
}

func executeTo(root *cobra.Command, stderr io.Writer) int {
	// SIGTERM and Ctrl-C end the command's context: passes stop cleanly.
	// After the first, the signals are the runtime's again, so a second
	// one ends a process that does not stop in time at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return ec.code
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	return ExitError
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print certfleet's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "certfleet %s\n", version.String())
		},
	}
}
