data "certfleet_catalog" "all" {}

output "issuers" {
  value = data.certfleet_catalog.all.issuers
}
