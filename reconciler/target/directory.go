package target

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/intern"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/render"
)

// Directory writes bundles into directories the way the kubelet writes
// projected volumes: the files live in a fresh hidden folder, and one
// symlink rename swaps the whole set, so a process that reloads on change
// never reads a new certificate with an old key.
//
//	<dir>/tls.crt -> ..data/tls.crt
//	<dir>/..data  -> ..2026_11_22_20_15_00.123456789
//
// Every access goes through an os.Root opened at the output root (or at an
// allowed root, for absolute paths) and then at the target directory, so
// neither a "..", nor a symlinked parent, nor a planted ..data link can
// lead a read, write or delete outside it. certfleet only ever removes what
// it can prove it made: a data directory whose name matches its own pattern,
// that is a real directory (not a link) directly inside the target.
type Directory struct {
	// Root resolves relative target paths (the reconciler's --output-dir).
	// Default: the working directory.
	Root string
	// AllowedRoots are the directories absolute target paths may lie under
	// (--allow-dir-root, allowedDirRoots in certfleet.yaml). The output root
	// is always allowed. Default: none, so other absolute paths are refused.
	AllowedRoots []string
	// Adopt lets Write replace files certfleet did not write (a directory
	// whose tls.crt, tls.key, ca.crt, .certfleet.json or ..data is not its
	// own). Default false: such a directory is refused.
	Adopt bool
	// Now is the clock that names data directories and ages stale ones.
	// Default time.Now.
	Now func() time.Time
}

const (
	dataLink = "..data"
	metaFile = ".certfleet.json"
	// staleAfter is how old a data directory ..data does not point at must
	// be before it is removed: a younger one may be another writer's
	// between its mkdir and its swap (milliseconds apart). Passes on one
	// backend are exclusive, so that writer could only be a misconfigured
	// second instance; the margin is generous all the same.
	staleAfter = 10 * time.Second
)

// bundleFiles are linked in this order on a first write: tls.crt last, so
// a crash (or a failed link) between two links never leaves a certificate
// without its key for a server that reloads on tls.crt to read.
var bundleFiles = []string{"ca.crt", "tls.key", metaFile, "tls.crt"}

// dataDirName is the name of the data directories certfleet makes:
// ..YYYY_MM_DD_HH_MM_SS.<digits>. A name must match it, whole, before
// certfleet removes anything.
var dataDirName = regexp.MustCompile(`^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$`)

// tempLinkName is the name of the temporary links replaceLink renames over
// the real ones; a crash between the two steps leaves one behind.
var tempLinkName = regexp.MustCompile(`^(\.\.data|tls\.crt|tls\.key|ca\.crt|\.certfleet\.json)\.tmp-\d+-\d+$`)

// ReservedName says why a path component cannot be part of a directory
// target's path ("" when it can): the names certfleet uses inside a target
// directory would make one target write into another's internals.
func ReservedName(name string) string {
	switch {
	case strings.HasPrefix(name, "..") && name != "..":
		return fmt.Sprintf("%q is reserved: names starting with \"..\" are certfleet's own entries (..data and its data directories)", name)
	case slices.Contains(bundleFiles, name):
		return fmt.Sprintf("%q is reserved: it is one of the files certfleet writes into a target directory", name)
	}
	return ""
}

func (d *Directory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Directory) root() (string, error) {
	r := d.Root
	if r == "" {
		r = "."
	}
	abs, err := filepath.Abs(r)
	if err != nil {
		return "", fmt.Errorf("the output root %s: %w", r, err)
	}
	return abs, nil
}

// Path is where a directory target is on disk, for messages: reads and
// writes resolve it inside its root, never through this string.
func (d *Directory) Path(t render.Target) string {
	if filepath.IsAbs(t.Path) {
		return filepath.Clean(t.Path)
	}
	root := d.Root
	if root == "" {
		root = "."
	}
	return filepath.Join(root, t.Path)
}

