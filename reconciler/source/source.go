// Package source fetches the manifests of a repository revision: from a
// local directory (its working tree, or a commit of its Git history), or
// from a remote Git URL through fluxcd/pkg/git/gogit. It returns the YAML
// files under a path, minus what .certfleetignore files exclude.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/sourceignore/gitignore"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// IgnoreFile holds gitignore-style patterns of files certfleet skips.
const IgnoreFile = ".certfleetignore"

// File is one manifest file of a snapshot.
type File struct {
	// Path is relative to the repository root, with forward slashes.
	Path string
	Data []byte
}

// Revision says which revision a snapshot is.
type Revision struct {
	// Ref is what was asked for ("main", "v1.2.0", a hash), or "working tree".
	Ref string `json:"ref"`
	// Hash is the commit hash ("" for a working tree that is not a Git repository).
	Hash        string    `json:"hash,omitempty"`
	Author      string    `json:"author,omitempty"`
	AuthorEmail string    `json:"authorEmail,omitempty"`
	Message     string    `json:"message,omitempty"`
	Time        time.Time `json:"time,omitempty"`
}

// String is "main@1a2b3c4d5e6f" or "working tree".
func (r Revision) String() string {
	if r.Hash == "" {
		return r.Ref
	}
	h := r.Hash
	if len(h) > 12 {
		h = h[:12]
	}
	if r.Ref == "" || r.Ref == r.Hash {
		return h
	}
	return r.Ref + "@" + h
}

// Snapshot is the manifests of one revision.
type Snapshot struct {
	Revision Revision
	Files    []File
	// Scope says which repository files the snapshot covers.
	Scope Scope
}

// Scope is the part of a repository a snapshot reads: under a path, minus
// what .certfleetignore files exclude. Its zero value covers everything.
type Scope struct {
	// Path is the folder read ("" for the whole repository).
	Path    string
	matcher gitignore.Matcher
}

// Whole reports whether the scope is the whole repository: no --path and
// no .certfleetignore.
func (s Scope) Whole() bool { return s.Path == "" && s.matcher == nil }

// Covers reports whether a repository file lies inside the scope, whether
// or not it still exists: a pass prunes only what its scope declared.
func (s Scope) Covers(file string) bool {
	file = strings.Trim(path.Clean("/"+file), "/")
	if s.matcher != nil && s.matcher.Match(strings.Split(file, "/"), false) {
		return false
	}
	return s.Path == "" || file == s.Path || strings.HasPrefix(file, s.Path+"/")
}

// Options select what to read.
type Options struct {
	// Path scopes the repository to a folder ("" for all of it).
	Path string
	// Auth is how to reach a remote repository.
	Auth Auth
	// Timeout bounds one fetch of a remote repository, listing and clone
	// (default DefaultTimeout): a hung Git server fails the fetch.
	Timeout time.Duration
	// Verify, when set, requires the revision's head commit to be signed by
	// one of its keys; an unsigned or wrongly signed revision is an
	// *UnverifiedError and nothing of it is read.
	Verify *Verification
	// LastCommit is the commit the caller already has: when a remote ref
	// still points at it, Fetch transfers nothing and returns ErrUnchanged.
	LastCommit string
}

// DefaultTimeout bounds a remote fetch when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// ErrUnchanged says a remote ref still points at Options.LastCommit.
var ErrUnchanged = errors.New("unchanged since the last fetch")

// IsRemote reports whether a source is a URL rather than a local directory.
func IsRemote(src string) bool {
	u, err := url.Parse(src)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "ssh") ||
		strings.HasPrefix(src, "git@")
}

// Fetch returns the manifests of src at ref. A local directory without ref
// is read as it is on disk (uncommitted changes included); with ref, from
// its Git history. A URL is cloned (shallow where it can be) with auth.
func Fetch(ctx context.Context, src, ref string, o Options) (*Snapshot, error) {
	if IsRemote(src) {
		return fetchRemote(ctx, src, ref, o)
	}
	if ref == "" {
		if o.Verify != nil {
			return nil, fmt.Errorf("a working tree has no signed commit to verify: give the ref to read (--ref), or a repository URL")
		}
		return readDir(src, o)
	}
	return readCommit(src, ref, o)
}

