#!/usr/bin/env bash
# Installs the programs the tests run when they are missing, so that `dotnet test MtcpActors.sln` sets up a fresh
# machine by itself: iproute2 (network namespaces), nftables (loss and partitions), tshark (capture decoding), curl,
# OpenBSD netcat (`nc -N` for half-close) and redis-tools (a one-shot redis-cli). Run before each test project by
# Directory.Build.targets; test projects run in parallel, so one installs at a time and the others find it done.
# Never fails the test run: without root, or without a package source, it says what is missing and the tests that
# need it fail with a message naming the package.
set -uo pipefail

missing() {
    local need=()
    command -v ip >/dev/null 2>&1 || need+=(iproute2)
    command -v nft >/dev/null 2>&1 || need+=(nftables)
    command -v tshark >/dev/null 2>&1 || need+=(tshark)
    command -v curl >/dev/null 2>&1 || need+=(curl)
    nc -h 2>&1 | grep -q -- '-N' || need+=(netcat-openbsd)
    command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
    echo "${need[*]}"
}

need=$(missing)
[[ -z $need ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "not root: cannot install $need; the tests that need them will say so" >&2
    exit 0
fi

exec 9>/tmp/mtcp-test-tools.lock
flock 9
need=$(missing)
[[ -z $need ]] && exit 0
echo "installing the test tools: $need"
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
# shellcheck disable=SC2086 # one word per package
if ! log=$({ apt-get update -qq && apt-get install -y -qq --no-install-recommends $need; } 2>&1); then
    echo "$log" >&2
    echo "could not install $need; the tests that need them will say so" >&2
fi
exit 0
