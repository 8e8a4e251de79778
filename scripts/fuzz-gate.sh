#!/usr/bin/env bash
# Judges one fuzz run from its exit code and log (the last line is the
# summary `seeds=N violations=V ... broke=... undecided=U ...`).
#
#   scripts/fuzz-gate.sh safe CODE LOG       # must exit 0, undecided within
#                                            # the bound below
#   scripts/fuzz-gate.sh incorrect CODE LOG  # must be caught: exit 1 and broke=
#                                            # naming a checker invariant
#
# A harness panic (fuzz exit 3) is a failure of the harness, never a catch.
# Exit 0 when the gate holds, 1 otherwise (with the reason on stderr).
set -euo pipefail
kind=$1 code=$2 log=$3
summary=$(tail -1 "$log")
invariants='election_safety|lease_exclusivity|no_lost_writes|linearizability|log_agreement|convergence|minority_never_acknowledges|minority_fails_fast|bounded_elections|rejoin_without_election|progress|driver_contract'
fail() { echo "FAIL: $*" >&2; echo "  $summary" >&2; exit 1; }
[ "$code" -eq 3 ] && fail "the harness panicked (fuzz exit 3): a simulator bug, not a verdict"
case "$kind" in
  safe)
    [ "$code" -eq 0 ] || fail "safe mode fuzz exited $code (1: an invariant broke)"
    # Undecided seeds: none, except a bounded share left undecided by the
    # two minority checks alone, for one structural reason:
    # a minority window in which no write reached the minority (after the
    # bound X = 1.1 s, for minority_fails_fast). A flapping link cuts a node
    # off for one flap (60-95 ms) again and again; when the node led in the
    # previous flap, every client homed on it is still waiting (1 s timeout)
    # for a write it sent then, so no new write is invoked in the next short
    # window; likewise a partition that outlasts X by a few hundred ms may
    # see no write to its minority after X. Such a window has nothing to
    # judge (unknown, honestly); the seed's other windows are judged, and
    # every seed judges progress and bounded_elections in the recovery after
    # the heal. Measured on seeds 100000-109999: 313 seeds (p = 3.13 %),
    # minority_never_acknowledges on 218 and minority_fails_fast on 123.
    # The bound is the upper end of the binomial 99 % interval of that rate
    # for the seeds run (n p + 2.576 sqrt(n p (1-p)): 17 of 300, 45 of
    # 1000): a flat 4 % failed the CI's 300 seeds at 13 (4.3 %) while 1000
    # seeds from 1 gave 3.8 %, sampling noise around the same 3.1 %. A
    # structural change (the rate itself moving up) still fails. Any other
    # undecided check, or more than the bound, fails.
    seeds=$(echo "$summary" | sed -n 's/^seeds=\([0-9]*\) .*/\1/p')
    undecided=$(echo "$summary" | sed -n 's/.* undecided=\([0-9]*\) .*/\1/p')
    checks=$(echo "$summary" | sed -n 's/.* undecided_checks=\([^ ]*\) .*/\1/p')
    [ -n "$seeds" ] && [ -n "$undecided" ] || fail "no seeds= or undecided= in the summary"
    if [ "$undecided" -gt 0 ]; then
      echo "$checks" | grep -Eq '^(minority_fails_fast:[0-9]+,)?minority_never_acknowledges:[0-9]+$|^minority_fails_fast:[0-9]+$' \
        || fail "safe mode fuzz left seeds undecided by $checks: an undecided seed is no pass"
      bound=$(awk -v n="$seeds" 'BEGIN { p = 0.0313; printf "%d", n * p + 2.576 * sqrt(n * p * (1 - p)) }')
      [ "$undecided" -le "$bound" ] \
        || fail "safe mode fuzz left $undecided of $seeds seeds undecided (bound: $bound, the binomial 99 % upper end of 3.13 %)"
    fi
    ;;
  incorrect)
    [ "$code" -eq 1 ] || fail "fuzz exited $code: the incorrect mode was not caught"
    echo "$summary" | grep -Eq " broke=([a-z_]+:[0-9]+,)*($invariants):[0-9]+" \
      || fail "broke= names no checker invariant"
    ;;
  *) echo "usage: $0 safe|incorrect CODE LOG" >&2; exit 2 ;;
esac
