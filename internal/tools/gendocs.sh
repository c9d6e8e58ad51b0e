#!/usr/bin/env bash
# Regenerates docs/ offline: formats examples/ with the test bed's terraform,
# asks it for the provider schema through a dev_overrides build, and runs
# tfplugindocs on that schema (so tfplugindocs downloads no terraform).
set -euo pipefail
cd "$(dirname "$0")/../.."
. internal/testbed/versions.env
cache=${CERTFLEET_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/certfleet/testbed}
terraform=$cache/terraform-$TERRAFORM_VERSION/terraform
[ -x "$terraform" ] || { echo "gendocs: $terraform missing: run make testbed"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/bin/terraform-provider-certfleet" .
cat >"$work/dev.tfrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/certfleet/certfleet" = "$work/bin"
  }
  direct {}
}
RC
printf 'terraform {\n  required_providers {\n    certfleet = { source = "certfleet/certfleet" }\n  }\n}\n' >"$work/main.tf"
export HOME=$work TF_CLI_CONFIG_FILE=$work/dev.tfrc CHECKPOINT_DISABLE=1
"$terraform" fmt -recursive examples/ >/dev/null
(cd "$work" && "$terraform" providers schema -json >schema.json)
# tfplugindocs looks the schema up by short name (or under hashicorp/).
sed -i 's|"registry.terraform.io/certfleet/certfleet"|"certfleet"|' "$work/schema.json"
go run github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@v0.25.0 generate \
	--provider-name certfleet --rendered-provider-name certfleet \
	--providers-schema "$work/schema.json" >/dev/null
echo "gendocs: docs/ regenerated"