// readDir reads a working tree from disk.
func readDir(dir string, o Options) (*Snapshot, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("reading source %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("source %s is not a directory", dir)
	}
	var files []File
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !wanted(rel) || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, File{Path: rel, Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading source %s: %w", dir, err)
	}
	rev := Revision{Ref: "working tree"}
	if repo, err := gogit.PlainOpenWithOptions(dir, &gogit.PlainOpenOptions{DetectDotGit: true}); err == nil {
		if head, err := repo.Head(); err == nil {
			if c, err := repo.CommitObject(head.Hash()); err == nil {
				rev = revisionOf("working tree", c)
			}
		}
	}
	return finish(rev, files, o)
}

// readCommit reads a commit of a local repository without touching its
// working tree.
func readCommit(dir, ref string, o Options) (*Snapshot, error) {
	repo, err := gogit.PlainOpenWithOptions(dir, &gogit.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("opening the Git repository at %s: %w", dir, err)
	}
	hash, err := repo.ResolveRevision(plumbing.Revision(ref))
	if err != nil {
		return nil, fmt.Errorf("ref %q does not exist in %s (%v): give a branch, tag or commit", ref, dir, err)
	}
	c, err := repo.CommitObject(*hash)
	if err != nil {
		return nil, fmt.Errorf("ref %q: %w", ref, err)
	}
	if o.Verify != nil {
		body, err := payload(c)
		if err != nil {
			return nil, err
		}
		if _, err := o.Verify.verify(revisionOf(ref, c), c.PGPSignature, body); err != nil {
			return nil, err
		}
	}
	files, err := treeFiles(c)
	if err != nil {
		return nil, fmt.Errorf("reading %s at %s: %w", dir, ref, err)
	}
	return finish(revisionOf(ref, c), files, o)
}

func treeFiles(c *object.Commit) ([]File, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	var files []File
	err = tree.Files().ForEach(func(f *object.File) error {
		if !wanted(f.Name) || !f.Mode.IsFile() {
			return nil
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		files = append(files, File{Path: f.Name, Data: b})
		return nil
	})
	return files, err
}

func revisionOf(ref string, c *object.Commit) Revision {
	return Revision{Ref: ref, Hash: c.Hash.String(), Author: c.Author.Name, AuthorEmail: c.Author.Email,
		Message: strings.TrimSpace(c.Message), Time: c.Author.When.UTC()}
}

// wanted keeps YAML manifests and ignore files.
func wanted(p string) bool {
	base := path.Base(p)
	return base == IgnoreFile || strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")
}

// finish applies ignore files and the path scope, and sorts the files.
func finish(rev Revision, all []File, o Options) (*Snapshot, error) {
	var patterns []gitignore.Pattern
	for _, f := range all {
		if path.Base(f.Path) == IgnoreFile {
			var domain []string
			if d := path.Dir(f.Path); d != "." {
				domain = strings.Split(d, "/")
			}
			patterns = append(patterns, sourceignore.ReadPatterns(strings.NewReader(string(f.Data)), domain)...)
		}
	}
	sc := Scope{Path: strings.Trim(path.Clean("/"+filepath.ToSlash(o.Path)), "/"), matcher: sourceignore.NewDefaultMatcher(patterns, nil)}
	scope := sc.Path
	var files []File
	for _, f := range all {
		if path.Base(f.Path) == IgnoreFile || !sc.Covers(f.Path) {
			continue
		}
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	if scope != "" && len(files) == 0 && !pathExists(all, scope) {
		return nil, fmt.Errorf("path %q holds no manifests at %s", o.Path, rev)
	}
	return &Snapshot{Revision: rev, Files: files, Scope: sc}, nil
}

func pathExists(all []File, scope string) bool {
	for _, f := range all {
		if strings.HasPrefix(f.Path, scope+"/") {
			return true
		}
	}
	return false
}

// Sanitize removes credentials from a URL for messages and logs.
func Sanitize(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// isLoopback reports whether a URL points at this machine, where HTTP
// without TLS cannot be overheard.
func isLoopback(u *url.URL) bool {
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
