#!/usr/bin/env bash
# make bench: certfleet's figures, measured against the test bed, side by
# side with a plain baseline in the same run. CERTFLEET_BENCH_N sets the
# fleet size of the issuance benchmark (default 1000).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CERTFLEET_BENCH_N=${CERTFLEET_BENCH_N:-1000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { echo "bench: $*" >&2; go test -run '^$' "$@" | tee -a "$out" | grep -E '^Benchmark' >&2; }
run -bench '^BenchmarkFleet$' -benchtime 1x -timeout 30m ./reconciler/reconcile
run -bench '^Benchmark(Plan10k|Validate10k)$' -benchmem -benchtime 5x ./reconciler/plan
run -bench '^BenchmarkDecodeValidateEvaluate10k$' -benchmem -benchtime 5x ./schemas
run -bench '^BenchmarkFetch10k$' -benchtime 5x ./reconciler/source
run -bench '^Benchmark(DaemonRSS|OneFileCommit)$' -benchtime 1x -timeout 30m ./reconciler/serve

# metric VALUE UNIT from a benchmark line: the number before UNIT.
metric() { grep -E "^$1[- ]" "$out" | head -1 | awk -v u="$2" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.0f ms", ns / 1e6 }'; }
s() { awk -v x="$1" 'BEGIN { printf "%.2f s", x }'; }
N=$CERTFLEET_BENCH_N
cat <<TABLE

| measure | certfleet | baseline (same run) | ratio |
|---|---|---|---|
| issue $N ECDSA P-256 certificates through Vault into a cluster (concurrency 8) | $(s "$(metric BenchmarkFleet issue-pass-s)") | plain pki/sign loop: $(s "$(metric BenchmarkFleet sign-loop-s)") | $(metric BenchmarkFleet issue-ratio)× |
| no-op pass over those $N (the daemon: inventory kept from the pass before) | $(s "$(metric BenchmarkFleet noop-pass-s)") | plain LIST of their Secrets: $(s "$(metric BenchmarkFleet list-s)") | $(metric BenchmarkFleet noop-ratio)× |
| no-op pass over those $N, one-shot (\`reconcile --once\` reads the inventory from Vault) | $(s "$(metric BenchmarkFleet oneshot-noop-s)") | the same LIST | $(metric BenchmarkFleet oneshot-noop-ratio)× |
| render + validate + plan, 10,000 certificates, two revisions | $(ms "$(metric BenchmarkPlan10k ns/op)"), $(metric BenchmarkPlan10k allocs/op) allocs, $(metric BenchmarkPlan10k B/op) B | — | — |
| render + validate + evaluate, 10,000 certificates, one revision | $(ms "$(metric BenchmarkValidate10k ns/op)"), $(metric BenchmarkValidate10k allocs/op) allocs | — | — |
| decode + validate + evaluate 10,000 manifests (schemas only) | $(ms "$(metric BenchmarkDecodeValidateEvaluate10k ns/op)"), $(metric BenchmarkDecodeValidateEvaluate10k allocs/op) allocs | — | — |
| clone + read a 10,000-certificate repository over HTTP | $(ms "$(metric BenchmarkFetch10k ns/op)") | — | — |
| daemon peak RSS, 10,000 inventory entries | $(metric BenchmarkDaemonRSS/10000 peak-RSS-MB) MB | — | — |
| daemon peak RSS, 100,000 inventory entries | $(metric BenchmarkDaemonRSS/100000 peak-RSS-MB) MB | — | — |
| one-file commit in a 10,000-certificate repository: next pass | re-parses $(metric BenchmarkOneFileCommit files-reparsed) of $(metric BenchmarkOneFileCommit files) files, re-evaluates $(metric BenchmarkOneFileCommit certs-reevaluated) certificates: $(metric BenchmarkOneFileCommit next-ms) ms | the first, full render: $(metric BenchmarkOneFileCommit full-ms) ms | — |
TABLE
