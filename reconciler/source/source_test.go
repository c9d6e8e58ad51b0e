package source_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/source"
)

func paths(s *source.Snapshot) string {
	var out []string
	for _, f := range s.Files {
		out = append(out, f.Path)
	}
	return strings.Join(out, ",")
}

func TestFetchReadsYAMLUnderThePathMinusIgnoredFiles(t *testing.T) {
	w := testbed.NewWorktree(t)
	w.Write(t, map[string]string{
		"teams/a/cert.yaml":         "a",
		"teams/a/notes.txt":         "not yaml",
		"teams/b/cert.yml":          "b",
		"teams/b/drafts/wip.yaml":   "draft",
		"teams/.certfleetignore":    "b/drafts/\n",
		"other/cert.yaml":           "other",
		".github/workflows/ci.yaml": "ci",
		".certfleetignore":          "# nothing\n",
	})
	first := w.Commit(t, "alice", "first")
	ctx := context.Background()

	all, err := source.Fetch(ctx, w.Dir, "", source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(all); got != "other/cert.yaml,teams/a/cert.yaml,teams/b/cert.yml" {
		t.Errorf("working tree files = %s", got)
	}
	if all.Revision.Hash != first || all.Revision.Author != "alice" {
		t.Errorf("revision = %+v, want HEAD %s by alice", all.Revision, first)
	}
	scoped, err := source.Fetch(ctx, w.Dir, "", source.Options{Path: "teams"})
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(scoped); got != "teams/a/cert.yaml,teams/b/cert.yml" {
		t.Errorf("--path teams: files = %s", got)
	}
	if _, err := source.Fetch(ctx, w.Dir, "", source.Options{Path: "nowhere"}); err == nil {
		t.Error("a path that does not exist was accepted")
	}

	w.Write(t, map[string]string{"teams/a/cert.yaml": "changed"})
	w.Commit(t, "bob", "second")
	old, err := source.Fetch(ctx, w.Dir, first, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range old.Files {
		if f.Path == "teams/a/cert.yaml" && string(f.Data) != "a" {
			t.Errorf("reading commit %s gave the newer content %q", first, f.Data)
		}
	}
	if _, err := source.Fetch(ctx, w.Dir, "no-such-ref", source.Options{}); err == nil || !strings.Contains(err.Error(), `ref "no-such-ref" does not exist`) {
		t.Errorf("an unknown ref: %v", err)
	}
}

func TestFetchClonesBranchesTagsAndCommitsOverHTTP(t *testing.T) {
	srv := testbed.NewGitServer(t, testbed.WithBasicAuth("ci", "pw"))
	url, err := srv.CreateRepo("fleet")
	if err != nil {
		t.Fatal(err)
	}
	w := testbed.NewWorktree(t)
	w.Write(t, map[string]string{"teams/a.yaml": "v1"})
	v1 := w.Commit(t, "alice", "v1")
	w.Git(t, "tag", "v1.0.0")
	w.Write(t, map[string]string{"teams/a.yaml": "v2"})
	v2 := w.Commit(t, "bob", "v2")
	w.Push(t, srv.PushURL("fleet"), "main", "v1.0.0")
	opts := source.Options{Auth: source.Auth{Username: "ci", Password: "pw"}}
	for ref, want := range map[string]string{"main": v2, "v1.0.0": v1, v1: v1, "": v2} {
		s, err := source.Fetch(context.Background(), url, ref, opts)
		if err != nil {
			t.Fatalf("ref %q: %v", ref, err)
		}
		if s.Revision.Hash != want {
			t.Errorf("ref %q: hash %s, want %s", ref, s.Revision.Hash, want)
		}
	}
}

func TestPollingAnUnchangedRefTransfersNothing(t *testing.T) {
	srv := testbed.NewGitServer(t)
	url, err := srv.CreateRepo("fleet")
	if err != nil {
		t.Fatal(err)
	}
	w := testbed.NewWorktree(t)
	w.Write(t, map[string]string{"teams/a.yaml": "v1"})
	w.Commit(t, "alice", "v1")
	w.Git(t, "tag", "v1.0.0")
	w.Push(t, srv.PushURL("fleet"), "main", "v1.0.0")
	ctx := context.Background()
	for _, ref := range []string{"main", "", "v1.0.0", "refs/heads/main"} {
		first, err := source.Fetch(ctx, url, ref, source.Options{})
		if err != nil {
			t.Fatalf("ref %q: %v", ref, err)
		}
		before := srv.UploadPacks()
		for range 3 {
			if _, err := source.Fetch(ctx, url, ref, source.Options{LastCommit: first.Revision.Hash}); !errors.Is(err, source.ErrUnchanged) {
				t.Fatalf("ref %q: polling an unchanged ref: %v, want ErrUnchanged", ref, err)
			}
		}
		if n := srv.UploadPacks() - before; n != 0 {
			t.Errorf("ref %q: 3 unchanged polls made %d upload-pack requests, want 0", ref, n)
		}
	}
	// A new commit is fetched.
	w.Write(t, map[string]string{"teams/a.yaml": "v2"})
	v2 := w.Commit(t, "bob", "v2")
	w.Push(t, srv.PushURL("fleet"), "main")
	s, err := source.Fetch(ctx, url, "main", source.Options{LastCommit: strings.Repeat("0", 40)})
	if err != nil || s.Revision.Hash != v2 {
		t.Fatalf("after a push: %v, %+v", err, s)
	}
}

// BenchmarkFetch10k clones a 10,000-certificate repository (100 files) from
// the test bed's Git server over HTTP and reads it: what a plan or a
// reconcile pays before rendering.
func BenchmarkFetch10k(b *testing.B) {
	srv, err := testbed.StartGitServer()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	url, err := srv.CreateRepo("fleet")
	if err != nil {
		b.Fatal(err)
	}
	w := testbed.NewWorktree(b)
	w.Write(b, testbed.Fleet(10000, 100, 0))
	w.Commit(b, "bench", "10,000 certificates")
	w.Push(b, srv.PushURL("fleet"), "main")
	b.ResetTimer()
	for b.Loop() {
		s, err := source.Fetch(context.Background(), url, "main", source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Files) != 100 {
			b.Fatalf("%d files", len(s.Files))
		}
	}
}

func TestAHungGitServerFailsTheFetchWithinItsTimeout(t *testing.T) {
	addr := testbed.HungServer(t)
	start := time.Now()
	_, err := source.Fetch(context.Background(), "http://"+addr+"/fleet.git", "main", source.Options{Timeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("a fetch from a server that never answers succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the fetch took %s, want about its 500ms timeout", d)
	}
}
