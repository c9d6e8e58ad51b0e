package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/shard"
)

// Four one-shot shards (`reconcile --once --shard s --shards a,b,c,d`)
// over one repository on the test bed's Git server and one local backend:
// the first round claims, the second issues each certificate exactly once
// in total, each by its shard; the reporter (a) reports the certificate
// labelled for an undeclared shard; a third round and every shard's drift
// find nothing to do.
func TestOneShotShardsIssueEachCertificateOnce(t *testing.T) {
	labels := map[string]string{"lb": "b", "stray": "z"}
	for i := range 12 {
		labels[fmt.Sprintf("h%d", i)] = ""
	}
	srv := testbed.NewGitServer(t, testbed.WithBasicAuth("ci", "s3cret-pw"))
	url, err := srv.CreateRepo("fleet")
	if err != nil {
		t.Fatal(err)
	}
	w := testbed.NewWorktree(t)
	w.Write(t, testbed.ShardFleet(labels))
	w.Commit(t, "alice", "fleet")
	w.Push(t, srv.PushURL("fleet"), "main")
	dir := t.TempDir()
	pki, state, audit := filepath.Join(dir, "pki.yaml"), filepath.Join(dir, "state"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(pki, []byte(testbed.LocalPKI), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "catalog", "apply", "-f", pki, "--backend", "local", "--state-dir", state); code != 0 {
		t.Fatalf("catalog apply: exit %d\n%s%s", code, out, errOut)
	}
	four := []string{"a", "b", "c", "d"}
	base := []string{"--source", url, "--ref", "main", "--git-username", "ci", "--git-password-file", passwordFile(t),
		"--backend", "local", "--state-dir", state, "--output-dir", filepath.Join(dir, "tls"), "--audit-log", audit,
		"--shards", strings.Join(four, ",")}
	pass := func(s string) *reconcile.Result {
		t.Helper()
		code, out, errOut := run(t, append([]string{"reconcile", "--once", "-o", "json", "--shard", s}, base...)...)
		var rep reconcile.Result
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Shard == nil || rep.Shard.Shard != s {
			t.Fatalf("shard %s: exit %d\n%s%s", s, code, out, errOut)
		}
		return &rep
	}
	shardOf := func(name string) string {
		if l := labels[name]; l != "" {
			return l
		}
		return shard.Rendezvous("payments/"+name, four)
	}

	claimed := 0
	for _, s := range four {
		rep := pass(s)
		if len(rep.Actions) != 0 {
			t.Fatalf("shard %s's first pass acted before its claims were read back: %v", s, rep.Actions)
		}
		claimed += len(rep.Shard.Claimed)
	}
	if claimed != len(labels)-1 {
		t.Fatalf("the shards claimed %d certificates; want %d (all but payments/stray)", claimed, len(labels)-1)
	}
	for _, s := range four {
		rep := pass(s)
		owned := 0
		for name := range labels {
			if shardOf(name) == s {
				owned++
			}
		}
		if rep.Actions["issue"] != owned || rep.Shard.Owned != owned {
			t.Errorf("shard %s issued %d, owns %d; want %d: %v", s, rep.Actions["issue"], rep.Shard.Owned, owned, rep.Failures)
		}
		if unclaimed := rep.Reasons[decide.Unclaimed]; (s == "a") != (unclaimed == 1) || unclaimed > 1 {
			t.Errorf("shard %s reports %d unclaimed targets; want payments/stray's, by a only", s, unclaimed)
		}
	}
	issued := issuances(t, audit)
	for name := range labels {
		if want := map[bool]int{true: 0, false: 1}[name == "stray"]; issued["payments/"+name] != want {
			t.Errorf("payments/%s was issued %d times; want %d", name, issued["payments/"+name], want)
		}
	}
	code, out, _ := run(t, "inventory", "--state-dir", state, "-o", "json")
	var entries []inventory.Entry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != len(labels)-1 {
		t.Fatalf("inventory: exit %d, %d entries; want %d\n%s", code, len(entries), len(labels)-1, out)
	}
	for _, e := range entries {
		if want := shardOf(strings.TrimPrefix(e.ID, "payments/")); e.Shard != want || e.Serial == "" {
			t.Errorf("%s is recorded as shard %q's (serial %q); want %q's, issued", e.ID, e.Shard, e.Serial, want)
		}
	}
	for _, s := range four {
		if rep := pass(s); len(rep.Actions) != 0 || len(rep.Failures) != 0 {
			t.Errorf("shard %s acted on a converged fleet: %v %v", s, rep.Actions, rep.Failures)
		}
		// Drift exits 2 on drift: the reporter's unclaimed certificate is
		// drift, the others' shares are in sync.
		code, out, _ := run(t, append([]string{"drift", "--shard", s}, base...)...)
		if want := map[bool]int{true: 2, false: 0}[s == "a"]; code != want || (s == "a") != strings.Contains(out, "Unclaimed") {
			t.Errorf("drift of shard %s: exit %d, want %d:\n%s", s, code, want, out)
		}
	}
	if got := issuances(t, audit); len(got) != len(issued) {
		t.Errorf("the third round issued: %v, before %v", got, issued)
	}
}

// issuances counts the audit log's issuances per certificate.
func issuances(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev inventory.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && (ev.Action == "issue" || ev.Action == "renew" || ev.Action == "reissue") {
			out[ev.Certificate]++
		}
	}
	return out
}

// A shard flag the command cannot act on is refused before anything is
// read, saying what would be right.
func TestShardFlagsRefuseBadInput(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--shard", "a"}, "--shard a needs the fleet's shards: add --shards, such as --shards a,b,c"},
		{[]string{"--shards", "a,b"}, "--shards is given without --shard: name the shard this pass acts as, one of a, b"},
		{[]string{"--shard", "e", "--shards", "a,b"}, `shard is "e", which --shards (a, b) does not declare; add it there`},
		{[]string{"--shard", "A", "--shards", "A,b"}, `--shards[0] is "A"; use a DNS label`},
		{[]string{"--shard", "a", "--shards", "a,b", "--shard-by", "label", "--shard-default", "x"}, `--shard-default is "x", which --shards does not declare`},
		{[]string{"--shard", "a", "--shards", "a,b", "--shard-by", "name"}, `--shard-by is "name"; use hash or label`},
	}
	for _, cmd := range []string{"reconcile", "drift"} {
		for _, c := range cases {
			args := append([]string{cmd, "--source", t.TempDir(), "--backend", "local", "--state-dir", filepath.Join(t.TempDir(), "never")}, c.args...)
			if cmd == "reconcile" {
				args = append(args, "--once")
			}
			code, _, stderr := run(t, args...)
			if code != ExitError || !strings.Contains(stderr, c.want) {
				t.Errorf("%s %s: exit %d, stderr %q; want %q", cmd, strings.Join(c.args, " "), code, stderr, c.want)
			}
		}
	}
}
