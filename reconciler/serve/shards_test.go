package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/serve"
	"github.com/certfleet/certfleet/reconciler/shard"
	"github.com/certfleet/certfleet/schemas"
)

// shardProc is one `certfleet serve --shard` process.
type shardProc struct {
	name, shard, addr string
	cmd               *exec.Cmd
	stderr            *strings.Builder
	done              chan struct{}
}

// shardedWorld runs shards of one fleet as processes of the real binary.
type shardedWorld struct {
	*world
	bin    string
	procs  map[string]*shardProc
	shards []string
	// logs are the audit logs of every process ever started.
	logs []string
}

// dirCert is a certificate delivered into a directory, with a shard label when label is set.
func dirCert(name, label string) string {
	labels := ""
	if label != "" {
		labels = fmt.Sprintf(", labels: {%s: %s}", shard.Label, label)
	}
	return fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: %[1]s, namespace: apps%[2]s}
spec:
  issuer: mtls
  dnsNames: [%[1]s.apps.svc.cluster.local]
  duration: 24h
  targets:
    - directory: {path: %[1]s}
`, name, labels)
}

// start runs replica name of shard s with the world's current shard list.
func (sw *shardedWorld) start(name, s string) *shardProc {
	t := sw.t
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := *sw.cfg
	cfg.Listen, cfg.AuditLog = addr, filepath.Join(sw.dir, name+".log")
	cfg.Source.Interval, cfg.RetryBackoff, cfg.Concurrency = "2s", "1s", 4
	cfg.Sharding = &schemas.ServeSharding{Shards: sw.shards}
	cfg.LeaderElection = schemas.ServeLeaderElection{Enabled: true, Namespace: sw.ns, Name: "certfleet", KubeconfigContext: "alpha",
		LeaseDuration: "3s", RenewDeadline: "2s", RetryPeriod: "300ms"}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(sw.dir, name+".yaml")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &shardProc{name: name, shard: s, addr: addr, stderr: &strings.Builder{}, done: make(chan struct{})}
	p.cmd = exec.Command(sw.bin, "serve", "--config", conf, "--shard", s)
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(p.done); _ = p.cmd.Wait() }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		if t.Failed() {
			logs := p.stderr.String()
			t.Logf("%s (shard %s) logged, last 3000 bytes:\n%s", name, s, logs[max(0, len(logs)-3000):])
		}
	})
	sw.procs[name] = p
	sw.logs = append(sw.logs, name+".log")
	return p
}

// signal sends sig to the process and waits for it to exit.
func (p *shardProc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	<-p.done
}

// leader is the process holding shard s's Lease.
func (sw *shardedWorld) leader(s string) *shardProc {
	l, err := clientset(sw.t).CoordinationV1().Leases(sw.ns).Get(context.Background(), "certfleet-"+s, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return nil
	}
	id, _, _ := strings.Cut(*l.Spec.HolderIdentity, " ") // <host>_<pid> <address>
	pid, _ := strconv.Atoi(id[strings.LastIndexByte(id, '_')+1:])
	for _, p := range sw.procs {
		if p.cmd.Process.Pid == pid && p.shard == s {
			return p
		}
	}
	return nil
}

// issued counts delivered issuances per certificate across every process's audit log.
func (sw *shardedWorld) issued() map[string]int {
	total := map[string]int{}
	for _, log := range sw.logs {
		for c, n := range sw.world.issued(log) {
			total[c] += n
		}
	}
	return total
}

func (sw *shardedWorld) inventory() map[string]*inventory.Entry {
	sw.t.Helper()
	ctx := context.Background()
	b, err := backend.OpenVault(ctx, backend.VaultConfig{Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: sw.id + "-catalog"})
	if err != nil {
		sw.t.Fatal(err)
	}
	inv, err := inventory.Load(ctx, b)
	if err != nil {
		sw.t.Fatal(err)
	}
	return inv
}

// dirSerial is the serial delivered into a certificate's directory ("" when none).
func (sw *shardedWorld) dirSerial(name string) string {
	b, err := os.ReadFile(filepath.Join(sw.cfg.OutputDir, name, "tls.crt"))
	if err != nil {
		return ""
	}
	c, err := pki.ParseCertificate(b)
	if err != nil {
		return ""
	}
	return pki.Serial(c.SerialNumber)
}

func (p *shardProc) get(t *testing.T, path string) string {
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestShardsAsProcesses runs shards a, b, c (a and b with a standby) as
// `certfleet serve --shard` processes against one repository: every
// certificate is issued exactly once; one labelled for an undeclared shard
// is reported by /report; shard a's leader killed with SIGKILL, its standby
// finishes a's work with no double issuance; a certificate relabelled to
// another shard moves without reissue; a fourth shard added takes its
// share without reissue.
func TestShardsAsProcesses(t *testing.T) {
	sw := &shardedWorld{world: newWorld(t), bin: testbed.Certfleet(t), procs: map[string]*shardProc{}, shards: []string{"a", "b", "c"}}
	labels := map[string]string{"stray": "z"}
	for i := range 15 {
		labels[fmt.Sprintf("c%02d", i)] = ""
	}
	push := func() {
		files := map[string]string{}
		for name, l := range labels {
			files["apps/"+name+".yaml"] = dirCert(name, l)
		}
		sw.push(files)
	}
	push()
	for _, r := range []struct{ name, shard string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}, {"b2", "b"}, {"c1", "c"}} {
		sw.start(r.name, r.shard)
	}
	delivered := func() bool {
		for name := range labels {
			if name != "stray" && sw.dirSerial(name) == "" {
				return false
			}
		}
		return true
	}
	onceEach := func(when string) {
		t.Helper()
		for c, n := range sw.issued() {
			if n != 1 {
				t.Fatalf("%s: %s was issued %d times", when, c, n)
			}
		}
	}
	eventually(t, 90*time.Second, "every claimed certificate delivered", delivered)
	time.Sleep(3 * time.Second) // more passes of every shard: none may issue again
	onceEach("first issuance")
	if got := sw.issued(); len(got) != len(labels)-1 || got["apps/stray"] != 0 {
		t.Fatalf("issued %v; want each certificate but apps/stray once", got)
	}
	inv := sw.inventory()
	for name, l := range labels {
		if l == "" && inv["apps/"+name].Shard != shard.Rendezvous("apps/"+name, sw.shards) {
			t.Errorf("apps/%s is owned by %q; want the shard its ID hashes to", name, inv["apps/"+name].Shard)
		}
	}

	// /report says which shard answered and names the unclaimed certificate; the metrics carry the shard.
	var a *shardProc
	eventually(t, 10*time.Second, "shard a has a leader", func() bool { a = sw.leader("a"); return a != nil })
	var report struct {
		Status struct {
			Shard    string `json:"shard"`
			Sharding struct {
				Unclaimed []struct{ Certificate string } `json:"unclaimed"`
			} `json:"sharding"`
		} `json:"status"`
		Drift struct {
			Counts map[string]int `json:"counts"`
		} `json:"drift"`
	}
	if err := json.Unmarshal([]byte(a.get(t, "/report")), &report); err != nil {
		t.Fatal(err)
	}
	if report.Status.Shard != "a" || len(report.Status.Sharding.Unclaimed) != 1 || report.Status.Sharding.Unclaimed[0].Certificate != "apps/stray" ||
		report.Drift.Counts["Unclaimed"] != 1 {
		t.Errorf("shard a's /report: %+v", report)
	}
	if m := a.get(t, "/metrics"); !strings.Contains(m, `shard="a"`) {
		t.Error(`shard a's metrics carry no shard="a" label`)
	}
	// certfleet fleet finds the three leaders from their Leases and merges their reports.
	out, err := exec.Command(sw.bin, "fleet", "--kubeconfig", kubeconfig, "--context", "alpha", "--namespace", sw.ns, "-o", "json").Output()
	if err != nil {
		t.Fatalf("certfleet fleet: %v\n%s", err, out)
	}
	var fleet serve.FleetView
	if err := json.Unmarshal(out, &fleet); err != nil {
		t.Fatal(err)
	}
	if len(fleet.Shards) != 3 || fleet.Unreachable != 0 || fleet.InSync != len(labels)-1 || fleet.Counts["Unclaimed"] != 1 || len(fleet.Entries) != 1 {
		t.Errorf("certfleet fleet: %d shards (%d unreachable), %d in sync, counts %v; want 3, 0, %d, Unclaimed 1", len(fleet.Shards),
			fleet.Unreachable, fleet.InSync, fleet.Counts, len(labels)-1)
	}

	// SIGKILL a's leader just as new work for a arrives: its standby does it, once each.
	var forA []string
	for i := 0; len(forA) < 6; i++ {
		if name := fmt.Sprintf("k%02d", i); shard.Rendezvous("apps/"+name, sw.shards) == "a" {
			forA = append(forA, name)
			labels[name] = ""
		}
	}
	push()
	time.Sleep(2500 * time.Millisecond) // the leader's poll sees the push and starts on it
	killed := sw.leader("a")
	killed.signal(syscall.SIGKILL)
	eventually(t, 60*time.Second, "a's standby leads", func() bool { l := sw.leader("a"); return l != nil && l != killed })
	eventually(t, 90*time.Second, "a's new work delivered", delivered)
	time.Sleep(3 * time.Second)
	onceEach("after the SIGKILL")
	t.Logf("the killed leader had delivered %d certificates in all", len(sw.world.issued(killed.name+".log")))

	// Relabel a certificate of b's to c: it moves without a new certificate.
	moved := ""
	for name, l := range labels {
		if l == "" && shard.Rendezvous("apps/"+name, sw.shards) == "b" {
			moved = name
			break
		}
	}
	serial := sw.dirSerial(moved)
	before := sw.issued()
	labels[moved] = "c"
	push()
	eventually(t, 60*time.Second, moved+" moves to shard c", func() bool {
		e := sw.inventory()["apps/"+moved]
		return e != nil && e.Shard == "c" && !e.Released()
	})
	if sw.dirSerial(moved) != serial || !maps.Equal(before, sw.issued()) {
		t.Fatalf("relabelling %s reissued it (serial %s → %s; issued %v → %v)", moved, serial, sw.dirSerial(moved), before, sw.issued())
	}

	// A fourth shard: the others are restarted with the new list (a rollout), d starts; d's share moves, unreissued.
	sw.shards = []string{"a", "b", "c", "d"}
	var toD []string
	for name, l := range labels {
		if l == "" && shard.Rendezvous("apps/"+name, sw.shards) == "d" {
			toD = append(toD, "apps/"+name)
		}
	}
	if len(toD) == 0 {
		t.Fatal("no certificate of the test hashes to the fourth shard: add some")
	}
	before = sw.issued()
	for name, p := range maps.Clone(sw.procs) {
		if p == killed {
			continue
		}
		p.signal(syscall.SIGTERM)
		sw.start(name+"r", p.shard)
	}
	sw.start("d1", "d")
	eventually(t, 90*time.Second, fmt.Sprintf("%v move to shard d", toD), func() bool {
		inv := sw.inventory()
		for _, id := range toD {
			if e := inv[id]; e == nil || e.Shard != "d" || e.Released() {
				return false
			}
		}
		return true
	})
	for _, id := range toD {
		name := strings.TrimPrefix(id, "apps/")
		if sw.inventory()[id].Serial != sw.dirSerial(name) {
			t.Errorf("%s's inventory serial is not the delivered one after the move", id)
		}
	}
	if after := sw.issued(); !maps.Equal(before, after) {
		t.Fatalf("adding a shard issued certificates: %v → %v", before, after)
	}
}