// locate splits a target path into the root it must stay in and the
// cleaned path below it. A relative path is under the output root; an
// absolute one must lie under the output root or an allowed root (the
// deepest that holds it, so it is confined as tightly as configured).
func (d *Directory) locate(dir string) (base, rel string, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("directory target %q: %s", dir, fmt.Sprintf(format, args...))
	}
	if dir == "" {
		return "", "", bad("the path is empty; give a directory below the output root, such as web/tls")
	}
	root, err := d.root()
	if err != nil {
		return "", "", err
	}
	clean := filepath.Clean(dir)
	if filepath.IsAbs(clean) {
		bases := []string{root}
		for _, a := range d.AllowedRoots {
			if !filepath.IsAbs(a) {
				return "", "", fmt.Errorf("allowed directory root %q is not absolute: give an absolute path", a)
			}
			bases = append(bases, filepath.Clean(a))
		}
		for _, b := range bases {
			r, err := filepath.Rel(b, clean)
			if err != nil || r == ".." || strings.HasPrefix(r, "../") {
				continue
			}
			if r == "." {
				return "", "", bad("names the root %s itself; give a directory below it (a root holds targets, it is not one)", b)
			}
			if len(b) > len(base) {
				base, rel = b, r
			}
		}
		if base == "" {
			allowed := "none is allowed"
			if len(d.AllowedRoots) > 0 {
				allowed = "allowed: " + strings.Join(d.AllowedRoots, ", ")
			}
			return "", "", bad("an absolute path outside the output root %s and every allowed root (%s): write it relative to the output root, or allow its parent with --allow-dir-root (allowedDirRoots in certfleet.yaml)",
				root, allowed)
		}
	} else {
		base, rel = root, clean
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "", "", bad("leads outside the output root %s; write a path below it without \"..\"", root)
		}
		if rel == "." {
			return "", "", bad("names the output root %s itself; give a directory below it, such as web/tls", root)
		}
	}
	for _, c := range strings.Split(rel, "/") {
		if p := ReservedName(c); p != "" {
			return "", "", bad("%s; choose another directory name", p)
		}
	}
	return base, rel, nil
}

// opened is a target directory opened inside its root.
type opened struct {
	base, rel string
	root      *os.Root // the output root or allowed root
	dir       *os.Root // the target directory
}

func (o *opened) Close() {
	o.dir.Close()
	o.root.Close()
}

// open opens a target's directory inside its root; with create, it makes
// the directory (and the output root) first. Without create, a directory
// that is not there is (nil, nil).
func (d *Directory) open(dir string, create bool) (*opened, error) {
	base, rel, err := d.locate(dir)
	if err != nil {
		return nil, err
	}
	where := func(err error) error {
		return fmt.Errorf("directory target %q (%s under %s): %w", dir, rel, base, err)
	}
	if create {
		// The root itself is configuration, trusted as given.
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, where(err)
		}
	}
	root, err := os.OpenRoot(base)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil, nil
	}
	if err != nil {
		return nil, where(err)
	}
	if create {
		// Root.MkdirAll refuses a component that is a symlink leading out of
		// the root: the directory is made where the path says, or nowhere.
		if err := root.MkdirAll(rel, 0o755); err != nil {
			root.Close()
			return nil, where(err)
		}
	}
	tdir, err := root.OpenRoot(rel)
	if errors.Is(err, fs.ErrNotExist) && !create {
		root.Close()
		return nil, nil
	}
	if err != nil {
		root.Close()
		return nil, where(err)
	}
	return &opened{base: base, rel: rel, root: root, dir: tdir}, nil
}

// state is what a target directory holds of certfleet's names.
type state struct {
	// present are certfleet's names (bundle files, ..data) found in it.
	present []string
	// data is the data directory ..data points at, when it is one
	// certfleet made: a matching name, a real directory inside the target.
	data string
	// meta is certfleet's metadata in that data directory.
	meta map[string]string
}

// owned reports whether certfleet wrote what the directory holds.
func (s state) owned() bool {
	return s.data != "" && s.meta[LabelManagedBy] == ManagedByValue
}

