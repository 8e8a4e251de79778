#!/usr/bin/env bash
# Runs the scenario library and asserts every scenario's expectation:
# the safe library must be judged valid, every museum piece (an incorrect
# mode against the scenario that breaks it) invalid for the expected reason.
#
#   scripts/run-scenarios.sh            # the whole library + museum (~15 min)
#   scripts/run-scenarios.sh --ci       # a CI-sized subset + the whole museum
#                                       # + every museum piece's safe twin
#   scripts/run-scenarios.sh lab/scenarios/bridge.toml ...   # just these
#
# Options: --runs-dir DIR (default runs/scenarios-<time>).
# Env: SPLITLAB / SPLITNODE to use prebuilt binaries (default target/release).
# A scenario whose fault this kernel cannot apply is reported SKIPPED (with
# the reason) and never counts as a pass; it fails the script only under
# --strict. Exit 0 when every expectation held, 1 otherwise. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

ci=0
strict=0
runs_dir="runs/scenarios-$(date -u +%Y%m%d-%H%M%S)"
scenarios=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) ci=1 ;;
    --strict) strict=1 ;;
    --runs-dir) runs_dir="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) scenarios+=("$1") ;;
  esac
  shift
done

if [ "$(id -u)" -ne 0 ]; then
  echo "run-scenarios: the lab needs root (network namespaces)" >&2
  exit 2
fi

splitlab=${SPLITLAB:-target/release/splitlab}
splitnode=${SPLITNODE:-target/release/splitnode}
if [ -z "${SPLITLAB:-}" ] || [ ! -x "$splitlab" ] || [ ! -x "$splitnode" ]; then
  echo "run-scenarios: building release binaries (splitnode, splitlab) ..."
  cargo build --release -q -p node -p lab
fi

if [ ${#scenarios[@]} -eq 0 ]; then
  if [ $ci -eq 1 ]; then
    # One of each family: the motivating story, leader in minority, asymmetric,
    # partial partition, process pause and kill, plus the whole museum.
    for name in us-east-isolated leader-in-minority leader-cannot-receive partial-partition \
                leader-paused kill-restart cluster-5; do
      scenarios+=("lab/scenarios/$name.toml")
    done
    # Each museum piece's safe twin (its `safe_twin`), so a pass of the
    # incorrect mode always stands next to the same story judged valid.
    for piece in lab/scenarios/museum/*.toml; do
      twin=$(sed -n 's/.*safe_twin = "\([^"]*\)".*/\1/p' "$piece" | head -1)
      if [ -z "$twin" ]; then
        echo "run-scenarios: $piece names no safe_twin" >&2
        exit 2
      fi
      twin=$(cd "$(dirname "$piece")" && realpath --relative-to="$OLDPWD" "$twin")
      case " ${scenarios[*]} " in
        *" $twin "*) ;;
        *) scenarios+=("$twin") ;;
      esac
    done
  else
    scenarios+=(lab/scenarios/*.toml)
  fi
  scenarios+=(lab/scenarios/museum/*.toml)
fi

mkdir -p "$runs_dir"
summary="$runs_dir/summary.txt"
: >"$summary"
passed=0; failed=0; skipped=0
for scenario in "${scenarios[@]}"; do
  name=$(basename "$scenario" .toml)
  echo "==> $scenario"
  log="$runs_dir/$name.log"
  set +e
  "$splitlab" run "$scenario" --runs-dir "$runs_dir" --splitnode "$splitnode" >"$log" 2>&1
  code=$?
  set -e
  run_dir=$(sed -n 's/^report: \(.*\)\/report\.html$/\1/p' "$log" | tail -1)
  results="$run_dir/results.json"
  verdict=$(sed -n 's/^  "verdict": "\(.*\)",$/\1/p' "$results" 2>/dev/null | head -1)
  if [ -z "$run_dir" ] || [ ! -f "$results" ]; then
    status="ERROR (exit $code, no results; see $log)"
    failed=$((failed + 1))
  elif [ "$verdict" = "skipped" ]; then
    reason=$(sed -n 's/^  "skipped_reason": "\(.*\)",$/\1/p' "$results" | head -1)
    status="SKIPPED: $reason"
    skipped=$((skipped + 1))
  elif grep -q '"expectation_met": true' "$results"; then
    status="ok ($verdict, as expected)"
    passed=$((passed + 1))
  else
    detail=$(sed -n 's/^  "expectation_detail": "\(.*\)",$/\1/p' "$results" | head -1)
    status="FAILED: $verdict (exit $code): $detail"
    failed=$((failed + 1))
  fi
  grep -E '^ +#[0-9]+ |leader before' "$log" | sed 's/^/    /' || true
  printf '%-34s %s\n' "$name" "$status" | tee -a "$summary"
done

# Nothing may be left behind (namespaces, processes): clean by journal.
"$splitlab" clean >/dev/null 2>&1 || true

echo
echo "scenarios: $passed as expected, $failed failed, $skipped skipped (runs in $runs_dir)"
if [ $failed -gt 0 ] || { [ $strict -eq 1 ] && [ $skipped -gt 0 ]; }; then
  exit 1
fi
