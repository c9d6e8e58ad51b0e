resource "certfleet_policy" "payments" {
  name = "payments"
  selector = {
    issuers = [certfleet_issuer.mtls.name]
    paths   = ["teams/payments/**"]
  }
  dns_names = ["**.payments.svc.cluster.local"]
  uris      = ["spiffe://fleet.example.com/ns/payments/**"]
  key_algorithms = [
    { algorithm = "ECDSA", min_size = 256 },
    { algorithm = "Ed25519" },
  ]
  max_duration     = "72h"
  min_renew_before = "8h"
  required_usages  = ["client auth"]
  namespaces       = ["payments", "payments-*"]
  enforcement      = "deny"
}