func inspect(dir *os.Root) state {
	var s state
	for _, name := range append(slices.Clone(bundleFiles), dataLink) {
		if _, err := dir.Lstat(name); err == nil {
			s.present = append(s.present, name)
		}
	}
	s.data = verifiedData(dir)
	if s.data != "" {
		if b, err := dir.ReadFile(s.data + "/" + metaFile); err == nil {
			var m map[string]string
			if json.Unmarshal(b, &m) == nil {
				s.meta = m
			}
		}
	}
	return s
}

// verifiedData is the data directory ..data points at, or "" when the link
// is missing or points anywhere but at a directory certfleet made.
func verifiedData(dir *os.Root) string {
	l, err := dir.Readlink(dataLink)
	if err != nil || !isDataDir(dir, l) {
		return ""
	}
	return l
}

// isDataDir reports whether name is one of certfleet's data directories:
// its pattern (so no separator, no ".."), and a real directory, not a link.
func isDataDir(dir *os.Root, name string) bool {
	if !dataDirName.MatchString(name) {
		return false
	}
	fi, err := dir.Lstat(name)
	return err == nil && fi.IsDir()
}

// Observe reads one target. A directory holding certfleet's file names
// that certfleet did not write exists but is not managed. The observation
// holds its own copy of each metadata value: see ObserveSharing.
func (d *Directory) Observe(t *render.Target) (*Observed, error) { return d.ObserveSharing(t, nil) }

// ObserveSharing is Observe with the metadata values that repeat across a
// fleet's targets (issuer, revision, template hash) shared through strs: a
// pass holds every target's observation at once, and keeps one strs for
// all of them.
func (d *Directory) ObserveSharing(t *render.Target, strs *intern.Strings) (*Observed, error) {
	o := &Observed{Target: t}
	od, err := d.open(t.Path, false)
	if err != nil {
		return nil, err
	}
	if od == nil {
		return o, nil
	}
	defer od.Close()
	st := inspect(od.dir)
	owned := st.owned()
	read := func(name string) ([]byte, error) {
		b, err := od.dir.ReadFile(name)
		switch {
		case err == nil:
			return b, nil
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil
		case owned:
			return nil, fmt.Errorf("reading %s: %w", filepath.Join(d.Path(*t), name), err)
		}
		// Someone else's file that cannot be read (a link out of the
		// directory, say): it exists, and is not ours.
		return nil, nil
	}
	if o.Bundle.Cert, err = read("tls.crt"); err != nil {
		return nil, err
	}
	if o.Bundle.Key, err = read("tls.key"); err != nil {
		return nil, err
	}
	if o.Bundle.CA, err = read("ca.crt"); err != nil {
		return nil, err
	}
	o.Bundle.CA = shareCA(o.Bundle.CA)
	o.Exists = len(st.present) > 0
	if owned {
		o.Managed, o.own = true, ownMetaOf(st.meta, strs)
	}
	c := o.parse(false)
	// A pass holds every target's observation at once: neither tls.key nor
	// tls.crt is kept once parsed and hashed (os.ReadFile's buffers are at
	// least 512 bytes each), nor the leaf's DER. What needs the files (a
	// copy to another target, a kept key, a check of the whole
	// certificate) reads them again through Bundle or Leaf.X509, which
	// check they are still what was observed.
	if c != nil {
		o.Cert.pem, o.Cert.dir, o.Cert.from = nil, d, o
	}
	if len(o.Bundle.Cert) > 0 {
		o.dataHash = o.Bundle.DataHash()
		if o.own != nil && o.own.dataHash == o.dataHash {
			o.dataHash = o.own.dataHash // one copy where the files are what certfleet wrote
		}
	}
	o.keyOnDisk = len(o.Bundle.Key) > 0
	o.Bundle.Cert, o.Bundle.Key = nil, nil
	return o, nil
}

