#!/usr/bin/env bash
# Installs the Debian packages the lab needs. Idempotent: does nothing when
# every tool is already present; otherwise runs `apt-get update` once and
# installs only what is missing. Needs root (the lab needs root anyway).
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
  echo "setup: lab packages already installed (iproute2 nftables iptables)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run this script as root to install them" >&2
  exit 2
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
