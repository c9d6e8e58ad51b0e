#!/usr/bin/env bash
# make bench: certfleet's figures, measured against the test bed, side by
# side with a plain baseline in the same run. CERTFLEET_BENCH_N sets the
# fleet size of the issuance benchmark (default 1000), CERTFLEET_BENCH_N2 a
# second, larger one (default 10000; 0 skips it); CERTFLEET_STORM_N and
# CERTFLEET_STORM_RATE the renewal storm (default 10000 at 100/s).
# CERTFLEET_BENCH_PROFILE=<dir> writes CPU profiles of the no-op passes
# (oneshot.cpu, list.cpu, watch.cpu) there.
# CERTFLEET_SCALE=1 adds the memory benchmark (scale/): 100,000 certificates
# (CERTFLEET_SCALE_N) managed by 4 shard processes side by side
# (CERTFLEET_SCALE_SHARDS; 1 skips them), then by one `certfleet reconcile
# --once` process, and that one process again under the GOMEMLIMIT the
# example deployment sets (512Mi), which takes most of an hour, so it is
# opt-in.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CERTFLEET_BENCH_N=${CERTFLEET_BENCH_N:-1000}
N2=${CERTFLEET_BENCH_N2:-10000}
out=$(mktemp)
out2=$(mktemp)
trap 'rm -f "$out" "$out2"' EXIT
run() { echo "bench: $*" >&2; go test -run '^$' "$@" | tee -a "$out" | grep -E '^Benchmark|storm:' >&2; }
run -bench '^BenchmarkFleet$' -benchtime 1x -timeout 30m ./reconciler/reconcile
if [ "$N2" -gt 0 ]; then
	echo "bench: BenchmarkFleet at N=$N2" >&2
	CERTFLEET_BENCH_N=$N2 go test -run '^$' -bench '^BenchmarkFleet$' -benchtime 1x -timeout 60m ./reconciler/reconcile | tee "$out2" | grep -E '^Benchmark' >&2
fi
run -bench '^BenchmarkRenewalStorm$' -benchtime 1x -timeout 60m ./reconciler/reconcile
run -bench '^Benchmark(Plan10k|Validate10k)$' -benchmem -benchtime 5x ./reconciler/plan
run -bench '^BenchmarkDecodeValidateEvaluate10k$' -benchmem -benchtime 5x ./schemas
run -bench '^BenchmarkFetch10k$' -benchtime 5x ./reconciler/source
run -bench '^Benchmark(DaemonRSS|OneFileCommit)$' -benchtime 1x -timeout 30m ./reconciler/serve
if [ "${CERTFLEET_SCALE:-}" = 1 ]; then
	CERTFLEET_SCALE_SHARDS=${CERTFLEET_SCALE_SHARDS:-4} run -bench '^BenchmarkManaged100k$' -benchtime 1x -timeout 120m ./scale
	scale_load=$(cut -d' ' -f1-3 /proc/loadavg)
fi

