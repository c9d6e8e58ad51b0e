resource "certfleet_cluster" "prod_eu" {
  name           = "prod-eu"
  server         = "https://k8s-prod-eu.example.com:6443"
  ca_certificate = file("${path.module}/prod-eu-ca.pem")
  labels = {
    env    = "prod"
    region = "eu"
  }
  # A KV v2 secret whose "token" field is a bearer token for the API server;
  # the token itself never reaches Terraform state.
  credentials = {
    vault_kv_path = "secret/certfleet/clusters/prod-eu"
  }
}
