package target_test

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	}{
		{name: "a relative path lands under the root",
			dir: func(string) string { return "svc/api" }, want: func(tmp string) string { return filepath.Join(tmp, "root", "svc/api") }},
		{name: "an absolute path is used as it is",
			dir: func(tmp string) string { return filepath.Join(tmp, "abs") }, want: func(tmp string) string { return filepath.Join(tmp, "abs") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			d := &target.Directory{Root: filepath.Join(tmp, "root")}
			tg := render.Target{Kind: render.Directory, Key: "directory/x", Dir: tt.dir(tmp)}
			if got := d.Path(tg); got != tt.want(tmp) {
				t.Fatalf("Path = %s, want %s", got, tt.want(tmp))
			}
			if err := d.Write(tg, b, meta("team-a/api")); err != nil {
				t.Fatal(err)
			}
			o, err := d.Observe(tg)
			if err != nil {
				t.Fatal(err)
			}
			if !o.Exists || !o.Managed || !o.KeyMatches || o.Cert == nil {
				t.Fatalf("Exists %v Managed %v KeyMatches %v Cert %v", o.Exists, o.Managed, o.KeyMatches, o.Cert != nil)
			}
			if !bytes.Equal(o.Bundle.Cert, b.Cert) || !bytes.Equal(o.Bundle.Key, b.Key) || !bytes.Equal(o.Bundle.CA, b.CA) {
				t.Error("the bundle read back differs from the one written")
			}
			if o.Target != tg {
				t.Errorf("Target = %+v, want %+v", o.Target, tg)
			}
			want := meta("team-a/api").Annotations(b)
			want[target.LabelManagedBy] = target.ManagedByValue
			if !maps.Equal(o.Annotations, want) {
				t.Errorf("annotations = %v\nwant %v", o.Annotations, want)
			}
			if o.Annotations[target.AnnDataHash] != o.Bundle.DataHash() {
				t.Errorf("data hash %s, bundle's %s", o.Annotations[target.AnnDataHash], o.Bundle.DataHash())
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
			tg := render.Target{Kind: render.Directory, Dir: "site"}
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
			o, err := d.Observe(tg)
			if err != nil {
				t.Fatal(err)
			}
			if o.Exists != tt.wantExists || (o.Cert != nil) != tt.wantCert || o.KeyMatches != tt.wantKeyMatches || o.Managed {
				t.Errorf("Exists %v Cert %v KeyMatches %v Managed %v; want %v %v %v false",
					o.Exists, o.Cert != nil, o.KeyMatches, o.Managed, tt.wantExists, tt.wantCert, tt.wantKeyMatches)
			}
		})
	}
}

func TestDirectoryFileModes(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir()}
	tg := render.Target{Kind: render.Directory, Dir: "site"}
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
	tg := render.Target{Kind: render.Directory, Dir: "site"}
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
		o, err := d.Observe(tg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(o.Bundle.Cert, second.Cert) || !bytes.Equal(o.Bundle.Key, second.Key) || !o.KeyMatches {
			t.Error("the directory does not hold the second bundle")
		}
		if o.Annotations[target.AnnDataHash] != second.DataHash() {
			t.Error("the metadata is the first write's")
		}
	})
}

func TestDirectoryTakesOverPlainFiles(t *testing.T) {
	is := newIssuer(t)
	d := &target.Directory{Root: t.TempDir()}
	tg := render.Target{Kind: render.Directory, Dir: "site"}
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
		o, err := d.Observe(tg)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Managed || !o.KeyMatches || !bytes.Equal(o.Bundle.Cert, b.Cert) {
			t.Errorf("Managed %v KeyMatches %v, new cert %v", o.Managed, o.KeyMatches, bytes.Equal(o.Bundle.Cert, b.Cert))
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
			tg := render.Target{Kind: render.Directory, Dir: "site"}
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
			if o, err := d.Observe(tg); err != nil || o.Exists {
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
			dir := d.Path(render.Target{Dir: "trust"})
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
			tg := render.Target{Kind: render.Directory, Dir: "site"}
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
