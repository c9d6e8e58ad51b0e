package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/serve"
	"github.com/certfleet/certfleet/schemas"
)

func fleetCommand() *cobra.Command {
	var (
		kubeconfig, kubeContext, namespace, leaseName, tokenFile, output string
	)
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Merge every shard's report into one view of the fleet",
		Long: `Read the report of every shard of a sharded certfleet and merge them. The
shards are found from their Leases (<lease-name> and <lease-name>-<shard> in
--namespace); each Lease's holder identity carries the address of the leader's
HTTP listener (CERTFLEET_ADVERTISE_ADDRESS, else POD_IP and the listen port),
whose /report is read. A shard that cannot be read is listed as such, and the
command then exits 1: the view lacks its share.`,
		Example: `  certfleet fleet --namespace certfleet-system --token-file /var/run/certfleet/token
  certfleet fleet --context prod -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := serve.LeaseClient(&schemas.ServeConfig{Kubeconfig: kubeconfig,
				LeaderElection: schemas.ServeLeaderElection{KubeconfigContext: kubeContext}})
			if err != nil {
				return err
			}
			token, err := backend.ReadSecretFile(tokenFile)
			if err != nil {
				return err
			}
			views, err := serve.ReadFleet(cmd.Context(), c, namespace, leaseName, token, &http.Client{Timeout: time.Minute})
			if err != nil {
				return err
			}
			if len(views) == 0 {
				return fmt.Errorf("no Lease named %s or %s-<shard> in namespace %s: is certfleet serve running there with leader election?", leaseName, leaseName, namespace)
			}
			f := serve.MergeFleet(views, time.Now())
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				err = enc.Encode(f)
			case "text":
				err = f.Text(cmd.OutOrStdout())
			default:
				return fmt.Errorf("--output is %q; use text or json", output)
			}
			if err != nil {
				return err
			}
			if f.Unreachable > 0 {
				return fmt.Errorf("%d of %d shards could not be read: the view lacks their certificates", f.Unreachable, len(views))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster holding the Leases (default: in-cluster, else $KUBECONFIG, ~/.kube/config)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current one)")
	cmd.Flags().StringVar(&namespace, "namespace", serve.DefaultLeaseNamespace, "namespace of the Leases")
	cmd.Flags().StringVar(&leaseName, "lease-name", serve.DefaultLeaseName, "leaderElection.name of the shards")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the bearer token of /report (http.tokenFile of the shards)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
