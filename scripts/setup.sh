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
set -euo pipefail

declare -A tool_of=(
  [iproute2]=ip
  [nftables]=nft
  [iptables]=iptables-restore
  [etcd-server]=etcd
)

missing=()
for package in "${!tool_of[@]}"; do
  if ! command -v "${tool_of[$package]}" >/dev/null 2>&1 \
     && ! [ -x "/usr/sbin/${tool_of[$package]}" ] && ! [ -x "/sbin/${tool_of[$package]}" ]; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: lab packages already installed (iproute2 nftables iptables etcd-server)"
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
echo "setup: done"
