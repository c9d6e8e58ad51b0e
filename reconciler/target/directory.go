package target

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certfleet/certfleet/reconciler/render"
)

// Directory writes bundles into directories the way the kubelet writes
// projected volumes: the files live in a fresh hidden folder, and one
// symlink rename swaps the whole set, so a process that reloads on change
// never reads a new certificate with an old key.
//
//	<dir>/tls.crt -> ..data/tls.crt
//	<dir>/..data  -> ..2026_11_22_20_15_00.123456789
type Directory struct {
	// Root resolves relative target paths (the reconciler's --output-dir).
	Root string
}

const (
	dataLink = "..data"
	metaFile = ".certfleet.json"
)

var bundleFiles = []string{"tls.crt", "tls.key", "ca.crt", metaFile}

// Path is where a directory target is on disk.
func (d *Directory) Path(t render.Target) string {
	if filepath.IsAbs(t.Dir) {
		return t.Dir
	}
	return filepath.Join(d.Root, t.Dir)
}

// Observe reads one target.
func (d *Directory) Observe(t render.Target) (*Observed, error) {
	dir := d.Path(t)
	o := &Observed{Target: t}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return b, err
	}
	var err error
	if o.Bundle.Cert, err = read("tls.crt"); err != nil {
		return nil, err
	}
	if o.Bundle.Key, err = read("tls.key"); err != nil {
		return nil, err
	}
	if o.Bundle.CA, err = read("ca.crt"); err != nil {
		return nil, err
	}
	meta, err := read(metaFile)
	if err != nil {
		return nil, err
	}
	o.Exists = len(o.Bundle.Cert)+len(o.Bundle.Key)+len(o.Bundle.CA) > 0
	if len(meta) > 0 && json.Unmarshal(meta, &o.Annotations) == nil {
		o.Managed = o.Annotations[LabelManagedBy] == ManagedByValue
	}
	o.parse()
	return o, nil
}

// Write swaps a new set of files in.
func (d *Directory) Write(t render.Target, b Bundle, m Meta) error {
	dir := d.Path(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05.")+"*")
	if err != nil {
		return err
	}
	// MkdirTemp makes it 0700, which would hide tls.crt and ca.crt (0644)
	// from a server running as another user; tls.key stays 0600.
	if err := os.Chmod(data, 0o755); err != nil {
		os.RemoveAll(data)
		return err
	}
	meta := map[string]string{LabelManagedBy: ManagedByValue}
	for k, v := range m.Annotations(b) {
		meta[k] = v
	}
	metaJSON, _ := json.MarshalIndent(meta, "", "  ")
	files := map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"tls.crt": {b.Cert, 0o644}, "tls.key": {b.Key, 0o600}, "ca.crt": {b.CA, 0o644}, metaFile: {metaJSON, 0o644},
	}
	for name, f := range files {
		if err := os.WriteFile(filepath.Join(data, name), f.data, f.mode); err != nil {
			os.RemoveAll(data)
			return err
		}
		if err := os.Chmod(filepath.Join(data, name), f.mode); err != nil {
			os.RemoveAll(data)
			return err
		}
	}
	// The swap: a new link, renamed over the old one (rename is atomic).
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	if err := replaceLink(filepath.Base(data), filepath.Join(dir, dataLink)); err != nil {
		os.RemoveAll(data)
		return err
	}
	for _, name := range bundleFiles {
		p := filepath.Join(dir, name)
		if target, err := os.Readlink(p); err == nil && target == filepath.Join(dataLink, name) {
			continue
		}
		// A first write, or a directory that held plain files: link them once,
		// renamed over the file so it is never missing.
		if err := replaceLink(filepath.Join(dataLink, name), p); err != nil {
			return err
		}
	}
	if old != "" && old != filepath.Base(data) && strings.HasPrefix(old, "..") {
		os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// Delete removes what certfleet wrote; other files in the directory stay.
func (d *Directory) Delete(t render.Target) error {
	dir := d.Path(t)
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	for _, name := range append(bundleFiles, dataLink) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if strings.HasPrefix(old, "..") {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return err
		}
	}
	os.Remove(dir) // only when empty
	return nil
}

// WriteFile writes one file of a directory target atomically (a temporary
// file renamed over it): trust bundles are a single ca.crt.
func (d *Directory) WriteFile(dir, name string, data []byte) error {
	path := filepath.Join(d.Path(render.Target{Dir: dir}), name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// replaceLink points path at target through a uniquely named temporary link
// renamed over it: atomic, and safe with another writer in the directory.
func replaceLink(target, path string) error {
	tmp := fmt.Sprintf("%s.tmp-%d-%d", path, os.Getpid(), time.Now().UnixNano())
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
