resource "certfleet_authority" "root" {
  name        = "fleet-root"
  type        = "root"
  mount       = "pki-root"
  common_name = "Fleet Root CA"
  subject = {
    organizations = ["Example Corp"]
    countries     = ["DE"]
  }
  key_type      = "ec"
  key_bits      = 384
  ttl           = "87600h"
  rotate_before = "8760h"
}

resource "certfleet_authority" "intermediate" {
  name                  = "fleet-intermediate"
  type                  = "intermediate"
  parent                = certfleet_authority.root.name
  mount                 = "pki-intermediate"
  common_name           = "Fleet Intermediate CA"
  ttl                   = "43800h"
  max_path_length       = 0
  permitted_dns_domains = ["example.com", "svc.cluster.local"]
  issuing_certificates  = ["https://vault.example.com:8200/v1/pki-intermediate/ca"]
}
