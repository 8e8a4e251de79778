#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, check the
# kernel, and run the default scenario to its report. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p node -p lab
target/release/splitlab doctor
exec target/release/splitlab run "${1:-lab/scenarios/us-east-isolated.toml}"
