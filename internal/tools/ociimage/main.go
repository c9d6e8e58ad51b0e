// Command ociimage builds certfleet's container image without a Docker
// engine or a base image to pull: one layer holding a static certfleet
// binary, the build machine's CA bundle and a non-root user, written as an
// OCI image layout (for `crane push`, `skopeo copy oci:…`) and a tarball
// (for `docker load`, `crane push`). `make image` runs it.
//
//	go run ./internal/tools/ociimage --binary bin/linux_amd64/certfleet \
//	    --version v0.1.0 --layout bin/image/oci --tarball bin/image/certfleet.tar
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image holds, and where. The user is distroless's "nonroot"
// (65532), the user examples/deploy and the chart run as.
const (
	DefaultRepository = "ghcr.io/certfleet/certfleet"
	BinaryPath        = "/usr/local/bin/certfleet"
	CABundlePath      = "/etc/ssl/certs/ca-certificates.crt"
	UID               = 65532
	User              = "65532:65532"
)

// Options says what to build the image from.
type Options struct {
	// Binary is a static linux certfleet binary for Arch.
	Binary string
	// CABundle is a PEM file of CA certificates (default: the build
	// machine's /etc/ssl/certs/ca-certificates.crt).
	CABundle string
	// Arch is the image's architecture (GOARCH names: amd64, arm64).
	Arch string
	// Repository and Version name the image: Repository:Version.
	Repository, Version string
	// Revision and Source become the OCI revision and source labels.
	Revision, Source string
	// Created is the image's and every file's time: a commit's time makes
	// the image reproducible (same inputs, same digest).
	Created time.Time
}

// elfMachine maps a GOARCH to the ELF machine of its binaries.
var elfMachine = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// checkBinary refuses a binary that cannot run on an empty base: not linux
// ELF for the image's architecture, or linked against a C library.
func checkBinary(file, arch string) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("--binary %s: not a linux executable (%v): build it with GOOS=linux CGO_ENABLED=0", file, err)
	}
	defer f.Close()
	want, ok := elfMachine[arch]
	if !ok {
		return fmt.Errorf("--arch %s: not one this tool knows (amd64, arm64, arm, ppc64le, s390x, riscv64)", arch)
	}
	if f.Machine != want {
		return fmt.Errorf("--binary %s: built for %s, but --arch is %s (%s): build it with GOARCH=%s", file, f.Machine, arch, want, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("--binary %s: dynamically linked (it asks for a program interpreter), and the image has no C library: build it with CGO_ENABLED=0", file)
		}
	}
	return nil
}

// file is one entry of the layer.
type file struct {
	name     string // without a leading slash
	mode     int64
	uid, gid int
	body     []byte // nil for a directory
}

// rootfs is the image's whole file system.
func rootfs(binary, caBundle []byte) []file {
	dir := func(n string, mode int64, uid int) file { return file{name: n, mode: mode, uid: uid, gid: uid} }
	reg := func(n string, mode int64, body []byte) file { return file{name: n, mode: mode, body: body} }
	return []file{
		dir("etc", 0o755, 0),
		reg("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\n"+
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")),
		reg("etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")),
		dir("etc/ssl", 0o755, 0),
		dir("etc/ssl/certs", 0o755, 0),
		reg(strings.TrimPrefix(CABundlePath, "/"), 0o644, caBundle),
		dir("home", 0o755, 0),
		dir("home/nonroot", 0o700, UID),
		// Where `certfleet serve` clones, outside Kubernetes too.
		dir("tmp", 0o1777, 0),
		dir("usr", 0o755, 0),
		dir("usr/local", 0o755, 0),
		dir("usr/local/bin", 0o755, 0),
		reg(strings.TrimPrefix(BinaryPath, "/"), 0o755, binary),
	}
}

