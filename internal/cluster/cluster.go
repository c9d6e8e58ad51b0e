// Package cluster connects to the Kubernetes clusters of the catalog: by a
// context of the reconciler's kubeconfig, or with a bearer token read from
// Vault KV (the catalog's Cluster records where the token is, never the
// token itself).
package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/certfleet/certfleet/schemas"
)

// Connector makes (and keeps) one client per cluster.
type Connector struct {
	// Kubeconfig is the kubeconfig file for kubeconfigContext credentials;
	// empty means client-go's default ($KUBECONFIG, then ~/.kube/config).
	Kubeconfig string
	// Vault reads vaultKVPath credentials; nil when no Vault is configured.
	Vault *vaultapi.Client
	// QPS and Burst of each client (default 500 and 1000): a pass writes
	// many Secrets at once when a fleet is first issued or renewed together,
	// and the API server's priority and fairness, not the client, is what
	// protects it.
	QPS   float32
	Burst int
	// Timeout bounds each request to an API server (default 30s): a hung
	// server fails the pass's calls to that cluster, never the pass.
	Timeout time.Duration

	mu      sync.Mutex
	clients map[string]kubernetes.Interface
}

// Client returns a client for a catalog cluster.
func (c *Connector) Client(ctx context.Context, cl *schemas.Cluster) (kubernetes.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.clients[cl.Metadata.Name]; ok {
		return k, nil
	}
	cfg, err := c.restConfig(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cl.Metadata.Name, err)
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = c.QPS, c.Burst, c.Timeout
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 500, 1000
	}
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cl.Metadata.Name, err)
	}
	if c.clients == nil {
		c.clients = map[string]kubernetes.Interface{}
	}
	c.clients[cl.Metadata.Name] = k
	return k, nil
}

func (c *Connector) restConfig(ctx context.Context, cl *schemas.Cluster) (*rest.Config, error) {
	cred := cl.Spec.Credentials
	switch {
	case cred.KubeconfigContext != "":
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if c.Kubeconfig != "" {
			rules.ExplicitPath = c.Kubeconfig
		}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: cred.KubeconfigContext}
		if cl.Spec.Server != "" {
			overrides.ClusterInfo.Server = cl.Spec.Server
		}
		if cl.Spec.CACertificate != "" {
			overrides.ClusterInfo.CertificateAuthorityData = []byte(cl.Spec.CACertificate)
		}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig context %q: %w", cred.KubeconfigContext, err)
		}
		return cfg, nil
	case cred.VaultKVPath != "":
		if c.Vault == nil {
			return nil, fmt.Errorf("credentials are in Vault KV (%s) but no Vault is configured: use --backend vault", cred.VaultKVPath)
		}
		mount, path, ok := strings.Cut(strings.Trim(cred.VaultKVPath, "/"), "/")
		if !ok {
			return nil, fmt.Errorf("vaultKVPath %q is not <mount>/<path>", cred.VaultKVPath)
		}
		s, err := c.Vault.KVv2(mount).Get(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("reading credentials from Vault KV %s: %w", cred.VaultKVPath, err)
		}
		token, _ := s.Data["token"].(string)
		if token == "" {
			return nil, fmt.Errorf("the Vault KV secret %s has no token field", cred.VaultKVPath)
		}
		return &rest.Config{Host: cl.Spec.Server, BearerToken: token,
			TLSClientConfig: rest.TLSClientConfig{CAData: []byte(cl.Spec.CACertificate)}}, nil
	}
	return nil, fmt.Errorf("no credentials: set kubeconfigContext or vaultKVPath")
}
