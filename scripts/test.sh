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

step "simulator: a fixed seed set per mode"
fuzz=target/release/fuzz
"$fuzz" --seeds 300 --mode safe --nodes 3,5,7 --seed 1
for mode in timeout-failover unenforced-quorum one-way-quorum no-fencing; do
  # Each incorrect strategy must be caught: the fuzzer exits 1 when it finds a violation.
  if "$fuzz" --seeds 1000 --mode "$mode" --nodes 3,5 --seed 1 >"target/fuzz-$mode.log" 2>&1; then
    echo "FAIL: mode $mode survived 1000 seeds; the simulator should have caught it" >&2
    tail -5 "target/fuzz-$mode.log" >&2
    exit 1
  fi
  grep -m1 '^REPRODUCE WITH' "target/fuzz-$mode.log"
  tail -1 "target/fuzz-$mode.log"
done

step "simulator: same seed twice gives byte-identical traces"
"$fuzz" --seed 42 --nodes 5 --trace target/trace-a.txt >/dev/null
"$fuzz" --seed 42 --nodes 5 --trace target/trace-b.txt >/dev/null
cmp target/trace-a.txt target/trace-b.txt
echo "traces identical ($(wc -l <target/trace-a.txt) lines)"

step "lab: the CI scenario subset (safe -> valid) and the whole museum (incorrect modes -> invalid)"
# Use exactly the binaries built above (run-scenarios.sh would otherwise
# build its own).
SPLITLAB=target/release/splitlab SPLITNODE=target/release/splitnode \
  scripts/run-scenarios.sh --ci --runs-dir target/ci-scenarios

step "benchmarks compile and run once (criterion --test; root: they build netns clusters)"
SPLITNODE_BIN=target/release/splitnode cargo bench -q --workspace --bench '*' -- --test
