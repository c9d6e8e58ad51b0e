terraform import certfleet_issuer.mtls mtls
