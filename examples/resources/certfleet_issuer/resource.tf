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

# Public certificates from Let's Encrypt: HTTP-01 answered by certfleet's
# listener, DNS-01 (for wildcards) through Cloudflare. The provider reads
# CLOUDFLARE_DNS_API_TOKEN from certfleet's environment, not from here.
resource "certfleet_issuer" "public" {
  name = "public"
  acme = {
    server         = "https://acme-v02.api.letsencrypt.org/directory"
    email          = "pki@example.com"
    http01         = true
    dns01_provider = "cloudflare"
  }
}

# A CA that requires an external account binding (ZeroSSL, Sectigo, step-ca):
# the HMAC key is read from Vault KV when the account is registered; it is
# never in the configuration or the state.
resource "certfleet_issuer" "zerossl" {
  name = "zerossl"
  acme = {
    server                = "https://acme.zerossl.com/v2/DV90"
    email                 = "pki@example.com"
    eab_key_id            = "kid-from-the-zerossl-dashboard"
    eab_hmac_key_vault_kv = "secret/acme/zerossl#hmac"
    http01                = true
  }
}
