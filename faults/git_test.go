package faults_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testbed"
)

// report is what the daemon's /report says of itself.
type report struct {
	Status struct {
		Revision     string   `json:"revision"`
		Latest       string   `json:"latest"`
		SourceError  string   `json:"sourceError"`
		RenderErrors []string `json:"renderErrors"`
		Failing      []string `json:"failing"`
	} `json:"status"`
}

func (d *daemon) report() (report, string) {
	var r report
	_, b := d.getQuiet("/report")
	_ = json.Unmarshal(b, &r)
	return r, string(b)
}

// TestGit breaks the repository the daemon watches four ways: the server
// down, a force-push of an unrelated history, a revision deleting 90% of
// the manifests, a revision of invalid YAML everywhere. The daemon prunes
// (prune: true), so a wrong reading would delete targets.
func TestGit(t *testing.T) {
	t.Parallel()
	n := size(20, 200)
	s := newScenario(t, "Git", fmt.Sprintf("the daemon (prune on) watching %d certificates in 10 files: Git server down; force-push of an unrelated history; a revision deleting 90%%; invalid YAML in every file", n))
	s.reps = "4 faults"
	pw := make([]byte, 16)
	rand.Read(pw)
	password := hex.EncodeToString(pw)
	secrets.add("the Git password", password)
	srv := testbed.NewGitServer(t, testbed.WithBasicAuth("ci", password))
	if _, err := srv.CreateRepo("fleet"); err != nil {
		t.Fatal(err)
	}
	f := newVaultFleet(s)
	px := newProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	f.source = fmt.Sprintf("{url: http://%s/fleet.git, ref: main, interval: 2s, auth: {username: ci, passwordFile: %s}}",
		px.addr, writeFile(t, filepath.Join(f.work, "git-password"), password))
	push := srv.PushURL("fleet")

	good := testbed.NewWorktree(t)
	files := map[string]string{}
	for i := range 10 {
		for name, content := range certificates(fmt.Sprintf("t%d", i), n/10, "  duration: 24h", dirTarget) {
			files[name] = content
		}
	}
	good.Write(t, files)
	goodRev := good.Commit(t, "alice", "the fleet")
	good.Push(t, push, "main")
	d := f.serve("prune: true\nretryBackoff: 1s\nmaxRetryBackoff: 4s\n")
	defer d.stop()
	if !eventually(2*time.Minute, func() bool { return len(pairs(f.out)) == n }) {
		t.Fatalf("the daemon did not deliver %d certificates in 2 minutes", n)
	}
	w := watch(f.out)

	// settle waits until the daemon's report satisfies ok, then two more
	// passes, so a late deletion would show.
	settle := func(what, wantRev string, ok func(r report, page string) bool) {
		t.Helper()
		var last string
		if !eventually(time.Minute, func() bool { r, page := d.report(); last = page; return ok(r, page) }) {
			s.bar(false, "%s: the report never said so:\n%s", what, tail(last))
			return
		}
		d.waitPass(d.passesDone()+1, time.Minute)
		_, page := d.get("/report")
		d.get("/report?format=markdown")
		var r report
		_ = json.Unmarshal(page, &r)
		s.bar(strings.HasSuffix(r.Status.Revision, "@"+wantRev[:12]), "%s: the daemon reconciles %q, want %s", what, r.Status.Revision, wantRev)
		s.bar(len(pairs(f.out)) == n, "%s: %d targets left of %d", what, len(pairs(f.out)), n)
	}

	px.down()
	settle("server down", goodRev, func(r report, _ string) bool { return r.Status.SourceError != "" })
	px.up()
	s.result("server down: last good revision kept, the fetch error reported")
	// The good history comes back before the next fault, as after a mistake.

	unrelated := testbed.NewWorktree(t)
	unrelated.Write(t, map[string]string{"README.md": "another project\n"})
	// It renders (to nothing): the daemon reconciles it, and refuses its prune.
	unrelatedRev := unrelated.Commit(t, "mallory", "unrelated")
	unrelated.Push(t, push, "main")
	settle("unrelated history", unrelatedRev, func(_ report, page string) bool { return strings.Contains(page, "refusing to prune") })
	s.result("unrelated history: prune refused (%s)", refusal(d))
	good.Push(t, push, "main")

	var gone []string
	for name := range files {
		if !strings.HasPrefix(name, "teams/t0-") {
			gone = append(gone, name)
		}
	}
	good.Remove(t, gone...)
	good.Commit(t, "bob", "delete 90%")
	good.Push(t, push, "main")
	// The deletion renders: it is the latest revision, and its prune is refused.
	settle("90% deleted", good.Git(t, "rev-parse", "HEAD"), func(_ report, page string) bool { return strings.Contains(page, "refusing to prune") })
	s.result("90%% deleted: prune refused (%s)", refusal(d))
	good.Write(t, files)
	goodRev = good.Commit(t, "bob", "restore")
	good.Push(t, push, "main")
	if !eventually(time.Minute, func() bool { r, _ := d.report(); return strings.HasSuffix(r.Status.Revision, "@"+goodRev[:12]) }) {
		t.Fatal("the daemon did not come back to the whole fleet")
	}

	broken := map[string]string{}
	for name := range files {
		broken[name] = "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: [unclosed\n  spec: :\n"
	}
	good.Write(t, broken)
	good.Commit(t, "eve", "invalid everywhere")
	good.Push(t, push, "main")
	settle("invalid YAML", goodRev, func(r report, _ string) bool { return len(r.Status.RenderErrors) > 0 })
	r, _ := d.report()
	s.result("invalid YAML: last good revision kept, %d render errors reported", len(r.Status.RenderErrors))

	obs, bad, problems := w.end()
	s.result("%d observations, %d invalid, fewest targets %d of %d", obs, bad, w.fewest.Load(), n)
	s.bar(bad == 0, "no target invalid: %v", problems)
	s.bar(w.fewest.Load() == int64(n), "nothing deleted: fewest targets %d of %d", w.fewest.Load(), n)
}

// refusal is the daemon's reason for refusing a prune, as reported.
func refusal(d *daemon) string {
	r, _ := d.report()
	for _, f := range r.Status.Failing {
		if i := strings.Index(f, "refusing to prune"); i >= 0 {
			f = f[i:]
			if j := strings.Index(f, " (use"); j > 0 {
				f = f[:j]
			}
			return strings.ReplaceAll(f, "refusing to prune ", "")
		}
	}
	return "?"
}
