# An authority already in certfleet's catalog, by its name:
terraform import certfleet_authority.root fleet-root

# Adopt a PKI mount certfleet did not create (made with terraform-provider-vault
# or the vault CLI): the mount's CA is recorded in the catalog as it is and
# nothing in Vault changes, so nothing is reissued. The authority is named after
# the mount, or give the name first. Adopt a root before its intermediates.
terraform import certfleet_authority.legacy pki-legacy
terraform import certfleet_authority.legacy legacy-root:pki-legacy
