package faults_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testbed"
)

// vaultPKI is a Vault catalog: one root, one issuer, a policy, and the
// clusters of the scenario (kubeconfig contexts named after them).
const vaultPKI = `apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: root}
spec: {type: root, mount: faults-pki, commonName: Faults Root, ttl: 720h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: mtls}
spec: {authority: root, allowedDomains: [svc.cluster.local], allowSubdomains: true, maxTTL: 240h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: all}
spec: {dnsNames: ["**.svc.cluster.local"]}
`

const clusterDoc = `---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata: {name: %[1]s}
spec: {credentials: {kubeconfigContext: %[1]s}}
`

// vaultFleet is a Vault (reached through a fault-injecting proxy), a
// repository directory, targets, and the daemon's configuration.
type vaultFleet struct {
	s                *scenario
	v                *testbed.Vault
	px               *proxy
	work, out, repo  string
	audit, tokenFile string
	kubeconfig       string
	// source is the daemon's source block (default: the repository directory).
	source string
}

func newVaultFleet(s *scenario, clusters ...*testbed.Cluster) *vaultFleet {
	work := s.t.TempDir()
	v := testbed.NewVault(s.t)
	secrets.add("the Vault root token", v.Token)
	f := &vaultFleet{s: s, v: v, px: newProxy(s.t, strings.TrimPrefix(v.Addr, "http://")), work: work,
		out: filepath.Join(work, "tls"), repo: filepath.Join(work, "repo"), audit: s.path("audit.log"),
		tokenFile: writeFile(s.t, filepath.Join(work, "vault-token"), v.Token)}
	cat := vaultPKI
	for _, c := range clusters {
		cat += fmt.Sprintf(clusterDoc, c.Name)
		secrets.add("a cluster token", c.Token)
	}
	if len(clusters) > 0 {
		f.kubeconfig = filepath.Join(work, "kubeconfig")
		if err := testbed.WriteKubeconfig(f.kubeconfig, clusters...); err != nil {
			s.t.Fatal(err)
		}
	}
	s.mustRun(v.Env(), "catalog", "apply", "-f", writeFile(s.t, filepath.Join(work, "pki.yaml"), cat), "--backend", "vault")
	return f
}

// addr is Vault's address as certfleet sees it: through the proxy.
func (f *vaultFleet) addr() string { return "http://" + f.px.addr }

// env is what a certfleet process needs to reach Vault through the proxy.
func (f *vaultFleet) env() []string {
	return []string{"VAULT_ADDR=" + f.addr(), "VAULT_TOKEN=" + f.v.Token}
}

func (f *vaultFleet) passArgs() []string {
	a := []string{"--source", f.repo, "--backend", "vault", "--output-dir", f.out, "--audit-log", f.audit}
	if f.kubeconfig != "" {
		a = append(a, "--kubeconfig", f.kubeconfig)
	}
	return a
}

// serve starts the daemon on a free port; extra is more of certfleet.yaml.
func (f *vaultFleet) serve(extra string) *daemon {
	listen := freeAddr(f.s.t)
	kube := ""
	if f.kubeconfig != "" {
		kube = "kubeconfig: " + f.kubeconfig
	}
	cfg := writeFile(f.s.t, filepath.Join(f.work, fmt.Sprintf("certfleet-%d.yaml", seq.Add(1))), fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: ServeConfig
source: %s
backend: {type: vault, vault: {address: %s, tokenFile: %s}}
%s
outputDir: %s
auditLog: %s
renewalJitter: 1s
listen: %s
%s`, cmpOr(f.source, "{url: "+f.repo+", interval: 1h}"), f.addr(), f.tokenFile, kube, f.out, f.audit, listen, extra))
	d := &daemon{s: f.s, url: "http://" + listen}
	d.p = f.s.start(nil, "serve", "--config", cfg)
	if !eventually(30*time.Second, func() bool { code, _ := d.getQuiet("/healthz"); return code == 200 || d.p.exited() }) || d.p.exited() {
		out, _ := d.p.wait()
		f.s.t.Fatalf("the daemon did not start:\n%s", tail(out))
	}
	return d
}

// daemon is a running certfleet serve.
type daemon struct {
	s   *scenario
	p   *proc
	url string
}

func (d *daemon) get(path string) (int, []byte) { return d.s.get(d.url + path) }

// getQuiet fetches a page without keeping it (polling).
func (d *daemon) getQuiet(path string) (int, []byte) {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(d.url, "http://"), time.Second)
	if err != nil {
		return 0, nil
	}
	c.Close()
	return d.s.get(d.url + path)
}

// stop sends SIGTERM and waits.
func (d *daemon) stop() {
	if !d.p.exited() {
		_ = d.p.cmd.Process.Signal(syscall.SIGTERM)
	}
	d.p.wait()
}

// logTimes are the times of the daemon's log lines with message msg.
func (d *daemon) logTimes(msg string) []time.Time {
	f, err := os.Open(d.p.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, `msg="`+msg+`"`) && !strings.Contains(l, "msg="+msg+" ") {
			continue
		}
		v, ok := strings.CutPrefix(strings.Fields(l)[0], "time=")
		if !ok {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// passesDone counts the daemon's finished passes.
func (d *daemon) passesDone() int { return len(d.logTimes("pass done")) }

// waitPass waits until the daemon finished more than n passes.
func (d *daemon) waitPass(n int, within time.Duration) bool {
	return eventually(within, func() bool { return d.passesDone() > n })
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
