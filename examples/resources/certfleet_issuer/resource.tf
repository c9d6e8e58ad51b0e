# Workload identity: short-lived mTLS certificates with SPIFFE IDs.
resource "certfleet_issuer" "mtls" {
  name             = "mtls"
  authority        = certfleet_authority.intermediate.name
  allowed_domains  = ["svc.cluster.local"]
  allow_subdomains = true
  allowed_uri_sans = ["spiffe://fleet.example.com/*"]
  key_type         = "ec"
  ttl              = "24h"
  max_ttl          = "72h"
  server_flag      = true
  client_flag      = true
}
