package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// World is a Vault and some clusters started together, with a kubeconfig
// that has a context per cluster: what a package's TestMain needs to test a
// fleet.
type World struct {
	Vault      *Vault
	Clusters   []*Cluster
	Kubeconfig string
	dir        string
}

// StartWorld starts Vault and one cluster per name. Stop it with Stop.
func StartWorld(ctx context.Context, clusters ...string) (w *World, err error) {
	w = &World{}
	defer func() {
		if err != nil {
			w.Stop()
		}
	}()
	if w.Vault, err = StartVault(ctx); err != nil {
		return nil, err
	}
	for _, name := range clusters {
		c, err := StartCluster(ctx, name)
		if err != nil {
			return nil, err
		}
		w.Clusters = append(w.Clusters, c)
	}
	if w.dir, err = os.MkdirTemp("", "testbed-world-"); err != nil {
		return nil, err
	}
	w.Kubeconfig = filepath.Join(w.dir, "kubeconfig")
	if err := WriteKubeconfig(w.Kubeconfig, w.Clusters...); err != nil {
		return nil, err
	}
	return w, nil
}

// Stop stops everything the world started.
func (w *World) Stop() {
	for _, c := range w.Clusters {
		c.Stop()
	}
	if w.Vault != nil {
		w.Vault.Stop()
	}
	if w.dir != "" {
		os.RemoveAll(w.dir)
	}
}

// Main is a package's TestMain: it starts a World with the named clusters
// once, hands it to set, runs the tests, stops the World, removes a
// certfleet binary Certfleet built, and exits with the tests' code.
func Main(m *testing.M, set func(*World), clusters ...string) {
	w, err := StartWorld(context.Background(), clusters...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	set(w)
	code := m.Run()
	w.Stop()
	RemoveCertfleet()
	os.Exit(code)
}
