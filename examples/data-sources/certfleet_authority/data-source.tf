data "certfleet_authority" "intermediate" {
  name = "fleet-intermediate"
}

output "intermediate_expires" {
  value = data.certfleet_authority.intermediate.not_after
}