// Bundle is what an observed target holds, whole: a directory
// observation keeps neither tls.crt nor tls.key, so they are read again
// here, and refused (ErrConflict) unless tls.crt and ca.crt are still what
// was observed and tls.key still belongs to them. Other observations hold
// their bundle whole.
func (d *Directory) Bundle(o *Observed) (Bundle, error) {
	if o.dataHash == "" && !o.keyOnDisk {
		return o.Bundle, nil
	}
	b, err := d.reread(o, true)
	if err != nil {
		return Bundle{}, err
	}
	c, cerr := pki.ParseCertificate(b.Cert)
	k, kerr := pki.ParseKey(b.Key)
	if cerr != nil || kerr != nil || !pki.KeyMatches(k, c) {
		return Bundle{}, d.conflict(o, "tls.key no longer belongs to tls.crt")
	}
	b.CA = o.Bundle.CA // the shared copy: equal, as the hash says
	return b, nil
}

// leaf reads again the certificate a directory observation o parsed (its
// Cert), and refuses it (ErrConflict) unless tls.crt and ca.crt are still
// what was observed.
func (d *Directory) leaf(o *Observed) (*x509.Certificate, error) {
	b, err := d.reread(o, false)
	if err != nil {
		return nil, err
	}
	return pki.ParseCertificate(b.Cert)
}

// reread reads a directory observation's files again (tls.key only when
// key), refused (ErrConflict) unless tls.crt and ca.crt are still what was
// observed.
func (d *Directory) reread(o *Observed, key bool) (Bundle, error) {
	od, err := d.open(o.Target.Path, false)
	if err != nil {
		return Bundle{}, err
	}
	if od == nil {
		return Bundle{}, d.conflict(o, "the directory is gone")
	}
	defer od.Close()
	read := func(name string) []byte {
		data, rerr := od.dir.ReadFile(name)
		if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("reading %s: %w", filepath.Join(d.Path(*o.Target), name), rerr)
		}
		return data
	}
	b := Bundle{Cert: read("tls.crt"), CA: read("ca.crt")}
	if key {
		b.Key = read("tls.key")
	}
	if err != nil {
		return Bundle{}, err
	}
	if b.DataHash() != o.DataHash() {
		return Bundle{}, d.conflict(o, "tls.crt or ca.crt changed")
	}
	return b, nil
}

func (d *Directory) conflict(o *Observed, what string) error {
	return fmt.Errorf("directory %s: %s since it was observed: %w", d.Path(*o.Target), what, ErrConflict)
}

// Write swaps a new set of files in. A directory holding files certfleet
// did not write is refused unless d.Adopt is set.
func (d *Directory) Write(t render.Target, b Bundle, m Meta) error {
	od, err := d.open(t.Path, true)
	if err != nil {
		return err
	}
	defer od.Close()
	dir := od.dir
	st := inspect(dir)
	if !st.owned() && len(st.present) > 0 && !d.Adopt {
		return fmt.Errorf("directory %s holds %s (%w: no ..data link to a data directory of its own with its marks): refusing to overwrite them; to take the directory over, run with --adopt, or move the files away",
			d.Path(t), strings.Join(st.present, ", "), ErrNotOwned)
	}
	now := d.now()
	data, err := newDataDir(dir, now)
	if err != nil {
		return fmt.Errorf("directory %s: %w", d.Path(t), err)
	}
	fail := func(err error) error {
		dir.RemoveAll(data)
		return fmt.Errorf("directory %s: %w", d.Path(t), err)
	}
	meta := map[string]string{LabelManagedBy: ManagedByValue}
	for k, v := range m.Annotations(b) {
		meta[k] = v
	}
	metaJSON, _ := json.MarshalIndent(meta, "", "  ")
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"tls.crt", b.Cert, 0o644}, {"tls.key", b.Key, 0o600}, {"ca.crt", b.CA, 0o644}, {metaFile, metaJSON, 0o644},
	}
	for _, f := range files {
		if err := writeNew(dir, data+"/"+f.name, f.data, f.mode); err != nil {
			return fail(err)
		}
	}
	// The data directory was made 0700 so nobody reads it half written;
	// now it must be traversable, or the 0644 of tls.crt would mean nothing
	// to a server running as another user (the kubelet chmods it too).
	if err := syncChmod(dir, data, 0o755); err != nil {
		return fail(err)
	}
	// The swap: a new link, renamed over the old one (rename is atomic, and
	// replaces the link itself, never what it pointed at).
	if err := replaceLink(dir, data, dataLink); err != nil {
		return fail(err)
	}
	for _, name := range bundleFiles {
		if l, err := dir.Readlink(name); err == nil && l == dataLink+"/"+name {
			continue
		}
		// A first write, or a directory that held plain files: link them once,
		// renamed over the file so it is never missing.
		if err := replaceLink(dir, dataLink+"/"+name, name); err != nil {
			return fmt.Errorf("directory %s: %w", d.Path(t), err)
		}
	}
	if err := syncDir(dir, "."); err != nil {
		return fmt.Errorf("directory %s: %w", d.Path(t), err)
	}
	// The previous data directory, only when it was proven ours before the
	// swap and still is one of ours now.
	if st.data != "" && st.data != data && isDataDir(dir, st.data) {
		if err := dir.RemoveAll(st.data); err != nil {
			return fmt.Errorf("directory %s: removing the previous data directory %s: %w", d.Path(t), st.data, err)
		}
	}
	return removeStale(dir, data, now)
}

