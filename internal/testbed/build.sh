#!/usr/bin/env bash
# Builds the servers the tests run against (terraform, OpenTofu, Vault, etcd,
# kube-apiserver, Pebble) and the tools they check with (promtool) from the Go module
# proxy, once, into a cache keyed by version.
# Only what is missing is built; a warm cache makes this a no-op.
#
#   CERTFLEET_TESTBED_CACHE  cache directory (default: $XDG_CACHE_HOME or
#                            ~/.cache, then certfleet/testbed)
#   TESTBED_PARTS            which parts to build (default: all of them)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${CERTFLEET_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/certfleet/testbed}
work=$cache/.work
mkdir -p "$work"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0

say() { printf 'testbed: %s\n' "$*"; }

# bin NAME VERSION: where a part's binary lives in the cache.
bin() { echo "$cache/$1-$2/$1"; }

# moddir MODULE@VERSION: a writable copy of a module's source, because some
# parts cannot be built with `go install` (their go.mod has replace lines).
moddir() {
	local dir src
	src=$(cd / && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[ -n "$src" ] || { echo "go mod download $1 gave no directory" >&2; return 1; }
	dir=$work/src-${1//[@\/]/_}
	rm -rf "$dir"
	cp -r "$src" "$dir"
	chmod -R u+w "$dir"
	echo "$dir"
}

build_terraform() {
	GOBIN=$1 go install -trimpath -ldflags='-s -w' "github.com/hashicorp/terraform@$TERRAFORM_VERSION"
}

build_tofu() {
	local src
	src=$(moddir "github.com/opentofu/opentofu@$TOFU_VERSION")
	(cd "$src" && go build -mod=mod -trimpath \
		-ldflags="-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$1/tofu" ./cmd/tofu)
	rm -rf "$src"
}

build_vault() {
	local src
	src=$(moddir "github.com/hashicorp/vault@$VAULT_VERSION")
	(
		cd "$src"
		# The released api/sdk modules stand in for the in-tree copies.
		go mod edit \
			-dropreplace=github.com/hashicorp/vault/api \
			-dropreplace=github.com/hashicorp/vault/api/auth/approle \
			-dropreplace=github.com/hashicorp/vault/api/auth/kubernetes \
			-dropreplace=github.com/hashicorp/vault/api/auth/userpass \
			-dropreplace=github.com/hashicorp/vault/sdk
		# With the released sdk, two enterprise-only managed-keys stubs declare a
		# CreateOperation without an ExistenceCheck and Vault panics at start.
		sed -i '/"managed-keys\/"/s/logical\.CreateOperation, //' vault/logical_system_helpers.go
		go build -mod=mod -trimpath -ldflags='-s -w' -o "$1/vault" .
	)
	rm -rf "$src"
}

build_etcd() {
	local mod=$work/etcd-mod
	rm -rf "$mod" && mkdir -p "$mod"
	(
		cd "$mod"
		go mod init testbed/etcd
		go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
		go build -trimpath -ldflags='-s -w' -o "$1/etcd" go.etcd.io/etcd/server/v3
	)
	rm -rf "$mod"
}

build_kube_apiserver() {
	local mod=$work/kube-mod minor=${KUBE_VERSION#v1.}
	minor=${minor%%.*}
	rm -rf "$mod" && mkdir -p "$mod"
	(
		cd "$mod"
		# k8s.io/kubernetes replaces its staging modules with ./staging paths that
		# do not exist outside its repository: point them at the published ones.
		# Download first, outside the block below: inside it go.mod is half
		# written and every go command run here would fail on it.
		local kgomod
		kgomod=$(cd / && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
		[ -f "$kgomod" ] || { echo "go mod download k8s.io/kubernetes@$KUBE_VERSION gave no go.mod" >&2; exit 1; }
		local replaces
		replaces=$(sed -n 's|^\t\(k8s.io/[a-z-]*\) => ./staging/.*|\t\1 => \1 v0.'"${KUBE_VERSION#v1.}"'|p' "$kgomod")
		[ -n "$replaces" ] || { echo "no staging replace lines found in $kgomod" >&2; exit 1; }
		{
			echo "module testbed/kube"
			echo
			echo "go 1.24.0"
			echo
			echo "godebug default=go1.24"
			echo
			echo "require k8s.io/kubernetes $KUBE_VERSION"
			echo
			echo "replace ("
			echo "$replaces"
			echo ")"
		} >go.mod
		go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION"
		local v
		v="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
		v="$v -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
		go build -trimpath -tags selinux,notest -ldflags "-s -w $v" -o "$1/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
	)
	rm -rf "$mod"
}

build_promtool() {
	# remove_all_sd leaves out the service discoveries: promtool only checks
	# and unit-tests rules here, and one of them (nomad) pins a module version
	# the proxy refuses. Prometheus v3.X.Y is published as module v0.3XX.Y.
	local minor=${PROMTOOL_VERSION#v0.3} v
	v="-X github.com/prometheus/common/version.Version=3.${minor%%.*}.${PROMTOOL_VERSION##*.}"
	GOBIN=$1 go install -tags remove_all_sd -trimpath -ldflags="-s -w $v" \
		"github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
}

build_goreleaser() {
	# Builds the provider's release archives (make release-snapshot and its test).
	GOBIN=$1 go install -trimpath -ldflags="-s -w -X main.version=${GORELEASER_VERSION#v}" \
		"github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
}

build_pebble() {
	# The ACME server the ACME issuer's tests run against, with its real
	# validation (HTTP-01 against certfleet's listener, DNS-01 against
	# pebble-challtestsrv's DNS).
	GOBIN=$1 go install -trimpath -ldflags='-s -w' "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION"
}

build_pebble_challtestsrv() {
	# Pebble's DNS server: answers the TXT records a DNS-01 solver sets through
	# its management API.
	GOBIN=$1 go install -trimpath -ldflags='-s -w' "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$PEBBLE_CHALLTESTSRV_VERSION"
}

build_helm() {
	# Lints and renders charts/certfleet; a CLI rather than a library, so helm's
	# Kubernetes modules never meet the project's client-go in one go.mod.
	GOBIN=$1 go install -trimpath -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# part NAME VERSION MINUTES: build one part unless the cache has it. The binary
# is built into a temporary directory and renamed, so an interrupted build never
# leaves a half-written binary that looks cached.
part() {
	local name=$1 version=$2 minutes=$3 fn=build_${1//-/_}
	local dest tmp start log
	dest=$(bin "$name" "$version")
	if [ -x "$dest" ]; then
		say "$name $version: cached ($dest)"
		return 0
	fi
	say "$name $version: building, because $dest is missing (about $minutes min on 2 cores cold, beside another part)"
	tmp=$(mktemp -d "$work/$name.XXXX")
	log=$work/$name.log
	start=$SECONDS
	# The build runs as an asynchronous subshell and is waited for: a function
	# called on the left of || runs with set -e ignored, so a failed step would
	# not stop it; here the first failing command ends the part with its error.
	(set -e; "$fn" "$tmp") >"$log" 2>&1 &
	local pid=$!
	if [ -t 1 ]; then
		while kill -0 "$pid" 2>/dev/null; do
			sleep 15
			kill -0 "$pid" 2>/dev/null && say "$name $version: still building ($((SECONDS - start)) s)"
		done
	fi
	wait "$pid" || { say "$name $version: FAILED, last lines of $log:"; tail -n 30 "$log"; return 1; }
	[ -x "$tmp/$name" ] || { say "$name $version: FAILED, the build left no $name in $tmp; see $log"; return 1; }
	mkdir -p "$(dirname "$dest")"
	mv "$tmp/$name" "$dest"
	rm -rf "$tmp"
	say "$name $version: built in $((SECONDS - start)) s -> $dest"
}

one() {
	case $1 in
	terraform) part terraform "$TERRAFORM_VERSION" 6 ;;
	tofu) part tofu "$TOFU_VERSION" 14 ;;
	vault) part vault "$VAULT_VERSION" 34 ;;
	etcd) part etcd "$ETCD_VERSION" 1 ;;
	kube-apiserver) part kube-apiserver "$KUBE_VERSION" 23 ;;
	promtool) part promtool "$PROMTOOL_VERSION" 6 ;;
	goreleaser) part goreleaser "$GORELEASER_VERSION" 7 ;;
	helm) part helm "$HELM_VERSION" 3 ;;
	pebble) part pebble "$PEBBLE_VERSION" 1 ;;
	pebble-challtestsrv) part pebble-challtestsrv "$PEBBLE_CHALLTESTSRV_VERSION" 1 ;;
	esac
}

# The longest first, so two lanes finish close together.
all="kube-apiserver vault tofu promtool goreleaser terraform helm etcd pebble pebble-challtestsrv"
parts=${TESTBED_PARTS:-$all}
for p in $parts; do
	case " $all " in *" $p "*) ;; *) say "unknown part $p (known: $all)"; exit 2 ;; esac
done
# TESTBED_JOBS parts build at once (default 2): module downloads and the
# single-threaded links of one part overlap the compiles of another
# (measured: etcd + terraform with a fresh build cache, 2m40s one at a time,
# 2m22s two at a time).
jobs=${TESTBED_JOBS:-2}
failed=0
for p in $parts; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n || failed=1
	done
	one "$p" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
	wait -n || failed=1
done
if [ "$failed" = 1 ]; then
	say "some parts failed to build; see the logs under $work"
	exit 1
fi
say "ready in $cache"
