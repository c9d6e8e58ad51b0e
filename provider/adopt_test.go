package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// legacyPKI makes a PKI mount and a role the way a user of
// terraform-provider-vault (or of the vault CLI) would have: on Vault through
// Vault's API, with nothing in certfleet's catalog; on the local backend
// through the backend's own PKI calls, as if the catalog had been lost. It
// returns the CA certificate's serial.
func (e *accEnv) legacyPKI(t *testing.T, mount, role string) string {
	t.Helper()
	ctx := context.Background()
	if e.kind == "local" {
		a := &schemas.Authority{Metadata: schemas.ObjectMeta{Name: mount}, Spec: schemas.AuthoritySpec{
			Type: schemas.AuthorityRoot, Mount: mount, CommonName: "Legacy Root", KeyType: "ec", KeyBits: 256, TTL: "8760h"}}
		st, err := e.backend.CreateAuthority(ctx, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		iss := &schemas.Issuer{Metadata: schemas.ObjectMeta{Name: role}, Spec: schemas.IssuerSpec{
			Authority: mount, AllowedDomains: []string{"legacy.test"}, AllowSubdomains: true, KeyType: "ec", MaxTTL: "720h",
			AllowIPSANs: true, AllowWildcardCertificates: true}}
		if err := e.backend.PutRole(ctx, iss, a); err != nil {
			t.Fatal(err)
		}
		return st.SerialNumber
	}
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: vaultServer.Addr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(vaultServer.Token)
	if err := c.Sys().Mount(mount, &vaultapi.MountInput{Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "87600h"}}); err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string]map[string]any{
		mount + "/root/generate/internal": {"common_name": "Legacy Root", "key_type": "ec", "key_bits": 256, "ttl": "8760h"},
		mount + "/config/urls":            {"issuing_certificates": []string{"http://pki.legacy.test/ca"}, "crl_distribution_points": []string{"http://pki.legacy.test/crl"}},
		mount + "/roles/" + role: {"allowed_domains": []string{"legacy.test"}, "allow_subdomains": true, "key_type": "ec",
			"max_ttl": "720h", "use_csr_common_name": true, "use_csr_sans": true},
	} {
		if _, err := c.Logical().Write(path, data); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	s, err := c.Logical().Read(mount + "/cert/ca")
	if err != nil {
		t.Fatal(err)
	}
	pemCert, _ := s.Data["certificate"].(string)
	cert, err := pki.ParseCertificate([]byte(pemCert))
	if err != nil {
		t.Fatal(err)
	}
	return pki.Serial(cert.SerialNumber)
}

// issueWith signs a certificate for name through an issuer of the catalog.
func (e *accEnv) issueWith(issuer, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		cat, err := backend.LoadCatalog(ctx, e.backend)
		if err != nil {
			return err
		}
		iss, ok := cat.Issuers[issuer]
		if !ok {
			return fmt.Errorf("issuer %s not in the catalog", issuer)
		}
		key, err := pki.GenerateKey(string(schemas.ECDSA), 256)
		if err != nil {
			return err
		}
		// An adopted role keeps Vault's require_cn (true unless written
		// otherwise): the request names its common name, as a Certificate
		// issued through such a role must.
		csr, err := pki.CSR(key, pki.Request{CommonName: name, DNSNames: []string{name}})
		if err != nil {
			return err
		}
		signed, err := e.backend.Sign(ctx, iss, cat.Authorities[iss.Spec.Authority], csr, 24*time.Hour)
		if err != nil {
			return fmt.Errorf("signing through the adopted issuer: %w", err)
		}
		leaf, err := pki.ParseCertificate([]byte(signed.Certificate))
		if err != nil {
			return err
		}
		if leaf.DNSNames[0] != name {
			return fmt.Errorf("issued for %v, want %s", leaf.DNSNames, name)
		}
		return nil
	}
}

// TestAccAdoptAMountAndARoleCertfleetDidNotCreate: `terraform import` of a
// PKI mount and a role made outside certfleet records them in the catalog as
// they are; the plan after import is empty when the configuration describes
// them, the CA keeps its serial (nothing reissued), and certificates issue
// through the adopted issuer.
func TestAccAdoptAMountAndARoleCertfleetDidNotCreate(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		mount, role := "legacy-"+e.id, "web-"+e.id
		serial := e.legacyPKI(t, mount, role)
		urls := ""
		if e.kind == "vault" {
			urls = `
  issuing_certificates    = ["http://pki.legacy.test/ca"]
  crl_distribution_points = ["http://pki.legacy.test/crl"]`
		}
		config := e.config(`
resource "certfleet_authority" "legacy" {
  name        = "legacy-%[1]s"
  type        = "root"
  mount       = "legacy-%[1]s"
  common_name = "Legacy Root"
  ttl         = "8760h"` + urls + `
}
resource "certfleet_issuer" "web" {
  name             = "web-%[1]s"
  authority        = certfleet_authority.legacy.name
  allowed_domains  = ["legacy.test"]
  allow_subdomains = true
  key_type         = "ec"
  max_ttl          = "720h"
  # Vault's defaults for a role written without them, which the adopted
  # role therefore holds; the configuration describes the role as it is.
  allow_ip_sans               = true
  allow_wildcard_certificates = true
}
`)
		authority, issuer := "certfleet_authority.legacy", "certfleet_issuer.web"
		e.test(t,
			resource.TestStep{Config: config, ResourceName: authority, ImportState: true, ImportStateId: mount, ImportStatePersist: true},
			resource.TestStep{Config: config, ResourceName: issuer, ImportState: true, ImportStateId: mount + ":" + role, ImportStatePersist: true},
			resource.TestStep{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(authority, tfjsonpath.New("serial_number"), knownvalue.StringExact(serial)),
					statecheck.ExpectKnownValue(authority, tfjsonpath.New("rotate_before"), knownvalue.StringExact(schemas.FormatDuration(2920*time.Hour))),
					statecheck.ExpectKnownValue(issuer, tfjsonpath.New("role"), knownvalue.StringExact(role)),
				},
				Check: resource.ComposeTestCheckFunc(noSecretsInState, e.issueWith("web-"+e.id, "api.legacy.test")),
			},
		)
	})
}

// TestAccAdoptRefusesWhatItCannotAdopt: a mount that holds no CA, and an
// intermediate whose parent is not in the catalog, are refused with what to
// do instead; the catalog is left as it was.
func TestAccAdoptRefusesWhatItCannotAdopt(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		ctx := context.Background()
		if _, err := backend.AdoptAuthority(ctx, e.backend, "nothing-"+e.id, "nothing-"+e.id); err == nil ||
			!strings.Contains(err.Error(), "holds no PKI issuer to adopt") {
			t.Errorf("adopting an empty mount: %v", err)
		}
		if _, err := backend.AdoptIssuer(ctx, e.backend, "web", "missing-"+e.id, "web"); err == nil ||
			!strings.Contains(err.Error(), "import the authority (its mount) first") {
			t.Errorf("adopting a role of an authority not in the catalog: %v", err)
		}
		cat, err := backend.LoadCatalog(ctx, e.backend)
		if err != nil {
			t.Fatal(err)
		}
		if len(cat.Authorities)+len(cat.Issuers) != 0 {
			t.Errorf("a refused adoption left %d authorities and %d issuers in the catalog", len(cat.Authorities), len(cat.Issuers))
		}
	})
}
