package testbed

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed versions.env
var versionsEnv string

// versions maps a part's name to its pinned version, read from the same file
// build.sh sources.
var versions = parseVersions(versionsEnv)

func parseVersions(s string) map[string]string {
	keys := map[string]string{
		"TERRAFORM_VERSION":           "terraform",
		"TOFU_VERSION":                "tofu",
		"VAULT_VERSION":               "vault",
		"KUBE_VERSION":                "kube-apiserver",
		"ETCD_VERSION":                "etcd",
		"PROMTOOL_VERSION":            "promtool",
		"GORELEASER_VERSION":          "goreleaser",
		"HELM_VERSION":                "helm",
		"PEBBLE_VERSION":              "pebble",
		"PEBBLE_CHALLTESTSRV_VERSION": "pebble-challtestsrv",
	}
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if name, known := keys[k]; ok && known {
			out[name] = v
		}
	}
	return out
}

// Version returns the pinned version of a part ("vault", "terraform", …).
func Version(name string) string { return versions[name] }

// CacheDir is where build.sh puts the binaries: $CERTFLEET_TESTBED_CACHE, or
// certfleet/testbed under the user's cache directory.
func CacheDir() (string, error) {
	if dir := os.Getenv("CERTFLEET_TESTBED_CACHE"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the test bed cache: %w (set CERTFLEET_TESTBED_CACHE)", err)
	}
	return filepath.Join(base, "certfleet", "testbed"), nil
}

// Binary returns the path of a part's binary in the cache, or an error that
// says how to build it.
func Binary(name string) (string, error) {
	v, ok := versions[name]
	if !ok {
		return "", fmt.Errorf("testbed: no part named %q", name)
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+"-"+v, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("testbed: %s %s is not built (%s missing): run `make testbed`", name, v, path)
	}
	return path, nil
}
