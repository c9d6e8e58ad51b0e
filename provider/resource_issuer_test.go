package provider

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

func TestAccIssuerCreateImportUpdateDestroy(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		config := func(domains string) string {
			return e.config(`
resource "certfleet_authority" "root" {
  name        = "iroot-%[1]s"
  type        = "root"
  mount       = "pki-iroot-%[1]s"
  common_name = "Issuer Test Root %[1]s"
  ttl         = "720h"
}
resource "certfleet_issuer" "web" {
  name             = "web-%[1]s"
  authority        = certfleet_authority.root.name
  allowed_domains  = [` + domains + `]
  allow_subdomains = true
  max_ttl          = "72h"
  allowed_uri_sans = ["spiffe://fleet.test/*"]
}
`)
		}
		name := "certfleet_issuer.web"
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: e.factories(),
			CheckDestroy: e.gone(e.noRole("web-"+e.id, "web-"+e.id, "pki-iroot-"+e.id), e.noObject("Issuer", "web-"+e.id),
				e.noAuthority("iroot-"+e.id, "pki-iroot-"+e.id)),
			Steps: []resource.TestStep{
				{
					Config: config(`"example.test"`),
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(name, tfjsonpath.New("role"), knownvalue.StringExact("web-"+e.id)),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("server_flag"), knownvalue.Bool(true)),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("key_type"), knownvalue.StringExact("any")),
					},
				},
				{ResourceName: name, ImportState: true, ImportStateId: "web-" + e.id, ImportStateVerify: true},
				{
					Config: config(`"example.test", "example.org"`),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate)}},
					Check: resource.TestCheckResourceAttr(name, "allowed_domains.#", "2"),
				},
				{
					Config:           config(`"example.test", "example.org"`),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
			},
		})
	})
}

func TestAccIssuerMaxTTLBeyondItsAuthorityFailsAtPlan(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		root := `
resource "certfleet_authority" "root" {
  name        = "short-%[1]s"
  type        = "root"
  mount       = "pki-short-%[1]s"
  common_name = "Short Root %[1]s"
  ttl         = "24h"
}
`
		e.test(t,
			resource.TestStep{Config: e.config(root)},
			resource.TestStep{
				Config: e.config(root + `
resource "certfleet_issuer" "long" {
  name      = "long-%[1]s"
  authority = certfleet_authority.root.name
  max_ttl   = "48h"
}
`),
				ExpectError: regexp.MustCompile(`(?s)Max TTL Beyond the Authority's Lifetime.*max_ttl 48h would let certificates live until .*authority "short-` + e.id + `" expires`),
			},
		)
	})
}

func TestAccIssuerACMEIsRecordedWithoutAnAuthority(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		config := func(email string) string {
			return e.config(`
resource "certfleet_issuer" "public" {
  name = "public-%[1]s"
  acme = {
    server            = "https://acme.example.test/directory"
    email             = "` + email + `"
    eab_key_id        = "kid-1"
    eab_hmac_key_file = "/run/secrets/eab-hmac"
    http01            = true
    dns01_provider    = "exec"
    dns01_nameservers = ["10.0.0.53:53"]
  }
}
`)
		}
		name := "certfleet_issuer.public"
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: e.factories(),
			CheckDestroy:             e.gone(e.noObject("Issuer", "public-"+e.id)),
			Steps: []resource.TestStep{
				{
					Config: config("pki@example.test"),
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(name, tfjsonpath.New("acme").AtMapKey("server"), knownvalue.StringExact("https://acme.example.test/directory")),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("acme").AtMapKey("http01"), knownvalue.Bool(true)),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("authority"), knownvalue.Null()),
					},
				},
				{ResourceName: name, ImportState: true, ImportStateId: "public-" + e.id, ImportStateVerify: true},
				{
					Config: config("certs@example.test"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate)}},
				},
				{
					Config:           config("certs@example.test"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
			},
		})
	})
}

func TestAccIssuerACMEWithoutASolverFailsAtPlan(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		e.test(t, resource.TestStep{
			Config: e.config(`
resource "certfleet_issuer" "public" {
  name = "nosolver-%[1]s"
  acme = { server = "https://acme.example.test/directory" }
}
`),
			ExpectError: regexp.MustCompile(`no solver`),
		})
	})
}

// TestAccIssuerRoleEditedInVaultIsDrift: a role widened behind Terraform's
// back (another domain, any name) shows up in the next plan as an update, and
// apply writes the declared role back.
func TestAccIssuerRoleEditedInVaultIsDrift(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		config := e.config(`
resource "certfleet_authority" "root" {
  name        = "droot-%[1]s"
  type        = "root"
  mount       = "pki-droot-%[1]s"
  common_name = "Drift Test Root %[1]s"
  ttl         = "720h"
}
resource "certfleet_issuer" "web" {
  name             = "web-%[1]s"
  authority        = certfleet_authority.root.name
  allowed_domains  = ["example.test"]
  allow_subdomains = true
  key_type         = "ec"
  ttl              = "1d"
  max_ttl          = "72h"
}
`)
		name := "certfleet_issuer.web"
		ctx := context.Background()
		role := func() (*schemas.Issuer, *schemas.Authority) {
			iss, err := backend.GetObject[schemas.Issuer](ctx, e.backend, schemas.KindIssuer, "web-"+e.id)
			if err != nil {
				t.Fatal(err)
			}
			a, err := backend.GetObject[schemas.Authority](ctx, e.backend, schemas.KindAuthority, "droot-"+e.id)
			if err != nil {
				t.Fatal(err)
			}
			return iss, a
		}
		e.test(t,
			resource.TestStep{Config: config},
			resource.TestStep{
				// Someone widens the role in Vault (or the local backend's role file).
				PreConfig: func() {
					iss, a := role()
					iss.Spec.AllowedDomains = append(iss.Spec.AllowedDomains, "evil.test")
					iss.Spec.AllowAnyName, iss.Spec.MaxTTL = true, "8760h"
					if err := e.backend.PutRole(ctx, iss, a); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(name, tfjsonpath.New("allow_any_name"), knownvalue.Bool(false)),
					plancheck.ExpectKnownValue(name, tfjsonpath.New("max_ttl"), knownvalue.StringExact("72h")),
				}},
				Check: func(*terraform.State) error {
					iss, a := role()
					held, err := e.backend.ReadRole(ctx, iss, a)
					if err != nil {
						return err
					}
					if held.AllowAnyName || len(held.AllowedDomains) != 1 || !reflect.DeepEqual(iss.Spec.WithRole(held), iss.Spec) {
						return fmt.Errorf("apply did not write the declared role back: %+v", held)
					}
					return nil
				},
			},
			resource.TestStep{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		)
	})
}
