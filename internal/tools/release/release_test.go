// Package release_test builds the provider's release with GoReleaser from
// .goreleaser.yml, for this machine's platform only, and installs it the way
// users do: terraform init and tofu init from a filesystem mirror.
package release_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/internal/testbed"
)

const name = "terraform-provider-certfleet"

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func run(t *testing.T, dir string, env []string, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// hostOnly is .goreleaser.yml cut to this machine's platform, with dist in
// dir: the archives, checksums and signature of every platform are made
// the same way, and one platform keeps the test to seconds.
func hostOnly(t *testing.T, root, dir string) (config, dist string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".goreleaser.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	builds, _ := cfg["builds"].([]any)
	if len(builds) != 1 {
		t.Fatalf(".goreleaser.yml has %d builds; want 1", len(builds))
	}
	build := builds[0].(map[string]any)
	for _, want := range [][2]string{{"goos", runtime.GOOS}, {"goarch", runtime.GOARCH}} {
		if !strings.Contains(fmt.Sprint(build[want[0]]), want[1]) {
			t.Fatalf(".goreleaser.yml builds %s %v, without this machine's %s", want[0], build[want[0]], want[1])
		}
	}
	build["goos"], build["goarch"] = []string{runtime.GOOS}, []string{runtime.GOARCH}
	delete(build, "ignore")
	dist = filepath.Join(dir, "dist")
	cfg["dist"] = dist
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(dir, "goreleaser.yml")
	if err := os.WriteFile(config, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return config, dist
}

// signingKey makes a throwaway key in a GNUPGHOME of the test's own and
// returns the environment gpg signs with, the key's fingerprint and its
// public key ring.
func signingKey(t *testing.T) (env []string, fingerprint string, public openpgp.EntityList) {
	t.Helper()
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Fatalf("gpg, which signs releases, is not installed (Debian: apt-get install gnupg; .ci/run installs it): %v", err)
	}
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	env = append(os.Environ(), "GNUPGHOME="+home)
	t.Cleanup(func() {
		// gpg started an agent for this home: stop it, then remove the home.
		kill := exec.Command("gpgconf", "--kill", "gpg-agent")
		kill.Env = env
		_ = kill.Run()
		os.RemoveAll(home)
	})
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, home, env, gpg, "--batch", "--passphrase", "", "--quick-generate-key", "certfleet release test <release-test@certfleet.invalid>", "ed25519", "sign", "1d")
	colons := run(t, home, env, gpg, "--batch", "--with-colons", "--list-secret-keys")
	for _, line := range strings.Split(colons, "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			fingerprint = f[9]
			break
		}
	}
	if fingerprint == "" {
		t.Fatalf("no fingerprint in gpg's key list:\n%s", colons)
	}
	exported := run(t, home, env, gpg, "--batch", "--export", fingerprint)
	public, err = openpgp.ReadKeyRing(strings.NewReader(exported))
	if err != nil {
		t.Fatalf("reading the exported public key: %v", err)
	}
	return env, fingerprint, public
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestProviderReleaseInstallsWithTerraformInit builds a snapshot release with
// GoReleaser, checks its registry layout, checksums and signature, lays the
// archive out as a filesystem mirror and runs a plain `init` (no
// dev_overrides) and a `plan` against the test bed's Vault with terraform
// and OpenTofu.
func TestProviderReleaseInstallsWithTerraformInit(t *testing.T) {
	goreleaser, err := testbed.Binary("goreleaser")
	if err != nil {
		t.Fatal(err)
	}
	clis := testbed.MustCLIs(t)
	root := moduleRoot(t)
	run(t, root, os.Environ(), goreleaser, "check")

	dir := t.TempDir()
	config, dist := hostOnly(t, root, dir)
	env, fingerprint, public := signingKey(t)
	run(t, root, append(env, "GPG_FINGERPRINT="+fingerprint), goreleaser,
		"release", "--snapshot", "--clean", "--config", config)

	var meta struct {
		Version string `json:"version"`
	}
	b, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil || meta.Version == "" {
		t.Fatalf("dist/metadata.json: %v, version %q", err, meta.Version)
	}
	version := meta.Version
	archive := fmt.Sprintf("%s_%s_%s_%s.zip", name, version, runtime.GOOS, runtime.GOARCH)
	sums := fmt.Sprintf("%s_%s_SHA256SUMS", name, version)
	for _, f := range []string{archive, sums, sums + ".sig"} {
		if _, err := os.Stat(filepath.Join(dist, f)); err != nil {
			t.Fatalf("the release has no %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dist, archive)); err == nil {
		t.Logf("%s: %.1f MB", archive, float64(fi.Size())/1e6)
	}

	// The zip holds the provider alone, named as Terraform looks for it.
	zr, err := zip.OpenReader(filepath.Join(dist, archive))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	zr.Close()
	if want := name + "_v" + version; len(names) != 1 || names[0] != want {
		t.Errorf("%s holds %q; want only %s", archive, names, want)
	}

	// SHA256SUMS covers the archive and the registry manifest, which
	// declares protocol 6 (the provider serves tfprotov6).
	sumsText, err := os.ReadFile(filepath.Join(dist, sums))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sumsText)), "\n") {
		if sum, file, ok := strings.Cut(line, "  "); ok {
			listed[file] = sum
		}
	}
	// Exactly the archive and the manifest: a line for the signature would
	// be written after signing and break it.
	if len(listed) != 2 {
		t.Errorf("SHA256SUMS lists %d files; want the archive and the manifest:\n%s", len(listed), sumsText)
	}
	if got, want := listed[archive], sha256File(t, filepath.Join(dist, archive)); got != want {
		t.Errorf("SHA256SUMS lists %s as %q; its sha256 is %s", archive, got, want)
	}
	manifest := filepath.Join(root, "terraform-registry-manifest.json")
	if got, want := listed[fmt.Sprintf("%s_%s_manifest.json", name, version)], sha256File(t, manifest); got != want {
		t.Errorf("SHA256SUMS lists the manifest as %q; terraform-registry-manifest.json's sha256 is %s", got, want)
	}
	var rm struct {
		Version  int `json:"version"`
		Metadata struct {
			ProtocolVersions []string `json:"protocol_versions"`
		} `json:"metadata"`
	}
	if b, err := os.ReadFile(manifest); err != nil || json.Unmarshal(b, &rm) != nil ||
		rm.Version != 1 || fmt.Sprint(rm.Metadata.ProtocolVersions) != "[6.0]" {
		t.Errorf("terraform-registry-manifest.json: %+v (%v); want version 1, protocol_versions [6.0]", rm, err)
	}

	// The detached signature verifies, with another OpenPGP implementation
	// than the one that made it, as the registry verifies it.
	sig, err := os.ReadFile(filepath.Join(dist, sums+".sig"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckDetachedSignature(public, bytes.NewReader(sumsText), bytes.NewReader(sig), nil); err != nil {
		t.Errorf("%s.sig does not verify against the signing key: %v", sums, err)
	}
	tampered := bytes.Replace(sumsText, []byte(version), []byte(version+"x"), 1)
	if _, err := openpgp.CheckDetachedSignature(public, bytes.NewReader(tampered), bytes.NewReader(sig), nil); err == nil {
		t.Error("the signature verifies a changed SHA256SUMS too")
	}

	// A filesystem mirror in the packed layout, under the hostnames
	// terraform and tofu resolve certfleet/certfleet to.
	mirror := filepath.Join(dir, "mirror")
	for _, host := range []string{"registry.terraform.io", "registry.opentofu.org"} {
		d := filepath.Join(mirror, host, "certfleet", "certfleet")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, filepath.Join(dist, archive), filepath.Join(d, archive))
	}
	vault := testbed.NewVault(t)
	zh := "zh:" + listed[archive]
	for _, cli := range clis {
		t.Run(cli.Name, func(t *testing.T) {
			home := t.TempDir()
			rc := filepath.Join(home, "cli.tfrc")
			writeFile(t, rc, fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/certfleet/certfleet", "registry.opentofu.org/certfleet/certfleet"]
  }
}
`, mirror))
			work := filepath.Join(home, "work")
			writeFile(t, filepath.Join(work, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    certfleet = {
      source  = "certfleet/certfleet"
      version = %q
    }
  }
}

provider "certfleet" {
  backend = "vault"
  vault {
    address = %q
  }
}

data "certfleet_catalog" "all" {}

output "issuers" {
  value = data.certfleet_catalog.all.issuers
}
`, version, vault.Addr))
			host := "registry.terraform.io"
			if cli.Name == "tofu" {
				host = "registry.opentofu.org"
			}
			// A lock file holding only SHA256SUMS's checksum, as one made
			// from the registry would: init installs the archive only if its
			// checksum is one of these.
			lock := func(hash string) {
				writeFile(t, filepath.Join(work, ".terraform.lock.hcl"), fmt.Sprintf(`provider "%s/certfleet/certfleet" {
  version     = %q
  constraints = %q
  hashes = [
    %q,
  ]
}
`, host, version, version, hash))
			}
			cliEnv := append(cli.Env(home, rc), "VAULT_TOKEN="+vault.Token)

			lock("zh:" + strings.Repeat("0", 64))
			cmd := exec.Command(cli.Path, "init", "-input=false", "-no-color")
			cmd.Dir, cmd.Env = work, cliEnv
			if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "checksum") {
				t.Errorf("init with a lock file of another checksum: %v; want a checksum mismatch\n%s", err, out)
			}
			os.RemoveAll(filepath.Join(work, ".terraform"))

			lock(zh)
			out := run(t, work, cliEnv, cli.Path, "init", "-input=false", "-no-color")
			if !strings.Contains(out, "Installed certfleet/certfleet v"+version) {
				t.Errorf("init did not install certfleet/certfleet v%s from the mirror:\n%s", version, out)
			}
			lockText, err := os.ReadFile(filepath.Join(work, ".terraform.lock.hcl"))
			if err != nil || !strings.Contains(string(lockText), zh) || !strings.Contains(string(lockText), `"h1:`) {
				t.Errorf("the lock file after init keeps %s and adds the installed package's h1: hash; got\n%s", zh, lockText)
			}
			out = run(t, work, cliEnv, cli.Path, "plan", "-input=false", "-no-color")
			if !strings.Contains(out, "issuers") {
				t.Errorf("plan against Vault shows no issuers output:\n%s", out)
			}
		})
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
