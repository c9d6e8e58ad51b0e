# Mass reissues (an authority rotation, a template change touching many
# certificates) go to the staging clusters first, then, two hours after
# staging's last reissue, to every other cluster, a quarter per pass.
resource "certfleet_rollout" "fleet" {
  name = "fleet"
  waves = [
    { name = "staging", cluster_selector = { env = "staging" } },
    { name = "production" },
  ]
  max_share_per_pass = 0.25
  soak               = "2h"
}
