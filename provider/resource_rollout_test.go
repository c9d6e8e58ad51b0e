package provider

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

func TestAccRolloutCreateImportUpdateDestroy(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		config := func(soak string, more ...string) string {
			return e.config(strings.Join(more, "") + `
resource "certfleet_rollout" "fleet" {
  name = "fleet-%[1]s"
  waves = [
    { name = "staging", cluster_selector = { env = "staging" } },
    { name = "production" },
  ]
  max_share_per_pass = 0.5
  soak               = "` + soak + `"
}
`)
		}
		name := "certfleet_rollout.fleet"
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: e.factories(),
			CheckDestroy:             e.gone(e.noObject("Rollout", "fleet-"+e.id)),
			Steps: []resource.TestStep{
				{Config: config("30m"), Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(name, "waves.0.cluster_selector.env", "staging"),
					resource.TestCheckNoResourceAttr(name, "waves.1.cluster_selector"),
					resource.TestCheckResourceAttr(name, "soak", "30m"))},
				{ResourceName: name, ImportState: true, ImportStateId: "fleet-" + e.id, ImportStateVerify: true},
				{
					Config: config("2h"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate)}},
					Check: resource.TestCheckResourceAttr(name, "soak", "2h"),
				},
				{
					Config:           config("2h"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
				{
					// A catalog holds one Rollout: a second is refused, naming the first.
					Config: config("2h", `
resource "certfleet_rollout" "other" {
  name       = "other-%[1]s"
  waves      = [{ name = "all" }]
  depends_on = [certfleet_rollout.fleet]
}
`),
					ExpectError: regexp.MustCompile(`already has Rollout "fleet-`),
				},
			},
		})
	})
}

func TestAccRolloutInvalidConfigNamesTheAttribute(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: e.factories(),
			Steps: []resource.TestStep{{
				Config: e.config(`
resource "certfleet_rollout" "bad" {
  name  = "bad-%[1]s"
  waves = [{ name = "staging" }, { name = "production" }]
}
`),
				ExpectError: regexp.MustCompile(`(?s)Invalid Rollout Attribute.*wave "staging" has no clusterSelector`),
			}},
		})
	})
}