# metric VALUE UNIT from a benchmark line: the number before UNIT.
metric() { grep -E "^$1[- ]" "${3:-$out}" | head -1 | awk -v u="$2" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}'; }
# metricp PREFIX: "VALUE UNIT" of the first unit starting with PREFIX (the
# rows whose unit names a setting, such as GOMEMLIMIT-230MiB).
metricp() { grep -E "^$2[- ]" "${3:-$out}" | head -1 | awk -v p="$1" '{for (i = 2; i <= NF; i++) if (index($i, p) == 1) print $(i-1), $i}'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.0f ms", ns / 1e6 }'; }
s() { awk -v x="$1" 'BEGIN { printf "%.2f s", x }'; }
N=$CERTFLEET_BENCH_N
cat <<TABLE

| measure | certfleet | baseline (same run) | ratio |
|---|---|---|---|
| issue $N ECDSA P-256 certificates through Vault into a cluster (concurrency 8) | $(s "$(metric BenchmarkFleet issue-pass-s)"), $(metric BenchmarkFleet certs/s) certificates/s | floor: pki/sign + Secret create loop: $(s "$(metric BenchmarkFleet floor-s)"), $(metric BenchmarkFleet floor-certs/s)/s | $(metric BenchmarkFleet issue-ratio)× |
| no-op pass over those $N, the daemon's: the watch says nothing changed (clusters observed from informers' stores, inventory and parsed Secrets kept) | $(s "$(metric BenchmarkFleet watch-noop-s)") | plain LIST of the Secrets: $(s "$(metric BenchmarkFleet list-s)") | $(metric BenchmarkFleet watch-noop-ratio)× |
| memory the daemon's informer holds for those $N Secrets (and the floor loop's $N; heap, after GC) | $(metric BenchmarkFleet informer-heap-MB) MB | — | — |
| no-op pass over those $N, the daemon's while a watch cannot be used (a LIST; inventory and parsed Secrets kept) | $(s "$(metric BenchmarkFleet noop-pass-s)") | the same LIST | $(metric BenchmarkFleet noop-ratio)× |
| no-op pass over those $N, one-shot (\`reconcile --once\` reads the inventory from Vault, one GET per page) | $(s "$(metric BenchmarkFleet oneshot-noop-s)") | the same LIST | $(metric BenchmarkFleet oneshot-noop-ratio)× |
TABLE
if [ "$N2" -gt 0 ]; then cat <<TABLE
| issue $N2 ECDSA P-256 certificates through Vault into a cluster (concurrency 8) | $(s "$(metric BenchmarkFleet issue-pass-s "$out2")"), $(metric BenchmarkFleet certs/s "$out2") certificates/s | floor: $(s "$(metric BenchmarkFleet floor-s "$out2")"), $(metric BenchmarkFleet floor-certs/s "$out2")/s | $(metric BenchmarkFleet issue-ratio "$out2")× |
| no-op pass over those $N2, the daemon's: the watch says nothing changed | $(s "$(metric BenchmarkFleet watch-noop-s "$out2")") | plain LIST: $(s "$(metric BenchmarkFleet list-s "$out2")") | $(metric BenchmarkFleet watch-noop-ratio "$out2")× |
| no-op pass over those $N2, the daemon's while a watch cannot be used (a LIST) | $(s "$(metric BenchmarkFleet noop-pass-s "$out2")") | the same LIST | $(metric BenchmarkFleet noop-ratio "$out2")× |
| no-op pass over those $N2, one-shot | $(s "$(metric BenchmarkFleet oneshot-noop-s "$out2")") | the same LIST | $(metric BenchmarkFleet oneshot-noop-ratio "$out2")× |
TABLE
fi
cat <<TABLE
| renewal storm: $(metric BenchmarkRenewalStorm storm-certs) certificates due together, renewed at a limit of $(metric BenchmarkRenewalStorm limit/s)/s | $(s "$(metric BenchmarkRenewalStorm storm-s)"), $(metric BenchmarkRenewalStorm storm-issued/s)/s, peak $(metric BenchmarkRenewalStorm peak-signs/s) pki/sign in one second; jitter spread the due times over $(metric BenchmarkRenewalStorm jitter-spread-min) min, at most $(metric BenchmarkRenewalStorm due-peak/min) in a minute | renewBefore: $(metric BenchmarkRenewalStorm renewBefore-h) h | — |
| render + validate + plan, 10,000 certificates, two revisions | $(ms "$(metric BenchmarkPlan10k ns/op)"), $(metric BenchmarkPlan10k allocs/op) allocs, $(metric BenchmarkPlan10k B/op) B | — | — |
| render + validate + evaluate, 10,000 certificates, one revision | $(ms "$(metric BenchmarkValidate10k ns/op)"), $(metric BenchmarkValidate10k allocs/op) allocs | — | — |
| decode + validate + evaluate 10,000 manifests (schemas only) | $(ms "$(metric BenchmarkDecodeValidateEvaluate10k ns/op)"), $(metric BenchmarkDecodeValidateEvaluate10k allocs/op) allocs | — | — |
| clone + read a 10,000-certificate repository over HTTP | $(ms "$(metric BenchmarkFetch10k ns/op)") | — | — |
| daemon peak RSS, 10,000 inventory entries | $(metric BenchmarkDaemonRSS/10000 peak-RSS-MB) MB | — | — |
| daemon peak RSS, 100,000 inventory entries | $(metric BenchmarkDaemonRSS/100000 peak-RSS-MB) MB | — | — |
| one-file commit in a 10,000-certificate repository: next pass | re-parses $(metric BenchmarkOneFileCommit files-reparsed) of $(metric BenchmarkOneFileCommit files) files, re-evaluates $(metric BenchmarkOneFileCommit certs-reevaluated) certificates: $(metric BenchmarkOneFileCommit next-ms) ms | the first, full render: $(metric BenchmarkOneFileCommit full-ms) ms | — |
TABLE
if [ "${CERTFLEET_SCALE:-}" = 1 ]; then cat <<TABLE
| $(metric BenchmarkManaged100k certificates) certificates managed by one \`reconcile --once\` (rendered, issued by the local backend, delivered to directories, observed, recorded): peak RSS, first pass | $(metric BenchmarkManaged100k first-peak-RSS-MiB) MiB (live heap $(metric BenchmarkManaged100k first-peak-live-MiB) MiB) in $(s "$(metric BenchmarkManaged100k first-pass-s)") | goal: 512 MiB; \`validate\` of the same repository (the declarations alone): $(metric BenchmarkManaged100k validate-peak-RSS-MiB) MiB | $(metric BenchmarkManaged100k ratio-to-512MiB)× (the larger pass) |
| the same, no-op pass | $(metric BenchmarkManaged100k noop-peak-RSS-MiB) MiB (live heap $(metric BenchmarkManaged100k noop-peak-live-MiB) MiB) in $(s "$(metric BenchmarkManaged100k noop-pass-s)") | goal: 512 MiB | — |
TABLE
	if [ -n "$(metricp first-peak-RSS-MiB-GOMEMLIMIT- BenchmarkManaged100k)" ]; then cat <<TABLE
| the same one process on a fresh fleet under the soft memory limit the example deployment sets from its 512Mi limit ($(metricp first-peak-RSS-MiB-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f2 | sed 's/.*GOMEMLIMIT-/GOMEMLIMIT=/')), first pass | $(metricp first-peak-RSS-MiB-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f1) MiB (live heap $(metricp first-peak-live-MiB-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f1) MiB) in $(s "$(metricp first-pass-s-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f1)") | goal: 512 MiB; without the limit, above | — |
| the same under that limit, no-op pass | $(metricp noop-peak-RSS-MiB-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f1) MiB (live heap $(metricp noop-peak-live-MiB-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f1) MiB) in $(s "$(metricp noop-pass-s-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f1)") | goal: 512 MiB | — |
TABLE
	fi
	if [ -n "$(metric BenchmarkManaged100k shards)" ]; then cat <<TABLE
| the same $(metric BenchmarkManaged100k certificates) managed by $(printf %.0f "$(metric BenchmarkManaged100k shards)") shards side by side (\`reconcile --once --shard sI --shards s0,…\`, hash; directory targets: as many Secrets would overload the test bed's single etcd): the largest shard's peak RSS, first pass (a round that claims, $(s "$(metric BenchmarkManaged100k shard-claim-s)"), and a round that issues) | $(metric BenchmarkManaged100k shard-first-peak-RSS-MiB) MiB (live heap $(metric BenchmarkManaged100k shard-first-peak-live-MiB) MiB; the shards together: $(metric BenchmarkManaged100k shard-first-sum-RSS-MiB) MiB) in $(s "$(metric BenchmarkManaged100k shard-first-pass-s)") | goal: 256 MiB per shard; one process, same run: $(metric BenchmarkManaged100k first-peak-RSS-MiB) MiB in $(s "$(metric BenchmarkManaged100k first-pass-s)") | $(metric BenchmarkManaged100k shard-ratio-to-256MiB)× of 256 MiB (the larger pass) |
| the same shards, no-op pass | $(metric BenchmarkManaged100k shard-noop-peak-RSS-MiB) MiB (live heap $(metric BenchmarkManaged100k shard-noop-peak-live-MiB) MiB; together: $(metric BenchmarkManaged100k shard-noop-sum-RSS-MiB) MiB) in $(s "$(metric BenchmarkManaged100k shard-noop-pass-s)") | one process: $(metric BenchmarkManaged100k noop-peak-RSS-MiB) MiB in $(s "$(metric BenchmarkManaged100k noop-pass-s)") | — |
| the same shards, another no-op pass with a soft memory limit ($(metricp shard-noop-peak-RSS-MiB-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f2 | sed 's/.*GOMEMLIMIT-/GOMEMLIMIT=/'), as a deployment sets it from the container's limit) | $(metricp shard-noop-peak-RSS-MiB-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f1) MiB (live heap $(metricp shard-noop-peak-live-MiB-GOMEMLIMIT- BenchmarkManaged100k | cut -d' ' -f1) MiB) | the same pass without it, above | — |
TABLE
	fi
	echo "scale: load average after the run (1, 5, 15 min; 2 cores): $scale_load"
fi

grep -E 'storm: ' "$out" | sed 's/^ *[a-z_]*\.go:[0-9]*: //' || true
