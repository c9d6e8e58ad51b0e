// Package faults holds certfleet's fault scenarios: tests that crash,
// starve and cut off the real certfleet binary on the real test bed (Vault,
// kube-apiserver + etcd, a Git server, a filesystem), count what survived,
// and print one table row per scenario with its bar.
//
// `make faults` runs the full sizes (CERTFLEET_FAULTS=full); `make test`
// runs the same code at reduced sizes, which fit CI's budget. The package
// has no code of its own: production code gets no test hooks.
package faults
