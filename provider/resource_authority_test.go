package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

var pemCert = regexp.MustCompile(`^-----BEGIN CERTIFICATE-----`)

func TestAccAuthorityCreateImportUpdateDestroy(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		config := func(url string, extra ...string) string {
			return e.config(`
resource "certfleet_authority" "root" {
  name                 = "root-%[1]s"
  type                 = "root"
  mount                = "pki-root-%[1]s"
  common_name          = "Fleet Root %[1]s"
  ttl                  = "720h"
  issuing_certificates = ["` + url + `"]
  ` + strings.Join(extra, "\n  ") + `
}
`)
		}
		name := "certfleet_authority.root"
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: e.factories(),
			CheckDestroy:             e.gone(e.noAuthority("root-"+e.id, "pki-root-"+e.id), e.noObject("Authority", "root-"+e.id)),
			Steps: []resource.TestStep{
				{
					Config: config("https://pki.example.test/a.crt"),
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(name, tfjsonpath.New("key_type"), knownvalue.StringExact("ec")),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("key_bits"), knownvalue.Int64Exact(256)),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("rotate_before"), knownvalue.StringExact("10d")),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("retire_previous_issuer"), knownvalue.StringExact("keep")),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("ca_chain"), knownvalue.ListSizeExact(0)),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("certificate"), knownvalue.StringRegexp(pemCert)),
					},
					Check: resource.ComposeAggregateTestCheckFunc(
						resource.TestMatchResourceAttr(name, "serial_number", regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2})+$`)),
						resource.TestCheckResourceAttrSet(name, "issuer_id"),
						checkLifetime(name, 720*time.Hour),
						noSecretsInState,
					),
				},
				{ResourceName: name, ImportState: true, ImportStateId: "root-" + e.id, ImportStateVerify: true},
				{
					Config: config("https://pki.example.test/b.crt"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(name, tfjsonpath.New("certificate"), knownvalue.StringRegexp(pemCert)),
					}},
					Check: resource.TestCheckResourceAttr(name, "issuing_certificates.0", "https://pki.example.test/b.crt"),
				},
				{
					Config:           config("https://pki.example.test/b.crt"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
				{
					// What the reconciler does with the old issuer after a rotation: an in-place update of the catalog.
					Config: config("https://pki.example.test/b.crt", `retire_previous_issuer = "delete"`),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate),
					}},
					Check: func(*terraform.State) error {
						a, err := backend.GetObject[schemas.Authority](context.Background(), e.backend, schemas.KindAuthority, "root-"+e.id)
						if err != nil {
							return err
						}
						if a.Spec.RetirePreviousIssuer != schemas.RetireDelete {
							return fmt.Errorf("the catalog says retirePreviousIssuer %q, want delete", a.Spec.RetirePreviousIssuer)
						}
						return nil
					},
				},
			},
		})
	})
}

// checkLifetime checks not_after - not_before against a CA's ttl (Vault
// back-dates not_before by 30 seconds).
func checkLifetime(name string, ttl time.Duration) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs := s.RootModule().Resources[name].Primary.Attributes
		nb, err := time.Parse(time.RFC3339, rs["not_before"])
		if err != nil {
			return err
		}
		na, err := time.Parse(time.RFC3339, rs["not_after"])
		if err != nil {
			return err
		}
		if got := na.Sub(nb); got < ttl || got > ttl+time.Minute {
			return &lifetimeError{got, ttl}
		}
		return nil
	}
}

type lifetimeError struct{ got, want time.Duration }

func (e *lifetimeError) Error() string {
	return "lifetime " + e.got.String() + ", want " + e.want.String()
}

// TestAccAuthorityRotation moves the provider's clock past rotate_before:
// the plan rotates the authority in place (a new issuer becomes the default,
// the old one stays), and the trust bundle then carries both certificates.
func TestAccAuthorityRotation(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		config := e.config(`
resource "certfleet_authority" "root" {
  name          = "rot-%[1]s"
  type          = "root"
  mount         = "pki-rot-%[1]s"
  common_name   = "Rotating Root %[1]s"
  ttl           = "2h"
  rotate_before = "30m"
}
data "certfleet_trust_bundle" "all" {
  authorities = [certfleet_authority.root.name]
}
`)
		name := "certfleet_authority.root"
		var first string
		e.test(t,
			resource.TestStep{
				Config: config,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.certfleet_trust_bundle.all", "certificates.#", "1"),
					resource.TestCheckResourceAttr(name, "previous_certificates.#", "0"),
					func(s *terraform.State) error {
						first = s.RootModule().Resources[name].Primary.Attributes["certificate"]
						return nil
					},
				),
			},
			resource.TestStep{
				// 1h45m later the authority is within 30 minutes of its expiry.
				PreConfig: func() { e.clock.advance(105 * time.Minute) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(name, tfjsonpath.New("certificate")),
					plancheck.ExpectUnknownValue(name, tfjsonpath.New("issuer_id")),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(*terraform.State) error { e.clock.reset(); return nil },
					resource.TestCheckResourceAttr(name, "previous_certificates.#", "1"),
					func(s *terraform.State) error {
						attrs := s.RootModule().Resources[name].Primary.Attributes
						if attrs["certificate"] == first {
							return &rotationError{"the certificate did not change"}
						}
						if attrs["previous_certificates.0"] != first {
							return &rotationError{"the old certificate is not among previous_certificates"}
						}
						return nil
					},
				),
			},
			resource.TestStep{
				// Refresh the data source: it must now publish old and new.
				Config: config,
				Check:  resource.TestCheckResourceAttr("data.certfleet_trust_bundle.all", "certificates.#", "2"),
			},
		)
	})
}

type rotationError struct{ msg string }

func (e *rotationError) Error() string { return e.msg }
