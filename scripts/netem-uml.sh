#!/usr/bin/env bash
# The probe-measured fault set on the netem backend, inside a netem-capable
# kernel: User-Mode Linux (Debian `user-mode-linux`, kernel 6.1 with
# sch_netem), booted as an ordinary process on this machine's own root file
# system through hostfs (see PLATFORM.md §9 of the design notes). Runs the
# privileged test `fault_set::t95_fault_set_is_achieved_within_tolerance`
# (loss 20/50 %, delay 50 ms ± 10 ms, duplicate 10 %, reorder 20 %,
# rate 1 mbit, cuts, both one-way shapes) and holds it to the run's
# tolerances; exits nonzero when any fault is outside them.
#
# nft inside UML: Debian's UML kernel is built without CONFIG_NF_TABLES_IPV4
# (also without _INET, _IPV6, _NETDEV; only the bridge family), so every
# `table ip ...` fails with EOPNOTSUPP, and so does iptables-nft (the
# default iptables here). netlab then cuts whole links with netem
# `loss 100%` on the sender's veth; one-plane and data-only cuts need nft
# and are reported "n/a" (not applied) in the table. iptables-legacy
# (x_tables) does load there, but netem already covers delay, so NFQUEUE
# is not needed.
#
# Usage (as root, about a minute): scripts/netem-uml.sh
# scripts/test.sh runs it as a CI step. The fault-set test re-measures a fault
# that misses its 99 % interval once, so a chance miss does not fail CI.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "netem-uml: needs root (namespaces inside UML, apt-get)" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/netem-uml.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! command -v linux.uml >/dev/null; then
  apt-get install -y --no-install-recommends user-mode-linux kmod
fi
uml_modules=$(ls -d /usr/lib/uml/modules/* | head -n1)
mkdir -p /lib/modules
ln -sfn "$uml_modules" "/lib/modules/$(basename "$uml_modules")"

# Build on the host; the binaries run unchanged inside (same file system).
test_bin=$(cd "$repo" && cargo test -p lab --test netlab_privileged --no-run \
  --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "netlab_privileged" and m.get("executable"):
        print(m["executable"])')
[ -x "$test_bin" ] || { echo "netem-uml: could not build the privileged tests" >&2; exit 1; }

cat >"$work/init.sh" <<EOF
#!/bin/sh
# PID 1 inside UML: mount what the lab needs, load the modules, run the test.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmpfs /run
for m in veth sch_netem sch_tbf nfnetlink nf_tables nft_numgen nfnetlink_queue \
         x_tables ip_tables iptable_mangle xt_NFQUEUE; do
  modprobe \$m 2>/dev/null
done
cd "$repo/crates/lab"
"$test_bin" --exact fault_set::t95_fault_set_is_achieved_within_tolerance \
  --nocapture --test-threads=1 >"$work/out" 2>&1
echo \$? >"$work/rc"
poweroff -f
EOF
chmod +x "$work/init.sh"

echo "netem-uml: booting $(basename "$uml_modules") User-Mode Linux ..."
# UML opens its own temporary files; keep them off /run and /dev/shm.
TMPDIR=/tmp timeout 900 linux.uml mem=1G rootfstype=hostfs rootflags=/ rw \
  init="$work/init.sh" con0=fd:0,fd:1 con=null </dev/null >"$work/console" 2>&1 || true

if [ ! -f "$work/rc" ]; then
  echo "netem-uml: the test did not finish inside UML; console tail:" >&2
  tail -n 30 "$work/console" >&2
  exit 1
fi
grep -E '^(\||fault set)|panicked|test result' "$work/out" || cat "$work/out"
rc=$(cat "$work/rc")
if [ "$rc" != 0 ]; then
  grep -v '^ *[0-9]*: \|^ *at ' "$work/out" | tail -n 25 >&2
  echo "netem-uml: FAILED (exit $rc): a fault was outside its tolerance inside UML" >&2
  exit 1
fi
echo "netem-uml: every fault within tolerance on the netem backend"
