#!/usr/bin/env bash
# Installs the Debian packages the lab needs. Idempotent: does nothing when
# every tool is already present; otherwise runs `apt-get update` once and
# installs only what is missing. Run it as root (as in a container, where
# there is usually no sudo); as another user it uses sudo when there is one,
# and otherwise says what to run as root.
#
#   iproute2  ip / tc (namespaces, tbf rate limits, netem where the kernel has it)
#   nftables  nft (drop, loss, duplicate, corrupt: one table per run per namespace)
#   iptables  iptables-restore (NFQUEUE target: the kernel lacks nft `queue`)
#   etcd-server  etcd 3.4, the baseline the benches (benches/, splitlab bench) compare against
#   redis-server, redis-sentinel  Redis 7 and Sentinel (lab/systems/redis.toml)
#
# Debian starts Redis and Sentinel as services on install (where systemd
# runs); the lab needs neither: it starts its own in its namespaces, on the
# nodes' addresses, so a host service on 127.0.0.1:6379/26379 never collides
# with it. They are stopped and disabled all the same, so nothing runs that
# nobody asked for.
set -euo pipefail

declare -A tool_of=(
  [iproute2]=ip
  [nftables]=nft
  [iptables]=iptables-restore
  [etcd-server]=etcd
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
)

# The packaged Redis services, stopped and disabled where systemd runs.
quiet_packaged_services() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    "$@" systemctl disable --now redis-server.service redis-sentinel.service >/dev/null 2>&1 || true
  fi
}

missing=()
for package in "${!tool_of[@]}"; do
  if ! command -v "${tool_of[$package]}" >/dev/null 2>&1 \
     && ! [ -x "/usr/sbin/${tool_of[$package]}" ] && ! [ -x "/sbin/${tool_of[$package]}" ]; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: lab packages already installed (iproute2 nftables iptables etcd-server redis-server redis-sentinel)"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "setup: missing packages: ${missing[*]}; no sudo here: as root, run" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    echo "(or run this script as root: su -c scripts/setup.sh)" >&2
    exit 2
  fi
fi

echo "setup: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
quiet_packaged_services "${as_root[@]}"
echo "setup: done"
