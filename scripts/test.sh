#!/usr/bin/env bash
# The project's one verify entry point: what CI runs (via .ci/run) and what a
# contributor runs before pushing. Needs root for the privileged lab tests; under
# CI=true those fail instead of skipping when root or a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -q -- -D warnings

step "docs (rustdoc warnings are errors: broken intra-doc links, missing docs on library crates)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

step "release build (binaries used by the simulator fuzz run and the lab)"
cargo build --release -q -p sim -p node -p lab --bins

step "unit and integration tests (privileged lab tests included)"
cargo test --workspace -q -- --test-threads=1

step "crash points: splitnode killed at every durable step, restarted, nothing acknowledged lost"
# The `failpoints` feature compiles the crash points in (off by default);
# crates/node/tests/crash_points.rs arms each one in turn.
cargo test -p node --features failpoints -q --test crash_points

step "netem backend inside User-Mode Linux: the fault set against the run's tolerances (~1 min)"
# This machine's kernel has no netem; scripts/netem-uml.sh boots one (installs
# Debian's user-mode-linux package when missing) and runs the fault-set test in it.
if [ "$(id -u)" = 0 ]; then
  scripts/netem-uml.sh
elif [ "${CI:-}" = true ]; then
  echo "netem-uml needs root (CI=true: failing instead of skipping)" >&2
  exit 1
else
  echo "SKIPPED: netem-uml needs root"
fi

step "simulator: a fixed seed set per mode"
fuzz=target/release/fuzz
# scripts/fuzz-gate.sh judges each run: the safe run must have no violation
# and no undecided seed except the bounded share (<= 4 %) the gate documents
# for the two minority checks; an incorrect mode counts as caught only with exit 1 and broke=
# naming a checker invariant (a harness panic, exit 3, is a harness failure).
set +e
"$fuzz" --seeds 300 --mode safe --nodes 3,5,7 --seed 1 >target/fuzz-safe.log 2>&1
code=$?
set -e
tail -1 target/fuzz-safe.log
scripts/fuzz-gate.sh safe $code target/fuzz-safe.log
for mode in timeout-failover unenforced-quorum one-way-quorum no-fencing; do
  set +e
  "$fuzz" --seeds 400 --mode "$mode" --nodes 3,5 --seed 1 >"target/fuzz-$mode.log" 2>&1
  code=$?
  set -e
  scripts/fuzz-gate.sh incorrect $code "target/fuzz-$mode.log"
  grep -m1 '^REPRODUCE WITH' "target/fuzz-$mode.log"
  tail -1 "target/fuzz-$mode.log"
done

step "simulator: same seed twice gives byte-identical traces"
"$fuzz" --seed 42 --nodes 5 --trace target/trace-a.txt >/dev/null
"$fuzz" --seed 42 --nodes 5 --trace target/trace-b.txt >/dev/null
cmp target/trace-a.txt target/trace-b.txt
echo "traces identical ($(wc -l <target/trace-a.txt) lines)"

step "lab: the CI scenario subset (safe -> valid), the whole museum (incorrect modes -> invalid) and its safe twins; a skipped museum piece fails (--strict)"
# Use exactly the binaries built above (run-scenarios.sh would otherwise
# build its own).
SPLITLAB=target/release/splitlab SPLITNODE=target/release/splitnode \
  scripts/run-scenarios.sh --ci --strict --runs-dir target/ci-scenarios \
    --junit target/ci-scenarios/junit.xml

step "benchmarks compile and run once (criterion --test; root: they build netns clusters)"
SPLITNODE_BIN=target/release/splitnode cargo bench -q --workspace --bench '*' -- --test
