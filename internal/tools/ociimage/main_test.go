package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// staticCertfleet builds this module's certfleet as `make image` does:
// static, for linux on this machine's architecture, with a version set.
func staticCertfleet(t *testing.T, version string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "certfleet")
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/certfleet/certfleet/internal/version.Version="+version,
		"-o", out, "github.com/certfleet/certfleet")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// entry is one file of a layer.
type entry struct {
	*tar.Header
	body string
}

// layerFiles reads every file of the image's only layer.
func layerFiles(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v); want 1", len(layers), err)
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type %s; want %s", mt, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.TrimSuffix(h.Name, "/")] = entry{h, string(body)}
	}
}

// TestImageRunsCertfleetAsNonRoot builds the image as `make image` does,
// opens the OCI layout and the tarball it wrote, checks what a runtime reads
// (entry point, user, platform, labels) and runs the binary taken out of the
// layer.
func TestImageRunsCertfleetAsNonRoot(t *testing.T) {
	const version = "v0.0.0-imagetest"
	bin := staticCertfleet(t, version)
	dir := t.TempDir()
	layoutDir, tarPath := filepath.Join(dir, "oci"), filepath.Join(dir, "image.tar")
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01
	var stdout bytes.Buffer
	err := run([]string{"--binary", bin, "--arch", runtime.GOARCH, "--version", version, "--revision", "0123abc",
		"--layout", layoutDir, "--tarball", tarPath}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", stdout.String())

	p, err := layout.FromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("the layout holds %d manifests; want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	wantRef := DefaultRepository + ":" + version
	if desc.MediaType != types.OCIManifestSchema1 || desc.Annotations["org.opencontainers.image.ref.name"] != wantRef {
		t.Errorf("layout manifest %s named %q; want an OCI manifest named %s", desc.MediaType, desc.Annotations["org.opencontainers.image.ref.name"], wantRef)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s; want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{BinaryPath}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q; want [%s] and no cmd, so `docker run IMAGE serve …` runs certfleet serve", cf.Config.Entrypoint, cf.Config.Cmd, BinaryPath)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q; want 65532:65532 (non-root, as examples/deploy runs it)", cf.Config.User)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    "certfleet",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": "0123abc",
		"org.opencontainers.image.created":  "2026-01-01T00:00:00Z",
		"org.opencontainers.image.source":   "https://github.com/certfleet/certfleet",
	}
	for k, v := range wantLabels {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q; want %q", k, cf.Config.Labels[k], v)
		}
	}
	if !cf.Created.Time.Equal(time.Unix(1767225600, 0)) {
		t.Errorf("created %s; want SOURCE_DATE_EPOCH", cf.Created.Time)
	}

	files := layerFiles(t, img)
	for path, want := range map[string]struct {
		mode     int64
		uid      int
		typeflag byte
	}{
		BinaryPath:      {0o755, 0, tar.TypeReg},
		CABundlePath:    {0o644, 0, tar.TypeReg},
		"/etc/passwd":   {0o644, 0, tar.TypeReg},
		"/home/nonroot": {0o700, UID, tar.TypeDir},
		"/tmp":          {0o1777, 0, tar.TypeDir},
	} {
		h, ok := files[path]
		if !ok {
			t.Errorf("the image has no %s", path)
			continue
		}
		if h.Mode != want.mode || h.Uid != want.uid || h.Typeflag != want.typeflag {
			t.Errorf("%s: mode %o uid %d type %c; want %o, %d, %c", path, h.Mode, h.Uid, h.Typeflag, want.mode, want.uid, want.typeflag)
		}
	}
	if h, ok := files["/etc/passwd"]; ok && !strings.Contains(h.body, "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532:\n%s", h.body)
	}
	if h, ok := files[CABundlePath]; ok {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(h.body)) {
			t.Errorf("%s holds no certificate", CABundlePath)
		}
	}

	// The binary that came out of the layer runs, and is the one built.
	if h, ok := files[BinaryPath]; ok {
		extracted := filepath.Join(t.TempDir(), "certfleet")
		if err := os.WriteFile(extracted, []byte(h.body), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(extracted, "version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "certfleet "+version {
			t.Errorf("certfleet version from the image: %q (%v); want %q", out, err, "certfleet "+version)
		}
	}

	// The tarball holds the same image under its tag, for docker load.
	tag, err := name.NewTag(wantRef)
	if err != nil {
		t.Fatal(err)
	}
	fromTar, err := tarball.ImageFromPath(tarPath, &tag)
	if err != nil {
		t.Fatalf("the tarball has no %s: %v", wantRef, err)
	}
	// A docker tarball keeps the config and layers, not the manifest: the
	// config's digest is the image's ID.
	c1, _ := img.ConfigName()
	c2, err := fromTar.ConfigName()
	if err != nil || c1 != c2 {
		t.Errorf("tarball image config %s (%v); layout's %s", c2, err, c1)
	}

	// Same inputs, same image: a rebuild is byte for byte the same.
	again := filepath.Join(dir, "again")
	if err := run([]string{"--binary", bin, "--arch", runtime.GOARCH, "--version", version, "--revision", "0123abc", "--layout", again}, io.Discard); err != nil {
		t.Fatal(err)
	}
	p2, _ := layout.FromPath(again)
	idx2, _ := p2.ImageIndex()
	im2, err := idx2.IndexManifest()
	if err != nil || len(im2.Manifests) != 1 || im2.Manifests[0].Digest != desc.Digest {
		t.Errorf("a rebuild from the same inputs gave %v (%v); want digest %s", im2, err, desc.Digest)
	}
}

func TestImageRefusesABinaryThatCannotRunThere(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "certfleet.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	sh, _ = filepath.EvalSymlinks(sh)
	for _, c := range []struct {
		name, binary, arch, want string
	}{
		{"a script is not an executable", script, runtime.GOARCH, "not a linux executable"},
		// Debian's sh is linked against the C library.
		{"a dynamically linked binary has no C library to load", sh, runtime.GOARCH, "CGO_ENABLED=0"},
		{"a binary for another architecture", sh, otherArch, "GOARCH=" + otherArch},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := run([]string{"--binary", c.binary, "--arch", c.arch, "--version", "v1", "--layout", filepath.Join(dir, "oci")}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.binary) {
				t.Errorf("got %v; want an error naming %s and saying %q", err, c.binary, c.want)
			}
		})
	}
}
