package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// GenerateKey makes a private key: algorithm RSA, ECDSA or Ed25519 (the
// schemas names), size in bits for RSA or the curve size for ECDSA.
func GenerateKey(algorithm string, size int) (crypto.Signer, error) {
	switch algorithm {
	case "RSA", "rsa":
		if size == 0 {
			size = 2048
		}
		if size < 2048 {
			return nil, fmt.Errorf("RSA key size %d is below 2048", size)
		}
		return rsa.GenerateKey(rand.Reader, size)
	case "ECDSA", "ec", "":
		curve, err := curveOf(size)
		if err != nil {
			return nil, err
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case "Ed25519", "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key algorithm %q", algorithm)
}

func curveOf(size int) (elliptic.Curve, error) {
	switch size {
	case 0, 256:
		return elliptic.P256(), nil
	case 384:
		return elliptic.P384(), nil
	case 521:
		return elliptic.P521(), nil
	}
	return nil, fmt.Errorf("no ECDSA curve of size %d", size)
}

// EncodeKey writes a private key as PEM: PKCS1 for RSA and SEC1 for ECDSA
// when encoding is "PKCS1" (cert-manager's default), PKCS8 otherwise and
// always for Ed25519.
func EncodeKey(key crypto.Signer, encoding string) ([]byte, error) {
	if encoding == "PKCS1" {
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
		case *ecdsa.PrivateKey:
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				return nil, err
			}
			return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads a PEM private key in any of the encodings EncodeKey writes.
func ParseKey(pemBytes []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("no PEM block in the private key")
	}
	var (
		k   any
		err error
	)
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		// Never echo key material: say only which block failed.
		return nil, fmt.Errorf("parsing the %s block: invalid key", b.Type)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

// KeyAlgorithm returns the schemas name and size of a public key.
func KeyAlgorithm(pub crypto.PublicKey) (string, int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 0
	}
	return "unknown", 0
}

// KeyMatches reports whether a private key belongs to a certificate.
func KeyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	return ok && pub.Equal(cert.PublicKey)
}
