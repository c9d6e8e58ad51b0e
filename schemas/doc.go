// Package schemas is certfleet's contract: the certfleet.dev/v1alpha1 kinds,
// their decoding with positions, validation, policy evaluation, renewal math,
// spec hashes and the JSON Schema files generated from the Go types.
//
// It is pure: no network, no Terraform, no Kubernetes client. The Terraform
// provider and the reconciler both use it, so every rule is written once.
package schemas

//go:generate go run ./schemagen -root ..
