package testbed

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// GitServer serves bare repositories over Git's smart HTTP protocol, through
// Debian git's own git-http-backend, optionally behind HTTP basic auth.
type GitServer struct {
	// URL is the server's base URL; a repository named r is at URL + "/" + r + ".git".
	URL string
	// Username and Password are the basic-auth credentials ("" when open).
	Username, Password string

	root string
	srv  *httptest.Server
	// uploadPacks counts object transfers (POST …/git-upload-pack): a poll
	// that only lists refs makes none.
	uploadPacks atomic.Int64
}

// UploadPacks counts the fetches and clones that transferred objects.
func (g *GitServer) UploadPacks() int { return int(g.uploadPacks.Load()) }

// GitOption configures StartGitServer.
type GitOption func(*GitServer)

// WithBasicAuth requires HTTP basic auth for every request (default: none).
func WithBasicAuth(username, password string) GitOption {
	return func(g *GitServer) { g.Username, g.Password = username, password }
}

// StartGitServer starts a Git server on a loopback port. Stop it with Stop.
func StartGitServer(opts ...GitOption) (*GitServer, error) {
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("testbed: git is not installed (apt-get install git): %w", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return nil, fmt.Errorf("testbed: %s missing: %w", backend, err)
	}
	root, err := os.MkdirTemp("", "testbed-git-")
	if err != nil {
		return nil, err
	}
	g := &GitServer{root: root}
	for _, o := range opts {
		o(g)
	}
	var h http.Handler = &cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	if g.Username != "" {
		h = basicAuth(g.Username, g.Password, h)
	}
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			g.uploadPacks.Add(1)
		}
		inner.ServeHTTP(w, r)
	})
	g.srv = httptest.NewServer(h)
	g.URL = g.srv.URL
	return g, nil
}

// NewGitServer starts a Git server for one test and stops it when the test ends.
func NewGitServer(t testing.TB, opts ...GitOption) *GitServer {
	t.Helper()
	g, err := StartGitServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	return g
}

// Stop stops the server and removes its repositories.
func (g *GitServer) Stop() {
	g.srv.Close()
	os.RemoveAll(g.root)
}

// CreateRepo creates an empty bare repository that accepts pushes and returns
// its URL (without credentials).
func (g *GitServer) CreateRepo(name string) (string, error) {
	dir := filepath.Join(g.root, name+".git")
	if err := git(g.root, "init", "--quiet", "--bare", "--initial-branch=main", dir); err != nil {
		return "", err
	}
	if err := git(dir, "config", "http.receivepack", "true"); err != nil {
		return "", err
	}
	return g.RepoURL(name), nil
}

// RepoURL is the URL of the repository name, without credentials.
func (g *GitServer) RepoURL(name string) string { return g.URL + "/" + name + ".git" }

// PushURL is the URL of the repository name with the credentials in it, for
// the git command line.
func (g *GitServer) PushURL(name string) string {
	if g.Username == "" {
		return g.RepoURL(name)
	}
	u, _ := url.Parse(g.RepoURL(name))
	u.User = url.UserPassword(g.Username, g.Password)
	return u.String()
}

func basicAuth(user, pass string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="testbed"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Worktree is a local Git working tree that tests write files into, commit,
// and push to a GitServer with the git command line.
type Worktree struct {
	Dir string
}

// NewWorktree makes an empty working tree on branch main in a test directory.
func NewWorktree(t testing.TB) *Worktree {
	t.Helper()
	w := &Worktree{Dir: t.TempDir()}
	w.must(t, "init", "--quiet", "--initial-branch=main")
	return w
}

// Write writes files (path relative to the tree → content), creating folders.
func (w *Worktree) Write(t testing.TB, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(w.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Remove deletes files from the tree.
func (w *Worktree) Remove(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.Remove(filepath.Join(w.Dir, n)); err != nil {
			t.Fatal(err)
		}
	}
}

// Commit stages everything and commits it as author; it returns the commit hash.
func (w *Worktree) Commit(t testing.TB, author, message string) string {
	t.Helper()
	w.must(t, "add", "--all")
	w.must(t, "-c", "user.name="+author, "-c", "user.email="+author+"@example.com",
		"commit", "--quiet", "--allow-empty", "-m", message)
	return w.Git(t, "rev-parse", "HEAD")
}

// Git runs a git command in the tree and returns its trimmed output.
func (w *Worktree) Git(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = w.Dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (w *Worktree) must(t testing.TB, args ...string) { t.Helper(); w.Git(t, args...) }

// Push pushes refspecs ("main", "feature:feature", a tag) to url.
func (w *Worktree) Push(t testing.TB, url string, refspecs ...string) {
	t.Helper()
	w.must(t, append([]string{"push", "--quiet", "--force", url}, refspecs...)...)
}

// gitEnv keeps the user's and the machine's Git configuration out of tests.
func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
}

func git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
