// Package scale measures certfleet at fleet size: the real binary, run as a
// child process so its peak resident memory is its own (getrusage), manages
// 100,000 certificates — rendered from a repository on disk, issued by the
// embedded local backend, delivered to directories, observed and recorded in
// the inventory — in a first pass and a no-op pass.
//
// `make bench` runs it when CERTFLEET_SCALE=1 (it takes minutes). The
// package has no code of its own: production code gets no test hooks.
package scale
