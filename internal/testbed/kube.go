package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Cluster is a running Kubernetes API server on its own etcd: a "cluster"
// without nodes, which is all certfleet talks to.
type Cluster struct {
	// Name identifies the cluster in kubeconfig contexts and test output.
	Name string
	// Server is the API server's URL, https://127.0.0.1:<port>.
	Server string
	// CAData is the PEM certificate that verifies the server.
	CAData []byte
	// Token is a bearer token of a system:masters user.
	Token string

	dir       string
	etcd, api *process
	// How to start each again (Restart*), on the same ports and data.
	startEtcd, startAPI func(context.Context) (*process, error)
}

// StartCluster starts etcd and kube-apiserver on free loopback ports and waits
// until the API server's /readyz passes. Stop it with Stop.
func StartCluster(ctx context.Context, name string) (c *Cluster, err error) {
	etcdBin, err := Binary("etcd")
	if err != nil {
		return nil, err
	}
	apiBin, err := Binary("kube-apiserver")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testbed-cluster-"+name+"-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Name: name, dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()

	etcdPort, err := freePort()
	if err != nil {
		return nil, err
	}
	etcdURL := "http://" + loopback(etcdPort)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	c.startEtcd = func(ctx context.Context) (*process, error) {
		p, err := startProcess("etcd", env, etcdBin,
			"--name", name,
			"--data-dir", filepath.Join(dir, "etcd"),
			"--listen-client-urls", etcdURL,
			"--advertise-client-urls", etcdURL,
			"--listen-peer-urls", "http://127.0.0.1:0",
			"--initial-advertise-peer-urls", "http://127.0.0.1:0",
			"--unsafe-no-fsync",
			"--log-level", "warn",
		)
		if err != nil {
			return nil, err
		}
		return p, p.waitReady(ctx, 30*time.Second, httpOK(http.DefaultClient, etcdURL+"/health"))
	}
	if c.etcd, err = c.startEtcd(ctx); err != nil {
		return nil, err
	}

	saKey := filepath.Join(dir, "sa.key")
	if err := writeECKey(saKey); err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	c.Token = token
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "pki")
	c.Server = "https://" + loopback(apiPort)
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	ready := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := insecure.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	c.startAPI = func(ctx context.Context) (*process, error) {
		p, err := startProcess("kube-apiserver", env, apiBin,
			"--etcd-servers", etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			fmt.Sprintf("--secure-port=%d", apiPort),
			"--cert-dir", certDir,
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file", saKey,
			"--service-account-signing-key-file", saKey,
			"--service-cluster-ip-range=10.0.0.0/24",
			"--token-auth-file", tokens,
			"--authorization-mode=RBAC",
			"--disable-admission-plugins=ServiceAccount",
			"--allow-privileged=true",
			"--v=0",
		)
		if err != nil {
			return nil, err
		}
		return p, p.waitReady(ctx, 90*time.Second, ready)
	}
	if c.api, err = c.startAPI(ctx); err != nil {
		return nil, err
	}
	c.CAData, err = os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading the API server's certificate: %w", err)
	}
	return c, nil
}

// NewCluster starts a cluster for one test and stops it when the test ends.
func NewCluster(t testing.TB, name string) *Cluster {
	t.Helper()
	c, err := StartCluster(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Stop stops the API server, then etcd, and removes their data.
func (c *Cluster) Stop() {
	if c.api != nil {
		c.api.Stop()
	}
	if c.etcd != nil {
		c.etcd.Stop()
	}
	os.RemoveAll(c.dir)
}

// StopAPIServer stops the API server and leaves etcd and its data: the
// cluster is unreachable until StartAPIServer.
func (c *Cluster) StopAPIServer() { c.api.Stop() }

// StartAPIServer starts the API server again on the same port, etcd and
// certificates, and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) (err error) {
	c.api, err = c.startAPI(ctx)
	return err
}

// RestartEtcd stops etcd and starts it again on the same data directory
// and port, and waits until it is healthy; the API server reconnects.
func (c *Cluster) RestartEtcd(ctx context.Context) (err error) {
	c.etcd.Stop()
	c.etcd, err = c.startEtcd(ctx)
	return err
}

// RESTConfig returns a client configuration with the cluster's admin token.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            c.Server,
		BearerToken:     c.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		QPS:             -1, // no client-side throttling: tests and benchmarks measure the server
	}
}

// Clientset returns a typed client-go client for the cluster.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(c.RESTConfig())
}

// KubeconfigAPI returns a kubeconfig with one context named after the cluster.
func (c *Cluster) KubeconfigAPI() *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{Token: c.Token}
	cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
	cfg.CurrentContext = c.Name
	return cfg
}

// WriteKubeconfig writes a kubeconfig naming every given cluster, one context
// each, to path (mode 0600: it holds tokens).
func WriteKubeconfig(path string, clusters ...*Cluster) error {
	cfg := clientcmdapi.NewConfig()
	for _, c := range clusters {
		one := c.KubeconfigAPI()
		cfg.Clusters[c.Name] = one.Clusters[c.Name]
		cfg.AuthInfos[c.Name] = one.AuthInfos[c.Name]
		cfg.Contexts[c.Name] = one.Contexts[c.Name]
		if cfg.CurrentContext == "" {
			cfg.CurrentContext = c.Name
		}
	}
	return clientcmd.WriteToFile(*cfg, path)
}

func writeECKey(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}
