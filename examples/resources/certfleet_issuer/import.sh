# An issuer already in certfleet's catalog, by its name:
terraform import certfleet_issuer.mtls mtls

# Adopt a Vault role certfleet did not create, in the mount of an authority in
# the catalog (import the authority first): <authority>:<role>. The issuer is
# named after the role; the role is recorded as it is and not rewritten.
terraform import certfleet_issuer.web legacy-root:web
