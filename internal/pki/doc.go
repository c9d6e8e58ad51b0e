// Package pki holds the certificate mechanics both halves of certfleet need:
// generating private keys in their encodings, certificate signing requests,
// parsing PEM bundles, checking that a key matches a certificate, and a
// small certificate authority for the local backend.
package pki
