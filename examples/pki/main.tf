# A whole PKI for a fleet: a root, an intermediate, two issuers (internal
# mTLS with SPIFFE IDs, and public-facing ingress), a policy for each, and
# two target clusters. `terraform apply` writes it all to the backend; the
# certfleet reconciler then issues what application teams declare in Git.

terraform {
  required_providers {
    certfleet = {
      source = "certfleet/certfleet"
    }
  }
}

variable "state_dir" {
  description = "The local backend's directory (use backend = \"vault\" in production)."
  type        = string
  default     = "./certfleet-state"
}

provider "certfleet" {
  backend = "local"
  local {
    path = var.state_dir
  }
}

resource "certfleet_authority" "root" {
  name          = "fleet-root"
  type          = "root"
  mount         = "pki-root"
  common_name   = "Fleet Root CA"
  subject       = { organizations = ["Example Corp"] }
  key_type      = "ec"
  key_bits      = 384
  ttl           = "87600h"
  rotate_before = "8760h"
}

resource "certfleet_authority" "intermediate" {
  name        = "fleet-intermediate"
  type        = "intermediate"
  parent      = certfleet_authority.root.name
  mount       = "pki-intermediate"
  common_name = "Fleet Intermediate CA"
  ttl         = "26280h"
}

resource "certfleet_issuer" "mtls" {
  name             = "mtls"
  authority        = certfleet_authority.intermediate.name
  allowed_domains  = ["svc.cluster.local"]
  allow_subdomains = true
  allowed_uri_sans = ["spiffe://fleet.example.com/*"]
  max_ttl          = "72h"
}

resource "certfleet_issuer" "ingress" {
  name                        = "ingress"
  authority                   = certfleet_authority.intermediate.name
  allowed_domains             = ["example.com"]
  allow_subdomains            = true
  allow_wildcard_certificates = true
  client_flag                 = false
  max_ttl                     = "2160h"
}

resource "certfleet_policy" "mtls" {
  name             = "mtls"
  selector         = { issuers = [certfleet_issuer.mtls.name] }
  dns_names        = ["**.svc.cluster.local"]
  uris             = ["spiffe://fleet.example.com/ns/*/sa/*"]
  key_algorithms   = [{ algorithm = "ECDSA", min_size = 256 }, { algorithm = "Ed25519" }]
  max_duration     = "72h"
  min_renew_before = "8h"
  required_usages  = ["client auth", "server auth"]
}

resource "certfleet_policy" "ingress" {
  name            = "ingress"
  selector        = { issuers = [certfleet_issuer.ingress.name], paths = ["ingress/**", "teams/*/ingress/**"] }
  dns_names       = ["example.com", "**.example.com"]
  allow_wildcards = true
  max_duration    = "2160h"
  max_sans        = 20
  allowed_usages  = ["digital signature", "key encipherment", "key agreement", "server auth"]
  namespaces      = ["ingress-*", "istio-system"]
}

resource "certfleet_cluster" "prod_eu" {
  name        = "prod-eu"
  labels      = { env = "prod", region = "eu" }
  credentials = { kubeconfig_context = "prod-eu" }
}

resource "certfleet_cluster" "prod_us" {
  name        = "prod-us"
  labels      = { env = "prod", region = "us" }
  credentials = { kubeconfig_context = "prod-us" }
}

data "certfleet_trust_bundle" "fleet" {
  authorities = [certfleet_authority.intermediate.name]
}

output "trust_bundle" {
  description = "The CA certificates workloads should trust."
  value       = data.certfleet_trust_bundle.fleet.pem
}
