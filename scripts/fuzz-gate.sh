#!/usr/bin/env bash
# Judges one fuzz run from its exit code and log (the last line is the
# summary `seeds=N violations=V ... broke=... undecided=U ...`).
#
#   scripts/fuzz-gate.sh safe CODE LOG       # must exit 0 with undecided=0
#   scripts/fuzz-gate.sh incorrect CODE LOG  # must be caught: exit 1 and broke=
#                                            # naming a checker invariant
#
# A harness panic (fuzz exit 3) is a failure of the harness, never a catch.
# Exit 0 when the gate holds, 1 otherwise (with the reason on stderr).
set -euo pipefail
kind=$1 code=$2 log=$3
summary=$(tail -1 "$log")
invariants='election_safety|lease_exclusivity|no_lost_writes|linearizability|log_agreement|convergence|minority_never_acknowledges|minority_fails_fast|bounded_elections|progress|driver_contract'
fail() { echo "FAIL: $*" >&2; echo "  $summary" >&2; exit 1; }
[ "$code" -eq 3 ] && fail "the harness panicked (fuzz exit 3): a simulator bug, not a verdict"
case "$kind" in
  safe)
    [ "$code" -eq 0 ] || fail "safe mode fuzz exited $code (1: an invariant broke)"
    echo "$summary" | grep -q ' undecided=0 ' \
      || fail "safe mode fuzz left seeds undecided (see undecided_checks=): an undecided seed is no pass"
    ;;
  incorrect)
    [ "$code" -eq 1 ] || fail "fuzz exited $code: the incorrect mode was not caught"
    echo "$summary" | grep -Eq " broke=([a-z_]+:[0-9]+,)*($invariants):[0-9]+" \
      || fail "broke= names no checker invariant"
    ;;
  *) echo "usage: $0 safe|incorrect CODE LOG" >&2; exit 2 ;;
esac