func layerTar(files []file, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: mtime, Format: tar.FormatPAX}
		if f.body == nil {
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Build makes the image.
func Build(o Options) (v1.Image, error) {
	if err := checkBinary(o.Binary, o.Arch); err != nil {
		return nil, err
	}
	binary, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(o.CABundle)
	if err != nil {
		return nil, fmt.Errorf("--ca-bundle: %w (install Debian's ca-certificates, or name a PEM bundle)", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("--ca-bundle %s: no PEM certificate in it; want a bundle like %s", o.CABundle, CABundlePath)
	}
	if o.Version == "" {
		return nil, errors.New("--version is empty; want the release's version, e.g. v0.1.0")
	}
	created := o.Created.UTC().Truncate(time.Second)
	tarBytes, err := layerTar(rootfs(binary, ca), created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "certfleet internal/tools/ociimage", Comment: "certfleet " + o.Version,
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	if o.Arch == "arm" {
		cf.Variant = "v7"
	}
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		User:       User,
		WorkingDir: "/home/nonroot",
		Env: []string{
			"PATH=/usr/local/bin",
			"HOME=/home/nonroot",
			"SSL_CERT_FILE=" + CABundlePath,
		},
		Labels: Labels(o, created),
	}
	return mutate.ConfigFile(img, cf)
}

// Labels are the org.opencontainers.image.* annotations the image carries.
func Labels(o Options, created time.Time) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "certfleet",
		"org.opencontainers.image.description": "Declares, issues, delivers, renews and watches a fleet's TLS certificates from Git and Vault",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
		"org.opencontainers.image.ref.name":    o.Version,
	}
	if o.Source != "" {
		l["org.opencontainers.image.source"] = o.Source
		l["org.opencontainers.image.url"] = o.Source
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

// Write puts the image in an OCI layout directory (replacing what was there)
// and, if tarballPath is set, a tarball tagged ref.
func Write(img v1.Image, ref name.Tag, layoutDir, tarballPath string) error {
	if layoutDir != "" {
		if err := os.RemoveAll(layoutDir); err != nil {
			return err
		}
		p, err := layout.Write(layoutDir, empty.Index)
		if err != nil {
			return err
		}
		// The name a tool like skopeo or crane shows for the image.
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": ref.Name(),
		})); err != nil {
			return err
		}
	}
	if tarballPath != "" {
		if err := os.MkdirAll(path.Dir(tarballPath), 0o755); err != nil {
			return err
		}
		if err := tarball.WriteToFile(tarballPath, ref, img); err != nil {
			return err
		}
	}
	return nil
}

// createdTime is SOURCE_DATE_EPOCH (the reproducible-builds convention) when
// set, else now.
func createdTime() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970 (git log -1 --format=%%ct)", s)
	}
	return time.Unix(sec, 0), nil
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	var o Options
	var layoutDir, tarballPath string
	fs.StringVar(&o.Binary, "binary", "", "a static linux certfleet binary (required)")
	fs.StringVar(&o.Arch, "arch", "amd64", "the binary's and the image's architecture (a GOARCH)")
	fs.StringVar(&o.CABundle, "ca-bundle", CABundlePath, "PEM bundle of CA certificates to put at "+CABundlePath)
	fs.StringVar(&o.Repository, "repository", DefaultRepository, "the image's repository")
	fs.StringVar(&o.Version, "version", "", "the image's tag and version label (required)")
	fs.StringVar(&o.Revision, "revision", "", "the source revision label (a commit)")
	fs.StringVar(&o.Source, "source", "https://github.com/certfleet/certfleet", "the source and url labels")
	fs.StringVar(&layoutDir, "layout", "", "write an OCI image layout to this directory")
	fs.StringVar(&tarballPath, "tarball", "", "write a tarball (docker load, crane push) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Binary == "" || (layoutDir == "" && tarballPath == "") {
		return errors.New("want --binary and at least one of --layout and --tarball")
	}
	var err error
	if o.Created, err = createdTime(); err != nil {
		return err
	}
	ref, err := name.NewTag(o.Repository + ":" + o.Version)
	if err != nil {
		return fmt.Errorf("--repository %q with --version %q is no image name: %w", o.Repository, o.Version, err)
	}
	img, err := Build(o)
	if err != nil {
		return err
	}
	if err := Write(img, ref, layoutDir, tarballPath); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	size, err := compressedSize(img)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s@%s linux/%s, %.1f MB compressed\n", ref.Name(), digest, o.Arch, float64(size)/1e6)
	return nil
}

// compressedSize is what a registry stores and a node pulls.
func compressedSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}
