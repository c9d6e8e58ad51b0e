package testbed

import (
	"os"
	"path/filepath"
	"testing"
)

// CLI is a Terraform-compatible command line from the test bed.
type CLI struct {
	// Name is "terraform" or "tofu".
	Name string
	// Path is the binary's absolute path.
	Path string
	// Version is its pinned version.
	Version string
}

// CLIs returns the pinned terraform and OpenTofu command lines, in that order.
func CLIs() ([]CLI, error) {
	var out []CLI
	for _, name := range []string{"terraform", "tofu"} {
		p, err := Binary(name)
		if err != nil {
			return nil, err
		}
		out = append(out, CLI{Name: name, Path: p, Version: Version(name)})
	}
	return out, nil
}

// MustCLIs is CLIs for tests: a missing binary fails the test.
func MustCLIs(t testing.TB) []CLI {
	t.Helper()
	clis, err := CLIs()
	if err != nil {
		t.Fatal(err)
	}
	return clis
}

// Setenv points terraform-plugin-testing at this CLI for the rest of the test:
// TF_ACC_TERRAFORM_PATH (so nothing is looked up on PATH or downloaded), a
// HOME and an empty CLI configuration of the test's own, and for OpenTofu the
// registry host the provider address is resolved against.
func (c CLI) Setenv(t testing.TB) {
	t.Helper()
	home := t.TempDir()
	rc := filepath.Join(home, "cli.tfrc")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_ACC", "1")
	t.Setenv("TF_ACC_TERRAFORM_PATH", c.Path)
	t.Setenv("HOME", home)
	t.Setenv("TF_CLI_CONFIG_FILE", rc)
	t.Setenv("CHECKPOINT_DISABLE", "1")
	if c.Name == "tofu" {
		t.Setenv("TF_ACC_PROVIDER_HOST", "registry.opentofu.org")
	}
}

// Env returns an environment for running this CLI by hand in dir: the current
// environment with HOME set to dir and the CLI configuration file cliConfig.
func (c CLI) Env(home, cliConfig string) []string {
	return append(os.Environ(), "HOME="+home, "TF_CLI_CONFIG_FILE="+cliConfig,
		"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
}
