package reconcile

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/cluster"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// NewPass wires a pass to its targets: the catalog's clusters through conn,
// Vault KV through the backend when it is Vault, directories through dir
// (its output root and allowed roots). The command line and the daemon both
// build passes here.
func NewPass(b backend.Backend, cat *schemas.Catalog, conn *cluster.Connector, dir *target.Directory, audit *inventory.Audit) *Pass {
	vkv := &target.VaultKV{}
	if v, ok := b.(*backend.Vault); ok {
		vkv.Client = v.Client()
		if conn.Vault == nil {
			conn.Vault = v.Client()
		}
	}
	clients := func(ctx context.Context, name string) (kubernetes.Interface, error) {
		cl, ok := cat.Clusters[name]
		if !ok {
			return nil, fmt.Errorf("cluster %q is not in the catalog", name)
		}
		return conn.Client(ctx, cl)
	}
	return &Pass{Backend: b, Catalog: cat, Kube: &target.Kube{Clients: clients}, Vault: vkv,
		Dir: dir, Audit: audit}
}
