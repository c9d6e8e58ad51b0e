package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

func TestAccClusterCreateImportUpdateDestroy(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *accEnv) {
		config := func(env string) string {
			return e.config(`
resource "certfleet_cluster" "eu" {
  name   = "eu-%[1]s"
  server = "https://10.0.0.1:6443"
  labels = { env = "` + env + `", region = "eu" }
  credentials = {
    vault_kv_path = "secret/clusters/eu"
  }
}
`)
		}
		name := "certfleet_cluster.eu"
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: e.factories(),
			CheckDestroy:             e.gone(e.noObject("Cluster", "eu-"+e.id)),
			Steps: []resource.TestStep{
				{Config: config("prod"), Check: resource.TestCheckResourceAttr(name, "labels.env", "prod")},
				{ResourceName: name, ImportState: true, ImportStateId: "eu-" + e.id, ImportStateVerify: true},
				{
					Config: config("staging"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(name, plancheck.ResourceActionUpdate)}},
					Check: resource.TestCheckResourceAttr(name, "labels.env", "staging"),
				},
				{
					Config:           config("staging"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
			},
		})
	})
}
