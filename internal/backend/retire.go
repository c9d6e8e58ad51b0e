package backend

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// IssuerRetirer is a backend that keeps the issuers a rotation replaced
// and can tidy them once nothing chains to them any more (Vault). The
// local backend keeps its previous CAs until they expire.
type IssuerRetirer interface {
	// RetireIssuer tidies previous issuer id of authority a per mode
	// (schemas.AuthoritySpec.RetirePreviousIssuer) and says what it did
	// ("" when nothing was left to do). It never touches the default issuer.
	RetireIssuer(ctx context.Context, a *schemas.Authority, id string, mode schemas.RetireMode, now time.Time) (string, error)
}

// crlOnly is the usage a disabled issuer keeps: it issues nothing any
// more, by default or by explicit reference, and keeps signing its CRL, on
// which the serials it signed that were revoked stay published.
const crlOnly = "read-only,crl-signing"

// RetireIssuer: disable reduces the issuer's usage to crlOnly; delete
// deletes it and its key, unless a certificate it signed is revoked and
// not yet expired — deleting it would move that serial onto the default
// issuer's CRL, which relying parties that still trust the old CA do not
// read — in which case it is disabled and deleted by a later pass, once
// those have expired. keep does nothing.
func (v *Vault) RetireIssuer(ctx context.Context, a *schemas.Authority, id string, mode schemas.RetireMode, now time.Time) (string, error) {
	if mode == schemas.RetireKeep || mode == "" {
		return "", nil
	}
	mount := a.Spec.Mount
	cfg, err := v.read(ctx, mount+"/config/issuers")
	if err != nil {
		return "", err
	}
	if def, _ := cfg["default"].(string); def == id || id == a.Status.IssuerID {
		return "", fmt.Errorf("issuer %s is the default of %s: refusing to retire it", id, mount)
	}
	path := mount + "/issuer/" + id
	data, err := v.read(ctx, path)
	if errors.Is(err, ErrNotFound) {
		return "", nil // tidied already
	}
	if err != nil {
		return "", err
	}
	var waiting string
	if mode == schemas.RetireDelete {
		if waiting, err = v.revokedUnexpired(ctx, mount, id, now); err != nil {
			return "", err
		}
		if waiting == "" {
			if _, err := v.client.Logical().DeleteWithContext(ctx, path); err != nil {
				return "", fmt.Errorf("vault %s: %w", path, err)
			}
			// The key signed only this issuer's certificates: a retired CA's
			// private key is a liability, not a backup.
			if key, _ := data["key_id"].(string); key != "" {
				if _, err := v.client.Logical().DeleteWithContext(ctx, mount+"/key/"+key); err != nil {
					return "", fmt.Errorf("deleted issuer %s, but not its key %s: %w", id, key, err)
				}
			}
			return fmt.Sprintf("deleted issuer %s and its key from %s", id, mount), nil
		}
	}
	if usage, _ := data["usage"].(string); usage == "crl-signing,read-only" || usage == crlOnly {
		return "", nil
	}
	if _, err := v.client.Logical().JSONMergePatch(ctx, path, map[string]any{"usage": crlOnly}); err != nil {
		return "", fmt.Errorf("vault %s: %w", path, err)
	}
	if waiting != "" {
		return fmt.Sprintf("disabled issuer %s of %s (usage %s); it is deleted once %s", id, mount, crlOnly, waiting), nil
	}
	return fmt.Sprintf("disabled issuer %s of %s (usage %s)", id, mount, crlOnly), nil
}

// revokedUnexpired says which serial on issuer id's CRL is still within
// its validity, and until when ("" when none is).
func (v *Vault) revokedUnexpired(ctx context.Context, mount, id string, now time.Time) (string, error) {
	issuerPath := mount + "/issuer/" + id
	data, err := v.read(ctx, issuerPath+"/crl")
	if err != nil {
		return "", err
	}
	raw, _ := data["crl"].(string)
	block, _ := pem.Decode([]byte(raw))
	if block == nil {
		return "", fmt.Errorf("vault %s/crl: no CRL in the response", issuerPath)
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("vault %s/crl: %w", issuerPath, err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		serial := pki.Serial(e.SerialNumber)
		cert, err := v.read(ctx, mount+"/cert/"+serial)
		if errors.Is(err, ErrNotFound) {
			continue // tidied from Vault's storage: expired
		}
		if err != nil {
			return "", err
		}
		pemCert, _ := cert["certificate"].(string)
		c, err := pki.ParseCertificate([]byte(pemCert))
		if err != nil {
			return "", fmt.Errorf("vault %s/cert/%s: %w", mount, serial, err)
		}
		if now.Before(c.NotAfter) {
			return fmt.Sprintf("revoked serial %s expires (%s)", serial, c.NotAfter.UTC().Format(time.RFC3339)), nil
		}
	}
	return "", nil
}

// RefreshAuthority records in the catalog the authority's status as the
// backend reads it now: after a previous issuer was deleted, the catalog
// stops naming it (and the rotation ends).
func RefreshAuthority(ctx context.Context, b Backend, a *schemas.Authority) error {
	st, err := b.ReadAuthority(ctx, a)
	if err != nil {
		return fmt.Errorf("reading authority %q: %w", a.Metadata.Name, err)
	}
	refreshed := *a
	refreshed.Status = st
	return PutObject(ctx, b, &refreshed)
}