// removeStale removes what an interrupted write left: data directories
// ..data does not point at, and temporary links, older than staleAfter.
// Only entries matching certfleet's own patterns are touched.
func removeStale(dir *os.Root, current string, now time.Time) error {
	f, err := dir.Open(".")
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		if name == current {
			continue
		}
		fi, err := dir.Lstat(name)
		if err != nil || now.Sub(fi.ModTime()) < staleAfter {
			continue
		}
		switch {
		case dataDirName.MatchString(name) && fi.IsDir():
			if err := dir.RemoveAll(name); err != nil {
				return fmt.Errorf("removing the stale data directory %s: %w", name, err)
			}
		case tempLinkName.MatchString(name) && fi.Mode()&fs.ModeSymlink != 0:
			dir.Remove(name)
		}
	}
	return nil
}

// newDataDir makes a fresh data directory, 0700 until it is complete.
func newDataDir(dir *os.Root, now time.Time) (string, error) {
	prefix := ".." + now.UTC().Format("2006_01_02_15_04_05.")
	for range 100 {
		name := prefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
		err := dir.Mkdir(name, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, err
	}
	return "", fmt.Errorf("could not make a data directory named %s*: every try existed", prefix)
}

// writeNew creates a file that must not exist yet, with mode exactly (not
// reduced by the umask), and flushes it to disk.
func writeNew(dir *os.Root, name string, data []byte, mode os.FileMode) error {
	f, err := dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	// Chmod and Sync on the open file: no path is resolved again.
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncChmod sets a directory's mode through its open handle and flushes it.
func syncChmod(dir *os.Root, name string, mode os.FileMode) error {
	f, err := dir.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	return f.Sync()
}

func syncDir(dir *os.Root, name string) error {
	f, err := dir.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Sweep removes what an interrupted write left in a directory certfleet
// owns (stale data directories, temporary links) without writing anything
// else: a pass sweeps the directories it did not need to write, so a crash
// leaves no garbage behind even where the next write is months away.
func (d *Directory) Sweep(t render.Target) error {
	od, err := d.open(t.Path, false)
	if err != nil || od == nil {
		return err
	}
	defer od.Close()
	st := inspect(od.dir)
	if !st.owned() {
		return nil // not ours: nothing of it is touched
	}
	if err := removeStale(od.dir, st.data, d.now()); err != nil {
		return fmt.Errorf("directory %s: %w", d.Path(t), err)
	}
	return nil
}

// Delete removes what certfleet wrote; other files in the directory stay,
// and a directory whose files certfleet did not write is refused.
func (d *Directory) Delete(t render.Target) error {
	od, err := d.open(t.Path, false)
	if err != nil || od == nil {
		return err
	}
	defer od.Close()
	dir := od.dir
	st := inspect(dir)
	if len(st.present) > 0 && !st.owned() {
		return fmt.Errorf("directory %s holds %s, which certfleet did not write (%w): not deleting them; remove them by hand if they are no longer needed",
			d.Path(t), strings.Join(st.present, ", "), ErrTakenOver)
	}
	// tls.crt first: a crash midway leaves a key without its certificate,
	// never a certificate without its key.
	for _, name := range slices.Backward(bundleFiles) {
		// Only certfleet's links: a file someone put in their place stays.
		if l, err := dir.Readlink(name); err == nil && l == dataLink+"/"+name {
			if err := dir.Remove(name); err != nil {
				return fmt.Errorf("directory %s: %w", d.Path(t), err)
			}
		}
	}
	if st.data != "" {
		if err := dir.Remove(dataLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("directory %s: %w", d.Path(t), err)
		}
		if isDataDir(dir, st.data) {
			if err := dir.RemoveAll(st.data); err != nil {
				return fmt.Errorf("directory %s: %w", d.Path(t), err)
			}
		}
	}
	if err := removeStale(dir, "", d.now()); err != nil {
		return fmt.Errorf("directory %s: %w", d.Path(t), err)
	}
	od.root.Remove(od.rel) // only when empty
	return nil
}

// WriteFile writes one file of a directory target atomically: trust
// bundles are a single ca.crt. It is renameio's recipe (a temporary file,
// fsync, rename, fsync of the directory) done through the os.Root:
// renameio takes paths and resolves them afresh, so a symlinked parent
// could send it outside the root.
func (d *Directory) WriteFile(dir, name string, data []byte) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, "..") {
		return fmt.Errorf("directory target %q: file name %q must be one plain name, such as ca.crt", dir, name)
	}
	od, err := d.open(dir, true)
	if err != nil {
		return err
	}
	defer od.Close()
	where := filepath.Join(d.Path(render.Target{Address: render.Address{Path: dir}}), name)
	if _, err := od.dir.Lstat(dataLink); err == nil {
		return fmt.Errorf("writing %s: the directory is a certificate's directory (it holds ..data); a trust bundle cannot share it: give the trust bundle its own directory", where)
	}
	tmp := fmt.Sprintf("%s.tmp-%d-%d", name, os.Getpid(), rand.Uint64())
	if err := writeNew(od.dir, tmp, data, 0o644); err != nil {
		od.dir.Remove(tmp)
		return fmt.Errorf("writing %s: %w", where, err)
	}
	if err := od.dir.Rename(tmp, name); err != nil {
		od.dir.Remove(tmp)
		return fmt.Errorf("writing %s: %w", where, err)
	}
	if err := syncDir(od.dir, "."); err != nil {
		return fmt.Errorf("writing %s: %w", where, err)
	}
	return nil
}

// ReadFile reads back one file a WriteFile wrote, through the same root
// (a missing directory or file is fs.ErrNotExist).
func (d *Directory) ReadFile(dir, name string) ([]byte, error) {
	od, err := d.open(dir, false)
	if err != nil {
		return nil, err
	}
	if od == nil {
		return nil, fmt.Errorf("directory target %q: %w", dir, fs.ErrNotExist)
	}
	defer od.Close()
	return od.dir.ReadFile(name)
}

// replaceLink points name at target through a uniquely named temporary
// link renamed over it: atomic, and safe with another writer in the
// directory.
func replaceLink(dir *os.Root, target, name string) error {
	tmp := fmt.Sprintf("%s.tmp-%d-%d", name, os.Getpid(), time.Now().UnixNano())
	if err := dir.Symlink(target, tmp); err != nil {
		return err
	}
	if err := dir.Rename(tmp, name); err != nil {
		dir.Remove(tmp)
		return err
	}
	return nil
}
