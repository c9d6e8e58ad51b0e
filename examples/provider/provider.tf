terraform {
  required_providers {
    certfleet = {
      source = "certfleet/certfleet"
    }
  }
}

# Vault holds the PKI; address and token may also come from VAULT_ADDR and VAULT_TOKEN.
provider "certfleet" {
  backend = "vault"
  vault {
    address       = "https://vault.example.com:8200"
    catalog_mount = "certfleet"
  }
}

# Or, with nothing installed, the embedded local backend:
# provider "certfleet" {
#   backend = "local"
#   local {
#     path = "/var/lib/certfleet"
#   }
# }
