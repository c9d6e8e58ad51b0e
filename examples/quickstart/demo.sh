#!/usr/bin/env bash
# The quickstart: certfleet's main job on the embedded local backend, with no
# Vault and no cluster. A PKI is loaded into a local state directory, the
# example repository's certificates are issued into directories, the report
# and the inventory are printed, one delivered file is tampered with, and
# drift catches it; a second pass heals it.
set -euo pipefail
cd "$(dirname "$0")/../.."
certfleet=${CERTFLEET:-bin/certfleet}
work=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/certfleet-demo.XXXX")}
state=$work/state
tls=$work/tls
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. load the PKI (examples/quickstart/pki.yaml) into the local backend at $state"
$certfleet catalog apply -f examples/quickstart/pki.yaml --backend local --state-dir "$state"

step "2. validate the repository against the catalog's policies"
$certfleet validate --source examples/quickstart/repo --backend local --state-dir "$state"

step "3. reconcile: issue every certificate into its directory under $tls"
$certfleet reconcile --once --source examples/quickstart/repo --backend local --state-dir "$state" --output-dir "$tls"
ls -l "$tls/payments/api/"

step "4. the inventory"
$certfleet inventory --backend local --state-dir "$state"

step "5. tamper: someone copies another certificate over web/www's tls.crt"
cp -L "$tls/payments/api/tls.crt" "$work/tampered.crt"
rm "$tls/web/www/tls.crt" && cp "$work/tampered.crt" "$tls/web/www/tls.crt"

step "6. drift catches it (exit code 2)"
set +e
$certfleet drift --source examples/quickstart/repo --backend local --state-dir "$state" --output-dir "$tls"
code=$?
set -e
[ "$code" = 2 ] || { echo "demo: drift exited $code, expected 2"; exit 1; }

step "7. the next pass heals it, and drift is clean again"
$certfleet reconcile --once --source examples/quickstart/repo --backend local --state-dir "$state" --output-dir "$tls"
$certfleet drift --source examples/quickstart/repo --backend local --state-dir "$state" --output-dir "$tls"

step "done: the state is in $state, the certificates in $tls, the audit log in $state/audit.log"
