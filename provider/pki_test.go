package provider

import (
	"context"
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

const wholePKI = `
resource "certfleet_authority" "root" {
  name        = "root-%[1]s"
  type        = "root"
  mount       = "pki-root-%[1]s"
  common_name = "Fleet Root %[1]s"
  ttl         = "720h"
  subject     = { organizations = ["Fleet"] }
}
resource "certfleet_authority" "inter" {
  name        = "inter-%[1]s"
  type        = "intermediate"
  parent      = certfleet_authority.root.name
  mount       = "pki-inter-%[1]s"
  common_name = "Fleet Intermediate %[1]s"
  ttl         = "360h"
}
resource "certfleet_issuer" "mtls" {
  name             = "mtls-%[1]s"
  authority        = certfleet_authority.inter.name
  allowed_domains  = ["svc.cluster.local"]
  allow_subdomains = true
  allowed_uri_sans = ["spiffe://fleet.test/*"]
  max_ttl          = "48h"
}
resource "certfleet_policy" "mtls" {
  name         = "mtls-%[1]s"
  selector     = { issuers = [certfleet_issuer.mtls.name] }
  dns_names    = ["**.svc.cluster.local"]
  uris         = ["spiffe://fleet.test/**"]
  max_duration = "48h"
}
resource "certfleet_cluster" "a" {
  name        = "a-%[1]s"
  labels      = { env = "test" }
  credentials = { kubeconfig_context = "a" }
}
data "certfleet_authority" "inter" {
  name = certfleet_authority.inter.name
}
data "certfleet_trust_bundle" "fleet" {
  authorities = [certfleet_authority.inter.name]
}
data "certfleet_catalog" "all" {
  depends_on = [certfleet_policy.mtls, certfleet_cluster.a]
}
`

// TestAccWholePKI declares root → intermediate → issuer → policy → cluster
// in one configuration, then issues a certificate from that issuer through
// the backend (the Vault API for Vault) and checks it chains to the root.
func TestAccWholePKI(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		e.test(t, resource.TestStep{
			Config: e.config(wholePKI),
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("certfleet_authority.inter", "ca_chain.#", "1"),
				resource.TestCheckResourceAttrPair("certfleet_authority.inter", "ca_chain.0", "certfleet_authority.root", "certificate"),
				resource.TestCheckResourceAttrPair("data.certfleet_authority.inter", "certificate", "certfleet_authority.inter", "certificate"),
				// The trust bundle of an intermediate holds it and the root above it.
				resource.TestCheckResourceAttr("data.certfleet_trust_bundle.fleet", "certificates.#", "2"),
				resource.TestCheckResourceAttr("data.certfleet_catalog.all", "authorities.#", "2"),
				resource.TestCheckResourceAttr("data.certfleet_catalog.all", "issuers.0", "mtls-"+e.id),
				resource.TestCheckResourceAttr("data.certfleet_catalog.all", "policies.0", "mtls-"+e.id),
				resource.TestCheckResourceAttr("data.certfleet_catalog.all", "clusters.0", "a-"+e.id),
				noSecretsInState,
				e.issueAndVerify,
			),
		})
	})
}

// issueAndVerify signs a CSR through the issuer the configuration made and
// verifies the leaf against the root in the state.
func (e *accEnv) issueAndVerify(s *terraform.State) error {
	ctx := context.Background()
	cat, err := backend.LoadCatalog(ctx, e.backend)
	if err != nil {
		return err
	}
	iss, ok := cat.Issuers["mtls-"+e.id]
	if !ok {
		return fmt.Errorf("issuer not in the catalog: %v", cat.Issuers)
	}
	a := cat.Authorities[iss.Spec.Authority]
	key, err := pki.GenerateKey(string(schemas.ECDSA), 256)
	if err != nil {
		return err
	}
	csr, err := pki.CSR(key, pki.Request{DNSNames: []string{"api.payments.svc.cluster.local"}, URIs: []string{"spiffe://fleet.test/ns/payments/sa/api"}})
	if err != nil {
		return err
	}
	signed, err := e.backend.Sign(ctx, iss, a, csr, 24*time.Hour)
	if err != nil {
		return fmt.Errorf("signing through the issuer: %w", err)
	}
	leaf, err := pki.ParseCertificate([]byte(signed.Certificate))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(s.RootModule().Resources["certfleet_authority.root"].Primary.Attributes["certificate"]))
	inters := x509.NewCertPool()
	inters.AppendCertsFromPEM([]byte(s.RootModule().Resources["certfleet_authority.inter"].Primary.Attributes["certificate"]))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "api.payments.svc.cluster.local"}); err != nil {
		return fmt.Errorf("the issued certificate does not chain to the root: %w", err)
	}
	return nil
}

// TestAccBadInputFailsAtPlan: each mistake is reported at plan time with a
// message that names the attribute and says what would be right.
func TestAccBadInputFailsAtPlan(t *testing.T) {
	cases := []struct {
		name, config string
		want         string // the message, as a user reads it
	}{
		{"an RSA authority key below 2048 bits", `
resource "certfleet_authority" "weak" {
  name        = "weak"
  type        = "root"
  mount       = "pki-weak"
  common_name = "Weak"
  key_type    = "rsa"
  key_bits    = 1024
}`, `RSA key size 1024 is below 2048, a floor no policy can lower; use 2048, 3072 or 4096`},
		{"an EC authority key of a size EC does not have", `
resource "certfleet_authority" "odd" {
  name        = "odd"
  type        = "root"
  mount       = "pki-odd"
  common_name = "Odd"
  key_bits    = 300
}`, `key type ec does not come in 300 bits; use 256, 384 or 521`},
		{"an intermediate without a parent", `
resource "certfleet_authority" "orphan" {
  name        = "orphan"
  type        = "intermediate"
  mount       = "pki-orphan"
  common_name = "Orphan"
}`, `an intermediate authority needs a parent; name the authority that signs it`},
		{"a policy with an invalid DNS pattern", `
resource "certfleet_policy" "bad" {
  name      = "bad"
  dns_names = ["*.ok.example", "[a-"]
}`, `invalid pattern "[a-"`},
		{"a policy with a bad CIDR", `
resource "certfleet_policy" "bad" {
  name      = "bad"
  ip_ranges = ["10.0.0.0/33"]
}`, `"10.0.0.0/33" is not a CIDR; write a CIDR such as 10.0.0.0/8`},
		{"a policy with an unknown usage", `
resource "certfleet_policy" "bad" {
  name           = "bad"
  allowed_usages = ["server-auth"]
}`, `unknown usage "server-auth"; did you mean "server auth"?`},
		{"a cluster with two credential sources", `
resource "certfleet_cluster" "bad" {
  name        = "bad"
  server      = "https://10.0.0.1:6443"
  credentials = { vault_kv_path = "secret/a", kubeconfig_context = "a" }
}`, `both vaultKVPath and kubeconfigContext are set; keep one`},
		{"a duration that does not parse", `
resource "certfleet_issuer" "bad" {
  name      = "bad"
  authority = "x"
  max_ttl   = "two days"
}`, `"two days" is not a duration`},
	}
	eachEnv(t, func(t *testing.T, e *accEnv) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.test(t, resource.TestStep{Config: e.config(c.config), PlanOnly: true, ExpectError: sentence(c.want)})
			})
		}
	})
}

// sentence matches a message however the CLI wraps its lines.
func sentence(s string) *regexp.Regexp {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return regexp.MustCompile(strings.Join(words, `\s+`))
}
