# What workloads should trust now; during a rotation, old and new.
data "certfleet_trust_bundle" "fleet" {
  authorities = ["fleet-intermediate"]
}

resource "local_file" "ca_bundle" {
  filename = "${path.module}/ca.crt"
  content  = data.certfleet_trust_bundle.fleet.pem
}
