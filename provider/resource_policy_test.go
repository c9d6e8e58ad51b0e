package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccPolicyCreateImportUpdateDestroy(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		config := func(maxDuration string) string {
			return e.config(`
resource "certfleet_policy" "internal" {
  name = "internal-%[1]s"
  selector = {
    issuers = ["mtls"]
    paths   = ["teams/**"]
    match_labels = { tier = "backend" }
  }
  dns_names    = ["**.svc.cluster.local"]
  uris         = ["spiffe://fleet.test/ns/*/sa/*"]
  ip_ranges    = ["10.0.0.0/8"]
  key_algorithms = [
    { algorithm = "ECDSA", min_size = 256 },
    { algorithm = "RSA", min_size = 3072 },
  ]
  max_duration     = "` + maxDuration + `"
  min_renew_before = "24h"
  allowed_usages   = ["digital signature", "key encipherment", "server auth", "client auth"]
  required_usages  = ["client auth"]
  max_sans         = 10
  namespaces       = ["team-*"]
  vault_kv_paths   = ["secret/tls/**"]
  directory_paths  = ["teams/*/tls"]
}
`)
		}
		name := "certfleet_policy.internal"
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: e.factories(),
			CheckDestroy:             e.gone(e.noObject("Policy", "internal-"+e.id)),
			Steps: []resource.TestStep{
				{
					Config: config("2160h"),
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(name, tfjsonpath.New("enforcement"), knownvalue.StringExact("deny")),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("allow_wildcards"), knownvalue.Bool(false)),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("key_algorithms").AtSliceIndex(1).AtMapKey("min_size"), knownvalue.Int64Exact(3072)),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("vault_kv_paths"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("secret/tls/**")})),
						statecheck.ExpectKnownValue(name, tfjsonpath.New("directory_paths"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("teams/*/tls")})),
					},
				},
				{ResourceName: name, ImportState: true, ImportStateId: "internal-" + e.id, ImportStateVerify: true},
				{
					Config: config("720h"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate)}},
					Check: resource.TestCheckResourceAttr(name, "max_duration", "720h"),
				},
				{
					Config:           config("720h"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
			},
		})
	})
}
