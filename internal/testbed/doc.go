// Package testbed starts the real servers certfleet's tests run against, on
// 127.0.0.1: a Vault dev server with the PKI engine, Kubernetes API servers each
// on its own etcd, a Git server over smart HTTP, and the terraform and OpenTofu
// command lines for terraform-plugin-testing.
//
// The binaries are built once by build.sh (`make testbed`) into a cache keyed
// by version; this package only finds and starts them. Every server runs in its
// own process group and is stopped with it, so a test never leaves an orphan.
//
// Tests start what they need with the New* helpers, which stop the server in
// t.Cleanup, or with the Start* functions and an explicit Stop in TestMain.
package testbed
