package target_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/certfleet/certfleet/internal/intern"
	"github.com/certfleet/certfleet/internal/memsize"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// now is the fixed time the test certificates are issued at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// issuer makes leaf bundles under one test CA.
type issuer struct{ ca *pki.CA }

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	ca, err := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "Test Root"}, KeyType: "ec", TTL: 365 * 24 * time.Hour, MaxPathLength: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{ca: ca}
}

// bundle issues a certificate for r with a fresh ECDSA key.
func (is *issuer) bundle(t testing.TB, r pki.Request) target.Bundle {
	t.Helper()
	key, err := pki.GenerateKey("ECDSA", 256)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := pki.CSR(key, r)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := is.ca.Sign(csr, pki.Profile{AllowAnyName: true, AllowIPSANs: true, AllowedURISANs: []string{"*"}}, 30*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(key, "PKCS1")
	if err != nil {
		t.Fatal(err)
	}
	return target.Bundle{Cert: pki.EncodeCertificate(leaf), Key: keyPEM, CA: pki.EncodeCertificate(is.ca.Cert)}
}

func meta(id string) target.Meta {
	return target.Meta{CertificateID: id, Issuer: "fleet", RenewAt: now.Add(20 * 24 * time.Hour),
		IssueHash: "issue-hash", TemplateHash: "template-hash", Revision: "main@abc123"}
}

func readlink(t testing.TB, p string) string {
	t.Helper()
	l, err := os.Readlink(p)
	if err != nil {
		t.Fatalf("%s is not a symlink: %v", p, err)
	}
	return l
}

// dataDirs lists the hidden timestamped directories of dir.
func dataDirs(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestDirectoryWriteObserve(t *testing.T) {
	is := newIssuer(t)
	b := is.bundle(t, pki.Request{CommonName: "api.example.com", DNSNames: []string{"api.example.com"}})
	tests := []struct {
		name string
		// dir is the target's path, want where the files must land, both from a temporary directory.
		dir, want func(tmp string) string
		// allowed are the allowed roots, under the temporary directory.
		allowed []string
	}{
		{name: "a relative path lands under the root",
			dir: func(string) string { return "svc/api" }, want: func(tmp string) string { return filepath.Join(tmp, "root", "svc/api") }},
		{name: "an absolute path under an allowed root is used as it is", allowed: []string{"abs"},
			dir: func(tmp string) string { return filepath.Join(tmp, "abs", "api") }, want: func(tmp string) string { return filepath.Join(tmp, "abs", "api") }},
		{name: "an absolute path under the output root needs no allowed root",
			dir: func(tmp string) string { return filepath.Join(tmp, "root", "api") }, want: func(tmp string) string { return filepath.Join(tmp, "root", "api") }},
		{name: "a path spelt with ./ and // lands where its clean form does",
			dir: func(string) string { return "./svc//api/" }, want: func(tmp string) string { return filepath.Join(tmp, "root", "svc/api") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			d := &target.Directory{Root: filepath.Join(tmp, "root")}
			for _, a := range tt.allowed {
				d.AllowedRoots = append(d.AllowedRoots, filepath.Join(tmp, a))
			}
			tg := render.Target{Address: render.Address{Kind: render.Directory, Key: "directory/x", Path: tt.dir(tmp)}}
			if got := d.Path(tg); got != tt.want(tmp) {
				t.Fatalf("Path = %s, want %s", got, tt.want(tmp))
			}
			if err := d.Write(tg, b, meta("team-a/api")); err != nil {
				t.Fatal(err)
			}
			o, err := d.Observe(&tg)
			if err != nil {
				t.Fatal(err)
			}
			if !o.Exists || !o.Managed || !o.KeyMatches() || o.Cert == nil {
				t.Fatalf("Exists %v Managed %v KeyMatches %v Cert %v", o.Exists, o.Managed, o.KeyMatches(), o.Cert != nil)
			}
			if got, err := d.Bundle(o); err != nil || !bytes.Equal(got.Cert, b.Cert) || !bytes.Equal(got.Key, b.Key) || !bytes.Equal(got.CA, b.CA) {
				t.Errorf("the bundle read back differs from the one written (%v)", err)
			}
			// The target observed itself (the desired one a pass holds
			// anyway), not a copy of it in every observation.
			if o.Target != &tg {
				t.Errorf("Target = %p %+v, want the target observed, %p", o.Target, o.Target, &tg)
			}
			// certfleet's own keys; cert-manager's copies of the certificate's
			// fields stay in the file, not in the observation.
			for k, v := range meta("team-a/api").Annotations(b) {
				if !slices.Contains(ownKeys(), k) {
					v = ""
				}
				if got := o.Annotation(k); got != v {
					t.Errorf("annotation %s = %q, want %q", k, got, v)
				}
			}
			if o.Annotation(target.AnnDataHash) != o.DataHash() || o.DataHash() != b.DataHash() {
				t.Errorf("data hash %s, observed %s, written %s", o.Annotation(target.AnnDataHash), o.DataHash(), b.DataHash())
			}
			if got := o.Time(target.AnnRenewAt); !got.Equal(now.Add(20 * 24 * time.Hour)) {
				t.Errorf("renew-at = %s", got)
			}
			if _, err := os.Stat(filepath.Join(tt.want(tmp), "tls.crt")); err != nil {
				t.Errorf("tls.crt is not where it should be: %v", err)
			}
		})
	}
}

func TestDirectoryObserveUnmanaged(t *testing.T) {
	is := newIssuer(t)
	b := is.bundle(t, pki.Request{CommonName: "a.example.com"})
	other := is.bundle(t, pki.Request{CommonName: "b.example.com"})
	tests := []struct {
		name  string
		files map[string][]byte
		// want* are the fields Observe must report.
		wantExists, wantCert, wantKeyMatches bool
	}{
		{name: "a directory that does not exist holds nothing", files: nil},
		{name: "an empty directory holds nothing", files: map[string][]byte{"README": []byte("hi")}},
		{name: "plain files written by hand are read, unmanaged", files: map[string][]byte{"tls.crt": b.Cert, "tls.key": b.Key},
			wantExists: true, wantCert: true, wantKeyMatches: true},
		{name: "a key of another certificate does not match", files: map[string][]byte{"tls.crt": b.Cert, "tls.key": other.Key},
			wantExists: true, wantCert: true},
		{name: "an unreadable certificate is no certificate", files: map[string][]byte{"tls.crt": []byte("garbage"), "tls.key": b.Key},
			wantExists: true},
		{name: "a certfleet file with another manager is not managed", files: map[string][]byte{"tls.crt": b.Cert, "tls.key": b.Key,
			".certfleet.json": []byte(`{"app.kubernetes.io/managed-by": "someone-else"}`)}, wantExists: true, wantCert: true, wantKeyMatches: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &target.Directory{Root: t.TempDir()}
			tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
			if tt.files != nil {
				if err := os.MkdirAll(d.Path(tg), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(d.Path(tg), name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			o, err := d.Observe(&tg)
			if err != nil {
				t.Fatal(err)
			}
			if o.Exists != tt.wantExists || (o.Cert != nil) != tt.wantCert || o.KeyMatches() != tt.wantKeyMatches || o.Managed {
				t.Errorf("Exists %v Cert %v KeyMatches %v Managed %v; want %v %v %v false",
					o.Exists, o.Cert != nil, o.KeyMatches(), o.Managed, tt.wantExists, tt.wantCert, tt.wantKeyMatches)
			}
		})
	}
}

func TestDirectoryFileModes(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir()}
	tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
	if err := d.Write(tg, is.bundle(t, pki.Request{CommonName: "a.example.com"}), meta("a")); err != nil {
		t.Fatal(err)
	}
	dir := d.Path(tg)
	data := filepath.Join(dir, readlink(t, filepath.Join(dir, "..data")))
	tests := []struct {
		name string
		path string
		want fs.FileMode
	}{
		{name: "tls.key is readable by its owner only", path: filepath.Join(dir, "tls.key"), want: 0o600},
		{name: "tls.crt is readable by everyone", path: filepath.Join(dir, "tls.crt"), want: 0o644},
		{name: "ca.crt is readable by everyone", path: filepath.Join(dir, "ca.crt"), want: 0o644},
		// Without it, the 0644 of tls.crt would mean nothing to a server
		// running as another user: the kubelet chmods its data directory too.
		{name: "the data directory can be traversed by everyone", path: data, want: fs.ModeDir | 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Mode() & (fs.ModeDir | fs.ModePerm); got != tt.want {
				t.Errorf("mode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDirectorySwap(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir()}
	tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
	dir := d.Path(tg)
	first := is.bundle(t, pki.Request{CommonName: "a.example.com"})
	second := is.bundle(t, pki.Request{CommonName: "a.example.com"})

	if err := d.Write(tg, first, meta("a")); err != nil {
		t.Fatal(err)
	}
	t.Run("every file is a symlink into ..data", func(t *testing.T) {
		for _, name := range []string{"tls.crt", "tls.key", "ca.crt", ".certfleet.json"} {
			if got, want := readlink(t, filepath.Join(dir, name)), filepath.Join("..data", name); got != want {
				t.Errorf("%s -> %s, want %s", name, got, want)
			}
		}
	})
	firstData := readlink(t, filepath.Join(dir, "..data"))
	t.Run("..data points at a hidden data directory, the only one", func(t *testing.T) {
		if !strings.HasPrefix(firstData, "..") || strings.Contains(firstData, "/") {
			t.Errorf("..data -> %s", firstData)
		}
		if got := dataDirs(t, dir); len(got) != 1 || got[0] != firstData {
			t.Errorf("data directories = %v, want [%s]", got, firstData)
		}
	})

	if err := d.Write(tg, second, meta("a")); err != nil {
		t.Fatal(err)
	}
	secondData := readlink(t, filepath.Join(dir, "..data"))
	t.Run("a second write swaps ..data to a new directory and removes the old one", func(t *testing.T) {
		if secondData == firstData {
			t.Fatalf("..data still points at %s", firstData)
		}
		if _, err := os.Lstat(filepath.Join(dir, firstData)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the old data directory is still there: %v", err)
		}
		if got := dataDirs(t, dir); len(got) != 1 || got[0] != secondData {
			t.Errorf("data directories = %v, want [%s]", got, secondData)
		}
		if _, err := os.Lstat(filepath.Join(dir, "..data_tmp")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the temporary link is left behind: %v", err)
		}
	})
	t.Run("the files read the second bundle", func(t *testing.T) {
		o, err := d.Observe(&tg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Bundle(o)
		if err != nil || !bytes.Equal(got.Cert, second.Cert) || !bytes.Equal(got.Key, second.Key) || !o.KeyMatches() {
			t.Error("the directory does not hold the second bundle")
		}
		if o.Annotation(target.AnnDataHash) != second.DataHash() {
			t.Error("the metadata is the first write's")
		}
	})
}

func TestDirectoryTakesOverPlainFiles(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir(), Adopt: true}
	tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
	dir := d.Path(tg)
	old := is.bundle(t, pki.Request{CommonName: "old.example.com"})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": old.Cert, "tls.key": old.Key, "ca.crt": old.CA, "nginx.conf": []byte("server {}")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := is.bundle(t, pki.Request{CommonName: "new.example.com"})
	if err := d.Write(tg, b, meta("a")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		t.Run(name+" written by hand becomes a symlink into ..data", func(t *testing.T) {
			if got, want := readlink(t, filepath.Join(dir, name)), filepath.Join("..data", name); got != want {
				t.Errorf("%s -> %s, want %s", name, got, want)
			}
		})
	}
	t.Run("the new bundle is delivered and managed", func(t *testing.T) {
		o, err := d.Observe(&tg)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Managed || !o.KeyMatches() || o.DataHash() != b.DataHash() {
			t.Errorf("Managed %v KeyMatches %v, new cert %v", o.Managed, o.KeyMatches(), o.DataHash() == b.DataHash())
		}
	})
	t.Run("other files stay", func(t *testing.T) {
		if got, err := os.ReadFile(filepath.Join(dir, "nginx.conf")); err != nil || string(got) != "server {}" {
			t.Errorf("nginx.conf = %q, %v", got, err)
		}
	})
}

func TestDirectoryDelete(t *testing.T) {
	is := newIssuer(t)
	tests := []struct {
		name string
		// other is a file not certfleet's, left in the directory (none when empty).
		other       string
		write       bool
		wantDirGone bool
	}{
		{name: "a directory with other files keeps them and stays", other: "nginx.conf", write: true},
		{name: "a directory with only certfleet's files is removed", write: true, wantDirGone: true},
		{name: "deleting what was never written is no error", wantDirGone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &target.Directory{Root: t.TempDir()}
			tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
			dir := d.Path(tg)
			if tt.write {
				if err := d.Write(tg, is.bundle(t, pki.Request{CommonName: "a.example.com"}), meta("a")); err != nil {
					t.Fatal(err)
				}
				// A second write, so a swap happened before the delete.
				if err := d.Write(tg, is.bundle(t, pki.Request{CommonName: "a.example.com"}), meta("a")); err != nil {
					t.Fatal(err)
				}
			}
			if tt.other != "" {
				if err := os.WriteFile(filepath.Join(dir, tt.other), []byte("keep"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Delete(tg); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(dir)
			if tt.wantDirGone {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("the directory is still there (%d entries): %v", len(entries), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != tt.other {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("left %v, want only %s", names, tt.other)
			}
			if o, err := d.Observe(&tg); err != nil || o.Exists {
				t.Errorf("Observe after Delete: exists %v, %v", o != nil && o.Exists, err)
			}
		})
	}
}

func TestDirectoryWriteFile(t *testing.T) {
	tests := []struct {
		name string
		// before is the file's content before the write (none when empty).
		before string
	}{
		{name: "a new file is created"},
		{name: "an existing file is replaced", before: "old bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &target.Directory{Root: t.TempDir()}
			dir := d.Path(render.Target{Address: render.Address{Path: "trust"}})
			if tt.before != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte(tt.before), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.WriteFile("trust", "ca.crt", []byte("new bundle")); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
			if err != nil || string(got) != "new bundle" {
				t.Fatalf("ca.crt = %q, %v", got, err)
			}
			info, err := os.Stat(filepath.Join(dir, "ca.crt"))
			if err != nil || info.Mode().Perm() != 0o644 {
				t.Errorf("mode = %v, %v; want 0644", info.Mode(), err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %v, want only ca.crt (no temporary file)", names)
			}
		})
	}
}

// TestDirectoryConcurrentReader writes ~200 bundles with different keys while
// a reader keeps reading tls.crt and tls.key, as a server that reloads on
// change does. No writer can make two separate open calls agree (a swap can
// fall between them), so the reader does what such a server must: it either
// reads both files from the directory ..data resolved to once, or reads
// tls.crt again after tls.key and retries when it changed. Either way it must
// never get a certificate with the key of another write: that is what the
// swap of one symlink over a fully written directory guarantees, and what
// writing the files in place, or switching them one by one, would break.
func TestDirectoryConcurrentReader(t *testing.T) {
	const writes = 200
	is := newIssuer(t)
	bundles := make([]target.Bundle, writes)
	for i := range bundles {
		bundles[i] = is.bundle(t, pki.Request{CommonName: "a.example.com"})
	}
	readers := []struct {
		name string
		// read returns a certificate and a key read together; ok is false
		// when the reader saw a swap and would retry.
		read func(dir string) (crt, key []byte, ok bool)
	}{
		{name: "a reader that resolves ..data once never mixes two writes", read: func(dir string) ([]byte, []byte, bool) {
			data, err := os.Readlink(filepath.Join(dir, "..data"))
			if err != nil {
				return nil, nil, false
			}
			crt, err1 := os.ReadFile(filepath.Join(dir, data, "tls.crt"))
			key, err2 := os.ReadFile(filepath.Join(dir, data, "tls.key"))
			// The directory may be removed under it by the next swap: a retry.
			return crt, key, err1 == nil && err2 == nil
		}},
		{name: "a reader that checks tls.crt did not change around tls.key never mixes two writes", read: func(dir string) ([]byte, []byte, bool) {
			crt, err1 := os.ReadFile(filepath.Join(dir, "tls.crt"))
			key, err2 := os.ReadFile(filepath.Join(dir, "tls.key"))
			again, err3 := os.ReadFile(filepath.Join(dir, "tls.crt"))
			return crt, key, err1 == nil && err2 == nil && err3 == nil && bytes.Equal(crt, again)
		}},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			d := &target.Directory{Root: t.TempDir()}
			tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
			dir := d.Path(tg)
			if err := d.Write(tg, bundles[0], meta("a")); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var writeErr error
			var wg sync.WaitGroup
			wg.Go(func() {
				defer close(done)
				for _, b := range bundles[1:] {
					if err := d.Write(tg, b, meta("a")); err != nil {
						writeErr = err
						return
					}
				}
			})
			var checked, retried, mixed int
		read:
			for reading := true; reading; {
				select {
				case <-done:
					reading = false // one last read of the final state
				default:
				}
				crt, key, ok := rd.read(dir)
				if !ok {
					retried++
					continue
				}
				c, err := pki.ParseCertificate(crt)
				if err != nil {
					t.Errorf("read %d: a torn tls.crt: %v", checked, err)
					break read
				}
				k, err := pki.ParseKey(key)
				if err != nil {
					t.Errorf("read %d: a torn tls.key: %v", checked, err)
					break read
				}
				checked++
				if !pki.KeyMatches(k, c) {
					mixed++
				}
			}
			wg.Wait()
			if writeErr != nil {
				t.Fatal(writeErr)
			}
			if mixed > 0 {
				t.Errorf("%d of %d reads got a certificate with another write's key", mixed, checked)
			}
			if checked < writes/4 {
				t.Errorf("only %d reads were checked (%d retried): the reader did not overlap the writes", checked, retried)
			}
			t.Logf("%d reads checked, %d retried", checked, retried)
		})
	}
}

// plant makes the files of a test directory: a name ending in "/" is a
// directory, "-> x" a symlink to x, anything else a file with that content.
func plant(t testing.TB, dir string, entries map[string]string) {
	t.Helper()
	for name, what := range entries {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(what, "-> "):
			err = os.Symlink(strings.TrimPrefix(what, "-> "), p)
		default:
			err = os.WriteFile(p, []byte(what), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// mustExist fails unless every path exists (without following a last link).
func mustExist(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s is gone: %v", p, err)
		}
	}
}

// TestDirectoryPlantedDataLink plants a ..data link certfleet did not make
// in a target directory. Old code removed whatever it pointed at when its
// name started with "..": a victim directory outside the output root, or
// the output root itself with every sibling target in it.
func TestDirectoryPlantedDataLink(t *testing.T) {
	is := newIssuer(t)
	tests := []struct {
		name string
		// link is what the planted <root>/site/..data points at.
		link string
		// extra are entries planted in site/ besides the link.
		extra map[string]string
	}{
		{name: "..data pointing at ../../victim outside the root", link: "../../victim"},
		{name: "..data pointing at .. (the output root with its sibling targets)", link: ".."},
		{name: "..data pointing at a data-directory name that is a link to the victim", link: "..2020_01_01_00_00_00.1",
			extra: map[string]string{"..2020_01_01_00_00_00.1": "-> ../../victim"}},
	}
	ops := []struct {
		name string
		do   func(d *target.Directory, tg render.Target) error
		// wantErr is a substring of the error; "" for none.
		wantErr string
	}{
		{name: "a write is refused and says how to adopt", do: func(d *target.Directory, tg render.Target) error {
			return d.Write(tg, is.bundle(t, pki.Request{CommonName: "a.example.com"}), meta("a"))
		}, wantErr: "--adopt"},
		{name: "an adopting write replaces the link, never what it pointed at", do: func(d *target.Directory, tg render.Target) error {
			d.Adopt = true
			return d.Write(tg, is.bundle(t, pki.Request{CommonName: "a.example.com"}), meta("a"))
		}},
		{name: "a delete is refused", do: func(d *target.Directory, tg render.Target) error { return d.Delete(tg) },
			wantErr: "certfleet did not write"},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+": "+op.name, func(t *testing.T) {
				tmp := t.TempDir()
				plant(t, tmp, map[string]string{"victim/important": "precious"})
				d := &target.Directory{Root: filepath.Join(tmp, "root")}
				sibling := render.Target{Address: render.Address{Kind: render.Directory, Path: "other"}}
				if err := d.Write(sibling, is.bundle(t, pki.Request{CommonName: "b.example.com"}), meta("b")); err != nil {
					t.Fatal(err)
				}
				tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
				dir := d.Path(tg)
				plant(t, dir, map[string]string{"..data": "-> " + tt.link})
				plant(t, dir, tt.extra)

				o, err := d.Observe(&tg)
				if err != nil {
					t.Fatalf("Observe: %v", err)
				}
				if !o.Exists || o.Managed {
					t.Errorf("Observe: Exists %v Managed %v, want an existing directory certfleet does not manage", o.Exists, o.Managed)
				}
				err = op.do(d, tg)
				switch {
				case op.wantErr == "" && err != nil:
					t.Fatal(err)
				case op.wantErr != "" && (err == nil || !strings.Contains(err.Error(), op.wantErr) ||
					!errors.Is(err, target.ErrNotOwned) && !errors.Is(err, target.ErrTakenOver)):
					t.Fatalf("err = %v, want ErrNotOwned (a write) or ErrTakenOver (a delete) saying %q", err, op.wantErr)
				}
				mustExist(t, filepath.Join(tmp, "victim", "important"), filepath.Join(tmp, "root", "other", "tls.crt"),
					filepath.Join(tmp, "root", "other", "..data"))
				if o, err := d.Observe(&sibling); err != nil || !o.Managed || !o.KeyMatches() {
					t.Errorf("the sibling target was damaged: %v", err)
				}
				if op.wantErr == "" {
					if o, err := d.Observe(&tg); err != nil || !o.Managed || !o.KeyMatches() {
						t.Errorf("after adopting, the target is not certfleet's: %v", err)
					}
				}
			})
		}
	}
}

// TestDirectoryConfinement checks that no target path, however spelt, and
// no symlink in it, makes certfleet read, write or delete outside the output
// root (or an allowed root).
func TestDirectoryConfinement(t *testing.T) {
	is := newIssuer(t)
	b := is.bundle(t, pki.Request{CommonName: "a.example.com"})
	tests := []struct {
		name string
		// dir is the target path; {tmp} stands for the temporary directory.
		dir string
		// allowed are allowed roots, with {tmp}.
		allowed []string
		// setup is planted under the temporary directory (see plant).
		setup map[string]string
		// want is where the files land, under the temporary directory; ""
		// when the path must be refused with an error holding wantErr.
		want, wantErr string
		// lands is where a refused path leads (under the temporary
		// directory): a certificate planted there must be neither read nor
		// deleted.
		lands string
	}{
		{name: "a relative path climbing out with ../ is refused", dir: "../escape", wantErr: "leads outside the output root", lands: "escape"},
		{name: "a path that climbs out after going down is refused", dir: "a/../../escape", wantErr: "leads outside the output root", lands: "escape"},
		{name: "a symlinked subdirectory leading outside the root is refused", dir: "link/site",
			setup: map[string]string{"outside/": "", "root/link": "-> ../outside"}, wantErr: "escapes", lands: "outside/site"},
		{name: "an absolute symlinked subdirectory is refused", dir: "link/site",
			setup: map[string]string{"outside/": "", "root/link": "-> {tmp}/outside"}, wantErr: "escapes", lands: "outside/site"},
		{name: "a symlinked target directory leading outside the root is refused", dir: "site",
			setup: map[string]string{"outside/": "", "root/site": "-> ../outside"}, wantErr: "escapes", lands: "outside"},
		{name: "a symlinked subdirectory inside the root is followed", dir: "alias/site",
			setup: map[string]string{"root/real/": "", "root/alias": "-> real"}, want: "root/real/site"},
		{name: "an absolute path outside every allowed root is refused", dir: "{tmp}/outside/site",
			wantErr: "allow its parent with --allow-dir-root", lands: "outside/site"},
		{name: "an absolute path under an allowed root is written", dir: "{tmp}/allowed/site", allowed: []string{"{tmp}/allowed"},
			want: "allowed/site"},
		{name: "an absolute path next to an allowed root is refused", dir: "{tmp}/allowed-not/site", allowed: []string{"{tmp}/allowed"},
			wantErr: "--allow-dir-root", lands: "allowed-not/site"},
		{name: "a symlink under an allowed root cannot lead out of it", dir: "{tmp}/allowed/link/site", allowed: []string{"{tmp}/allowed"},
			setup: map[string]string{"outside/": "", "allowed/link": "-> ../outside"}, wantErr: "escapes", lands: "outside/site"},
		{name: "an allowed root itself is not a target", dir: "{tmp}/allowed", allowed: []string{"{tmp}/allowed"},
			setup: map[string]string{"allowed/": ""}, wantErr: "itself; give a directory below it", lands: "allowed"},
		{name: "the output root itself is not a target", dir: ".", wantErr: "names the output root", lands: "root"},
		{name: "a path naming ..data inside another target is refused", dir: "web/..data", wantErr: "reserved", lands: "root/web/..data"},
		{name: "a path naming tls.crt inside another target is refused", dir: "web/tls.crt", wantErr: "reserved", lands: "root/web/tls.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			sub := func(s string) string { return strings.ReplaceAll(s, "{tmp}", tmp) }
			setup := map[string]string{"root/": ""}
			for k, v := range tt.setup {
				setup[k] = sub(v)
			}
			plant(t, tmp, setup)
			d := &target.Directory{Root: filepath.Join(tmp, "root")}
			for _, a := range tt.allowed {
				d.AllowedRoots = append(d.AllowedRoots, sub(a))
			}
			tg := render.Target{Address: render.Address{Kind: render.Directory, Path: sub(tt.dir)}}
			before := tree(t, tmp)
			err := d.Write(tg, b, meta("a"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Write: err = %v, want one saying %q", err, tt.wantErr)
				}
				if err := d.WriteFile(sub(tt.dir), "ca.crt", []byte("bundle")); err == nil {
					t.Errorf("WriteFile: no error")
				}
				if after := tree(t, tmp); !slices.Equal(after, before) {
					t.Errorf("the refused writes changed the disk:\nbefore %v\nafter  %v", before, after)
				}
				// A certificate planted where the path leads must neither be
				// read nor deleted.
				plant(t, tmp, map[string]string{tt.lands + "/tls.crt": string(b.Cert), tt.lands + "/..data": "-> .."})
				if o, err := d.Observe(&tg); err == nil {
					t.Errorf("Observe: no error (Exists %v)", o.Exists)
				}
				if err := d.Delete(tg); err == nil {
					t.Errorf("Delete: no error")
				}
				mustExist(t, filepath.Join(tmp, tt.lands, "tls.crt"), filepath.Join(tmp, tt.lands, "..data"))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mustExist(t, filepath.Join(tmp, tt.want, "tls.crt"), filepath.Join(tmp, tt.want, "..data"))
			if o, err := d.Observe(&tg); err != nil || !o.Managed {
				t.Errorf("Observe: %v", err)
			}
			if err := d.Delete(tg); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(tmp, tt.want)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Delete left the directory: %v", err)
			}
		})
	}
}

// tree lists every path under dir, for before/after comparisons.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, strings.TrimPrefix(p, dir))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDirectoryForeignFiles checks a directory holding certfleet's file
// names that certfleet did not write: it exists, is not managed, and is only
// overwritten by an adopting write.
func TestDirectoryForeignFiles(t *testing.T) {
	is := newIssuer(t)
	old := is.bundle(t, pki.Request{CommonName: "old.example.com"})
	forged := `{"app.kubernetes.io/managed-by": "certfleet"}`
	tests := []struct {
		name  string
		files map[string]string
	}{
		{name: "plain files written by hand", files: map[string]string{"tls.crt": string(old.Cert), "tls.key": string(old.Key)}},
		{name: "a .certfleet.json claiming certfleet beside plain files", files: map[string]string{
			"tls.crt": string(old.Cert), "tls.key": string(old.Key), ".certfleet.json": forged}},
		{name: "a ..data link into a directory that is not certfleet's pattern", files: map[string]string{
			"..data": "-> mine", "mine/tls.crt": string(old.Cert), "mine/.certfleet.json": forged, "tls.crt": "-> ..data/tls.crt"}},
		{name: "a lone ca.crt", files: map[string]string{"ca.crt": string(old.CA)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &target.Directory{Root: t.TempDir()}
			tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
			dir := d.Path(tg)
			plant(t, dir, tt.files)
			o, err := d.Observe(&tg)
			if err != nil {
				t.Fatal(err)
			}
			if !o.Exists || o.Managed || slices.ContainsFunc(ownKeys(), func(k string) bool { return o.Annotation(k) != "" }) {
				t.Errorf("Observe: Exists %v Managed %v certificate-id %q; want existing, unmanaged, no metadata", o.Exists, o.Managed, o.Annotation(target.AnnCertificateID))
			}
			before := tree(t, dir)
			b := is.bundle(t, pki.Request{CommonName: "new.example.com"})
			err = d.Write(tg, b, meta("a"))
			if err == nil || !strings.Contains(err.Error(), "run with --adopt") || !strings.Contains(err.Error(), dir) || !errors.Is(err, target.ErrNotOwned) {
				t.Fatalf("Write: err = %v, want a refusal naming the directory and --adopt", err)
			}
			if after := tree(t, dir); !slices.Equal(after, before) {
				t.Errorf("the refused write changed the directory:\nbefore %v\nafter  %v", before, after)
			}
			d.Adopt = true
			if err := d.Write(tg, b, meta("a")); err != nil {
				t.Fatal(err)
			}
			o, err = d.Observe(&tg)
			if err != nil || !o.Managed || o.DataHash() != b.DataHash() {
				t.Errorf("after adopting: Managed %v new cert %v, %v", o != nil && o.Managed, o != nil && o.DataHash() == b.DataHash(), err)
			}
		})
	}
}

// TestDirectoryStaleDataDirs checks that a write removes the data
// directories an interrupted write left behind, and nothing else.
func TestDirectoryStaleDataDirs(t *testing.T) {
	is := newIssuer(t)
	tmp := t.TempDir()
	plant(t, tmp, map[string]string{"victim/important": "precious"})
	d := &target.Directory{Root: filepath.Join(tmp, "root")}
	tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
	dir := d.Path(tg)
	if err := d.Write(tg, is.bundle(t, pki.Request{CommonName: "a.example.com"}), meta("a")); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	plant(t, dir, map[string]string{
		"..2026_01_01_00_00_00.111/tls.key": "crashed",         // stale: an hour old by the clock
		"..2026_01_01_00_00_00.222/tls.key": "being written",   // fresh: another writer's, just made
		"..foo/keep":                        "not certfleet's", // not the pattern
		"..2026_01_01_00_00_00.333":         "-> ../../../victim",
		"..2026_01_01_00_00_00.444":         "a file, not a directory",
		"..2026_01_01_00_00_00.555.bak/":    "",
		"..data.tmp-1-2":                    "-> ..2026_01_01_00_00_00.111", // a swap interrupted
	})
	if err := os.Chtimes(filepath.Join(dir, "..2026_01_01_00_00_00.222"), later, later); err != nil {
		t.Fatal(err)
	}
	d.Now = func() time.Time { return later }
	if err := d.Write(tg, is.bundle(t, pki.Request{CommonName: "a.example.com"}), meta("a")); err != nil {
		t.Fatal(err)
	}
	current := readlink(t, filepath.Join(dir, "..data"))
	for _, gone := range []string{"..2026_01_01_00_00_00.111", "..data.tmp-1-2"} {
		t.Run(gone+" left by a crash is removed", func(t *testing.T) {
			if _, err := os.Lstat(filepath.Join(dir, gone)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("still there: %v", err)
			}
		})
	}
	for _, kept := range []string{"..2026_01_01_00_00_00.222", "..foo/keep", "..2026_01_01_00_00_00.333", "..2026_01_01_00_00_00.444",
		"..2026_01_01_00_00_00.555.bak", "../../victim/important", current} {
		t.Run(kept+" stays", func(t *testing.T) { mustExist(t, filepath.Join(dir, kept)) })
	}
}

func TestDirectoryWriteFileIntoCertificateDirectory(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir()}
	tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
	b := is.bundle(t, pki.Request{CommonName: "a.example.com"})
	if err := d.Write(tg, b, meta("a")); err != nil {
		t.Fatal(err)
	}
	err := d.WriteFile("./site/", "ca.crt", []byte("trust bundle"))
	if err == nil || !strings.Contains(err.Error(), "give the trust bundle its own directory") {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if o, err := d.Observe(&tg); err != nil || !bytes.Equal(o.Bundle.CA, b.CA) || !o.Managed {
		t.Errorf("the certificate's ca.crt was replaced: %v", err)
	}
}

// A first write interrupted between two links (kill -9, or a link that
// cannot be made) must never leave tls.crt without the tls.key it goes
// with: a server that reloads on tls.crt would load a certificate without
// its key. The crash test caught tls.crt linked before tls.key.
func TestDirectoryFirstWriteLinksTheCertificateLast(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir(), Adopt: true}
	tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "site"}}
	dir := d.Path(tg)
	// A non-empty directory named tls.key: the link cannot be renamed over it.
	if err := os.MkdirAll(filepath.Join(dir, "tls.key", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(tg, is.bundle(t, pki.Request{CommonName: "a.example.com"}), meta("a")); err == nil {
		t.Fatal("Write succeeded though tls.key could not be linked")
	}
	if _, err := os.Lstat(filepath.Join(dir, "tls.crt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tls.crt is there (%v) though its key could not be delivered", err)
	}
}

// A pass holds every target's observation at once: observations of one
// authority's targets share one copy of its CA body, and of each metadata
// value that repeats (issuer, revision, template hash) — also when the
// collector ran between them, as it does many times in a pass of 100,000
// targets (the strings the pass shares through hold the canonical copies).
func TestDirectoryObservationsShareWhatRepeats(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir()}
	var strs intern.Strings
	var got []*target.Observed
	for _, name := range []string{"a", "b"} {
		tg := render.Target{Address: render.Address{Kind: render.Directory, Path: name, Key: "directory/" + name}}
		if err := d.Write(tg, is.bundle(t, pki.Request{DNSNames: []string{name + ".example.test"}}), meta("team-a/"+name)); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.GC()
		o, err := d.ObserveSharing(&tg, &strs)
		if err != nil || !o.Managed {
			t.Fatalf("Observe %s: %v, managed %v", name, err, o != nil && o.Managed)
		}
		got = append(got, o)
	}
	if unsafe.SliceData(got[0].Bundle.CA) != unsafe.SliceData(got[1].Bundle.CA) {
		t.Error("two observations of one authority's targets hold two copies of its CA body")
	}
	for _, k := range ownKeys() {
		if got[1].Annotation(k) == "" {
			t.Errorf("no %s observed", k)
		}
	}
	for _, k := range []string{target.AnnIssuer, target.AnnRevision, target.AnnTemplateHash} {
		if a, b := got[0].Annotation(k), got[1].Annotation(k); a != b || unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("two observations hold two copies of %s %q", k, a)
		}
	}
	// The data hash of files certfleet wrote is the one its metadata holds.
	if h := got[0].DataHash(); h != got[0].Annotation(target.AnnDataHash) || unsafe.StringData(h) != unsafe.StringData(got[0].Annotation(target.AnnDataHash)) {
		t.Errorf("the observation holds its data hash %q twice", h)
	}
}

// An observation keeps no key (a pass holds 100,000 of them at once):
// Bundle reads it again, and only while it still belongs to the
// certificate observed — a key swapped in since is a conflict, never
// delivered beside the wrong certificate.
func TestDirectoryObservationKeepsNoKey(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir()}
	tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "svc", Key: "directory/svc"}}
	b := is.bundle(t, pki.Request{DNSNames: []string{"svc.example.test"}})
	if err := d.Write(tg, b, meta("team-a/svc")); err != nil {
		t.Fatal(err)
	}
	o, err := d.Observe(&tg)
	if err != nil || !o.KeyMatches() || !o.HasKey() {
		t.Fatalf("Observe: %v, KeyMatches %v, HasKey %v", err, o != nil && o.KeyMatches(), o != nil && o.HasKey())
	}
	if len(o.Bundle.Key) != 0 || len(o.Bundle.Cert) != 0 {
		t.Error("the observation keeps tls.key's or tls.crt's bytes")
	}
	if c, err := o.Cert.X509(); err != nil || !c.Equal(mustLeaf(t, b.Cert)) {
		t.Errorf("the leaf kept is not the one written: %v", err)
	}
	got, err := d.Bundle(o)
	if err != nil || !bytes.Equal(got.Key, b.Key) || !bytes.Equal(got.Cert, b.Cert) {
		t.Fatalf("Bundle: %v, key read back %v", err, bytes.Equal(got.Key, b.Key))
	}
	// Other files in place of these (the names link into the data directory).
	other := is.bundle(t, pki.Request{DNSNames: []string{"other.example.test"}})
	data, err := os.Readlink(filepath.Join(d.Root, "svc", "..data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name, what string
		body       []byte
	}{
		{"tls.key", "the key changed", other.Key}, {"tls.crt", "the certificate changed (and its key with it)", other.Cert}} {
		if err := os.WriteFile(filepath.Join(d.Root, "svc", data, f.name), f.body, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Bundle(o); !errors.Is(err, target.ErrConflict) {
			t.Errorf("Bundle after %s: %v, want ErrConflict", f.what, err)
		}
		// The leaf is read again too (its DER is not kept), and only while
		// tls.crt is the one observed: never another certificate.
		c, err := o.Cert.X509()
		if changed := f.name == "tls.crt"; changed && !errors.Is(err, target.ErrConflict) {
			t.Errorf("Cert.X509 after %s: %v, want ErrConflict", f.what, err)
		} else if !changed && (err != nil || !c.Equal(mustLeaf(t, b.Cert))) {
			t.Errorf("Cert.X509 after %s: %v, want the leaf observed", f.what, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(d.Root, "svc")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bundle(o); !errors.Is(err, target.ErrConflict) {
		t.Errorf("Bundle after the directory went: %v, want ErrConflict", err)
	}
	// A bundle held whole (a Secret's, a test's) is returned as it is.
	whole := &target.Observed{Target: &tg, Bundle: b}
	if got, err := d.Bundle(whole); err != nil || !bytes.Equal(got.Key, b.Key) {
		t.Errorf("Bundle of a whole observation: %v", err)
	}
}

// ownKeys are certfleet's annotation constants.
func ownKeys() []string {
	return []string{target.AnnCertificateID, target.AnnIssuer, target.AnnRenewAt,
		target.AnnSpecHash, target.AnnTemplateHash, target.AnnDataHash, target.AnnRevision}
}

// A pass holds every target's observation at once, so what one keeps is
// bounded: a directory target with an ECDSA P-256 certificate was 6.7 KB
// when observations kept the parsed x509.Certificate, every metadata key
// and their own copy of the CA; 100,000 of them outgrew 512 MiB alone.
// 1.4 KB with the leaf's DER kept; 1.0 KB without; 740 bytes with the
// metadata in fields rather than a map; 620 holding the target by pointer;
// ~520 holding the data hash once, 20 bytes rather than a 64-byte string
// (~600 measured collecting twice, which also frees what sync.Pools kept
// from earlier tests: counted before and not after, it made figures low).
func TestDirectoryObservationSize(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir()}
	tg := render.Target{Address: render.Address{Kind: render.Directory, Path: "svc", Key: "directory/svc"}}
	if err := d.Write(tg, is.bundle(t, pki.Request{DNSNames: []string{"svc.team-a.svc.cluster.local"}}), meta("team-a/svc")); err != nil {
		t.Fatal(err)
	}
	// As in a pass: the repeated metadata values are shared through one
	// intern.Strings, and the CA is shared from the first observation on.
	var strs intern.Strings
	if _, err := d.ObserveSharing(&tg, &strs); err != nil {
		t.Fatal(err)
	}
	const limit = 650
	per := memsize.PerItem(1000, func(int) *target.Observed {
		o, err := d.ObserveSharing(&tg, &strs)
		if err != nil || o.Cert == nil || !o.KeyMatches() {
			t.Fatalf("Observe: %v", err)
		}
		return o
	})
	if per > limit {
		t.Errorf("one observation keeps %d bytes, want at most %d", per, limit)
	} else {
		t.Logf("one observation keeps %d bytes", per)
	}
}

func mustLeaf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
