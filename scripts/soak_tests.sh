#!/usr/bin/env bash
# How often does the suite fail? Runs the README's test command N times, each in a fresh
# clone of one commit (its own .venv, set up from scratch, as CI does), optionally with
# CPU-burning processes beside it, then prints the passes, the failures by test and the
# slowest tests.
#
#   bash scripts/soak_tests.sh                      # 5 runs of the whole suite
#   bash scripts/soak_tests.sh --runs 10 --burn 2   # 10 runs, two busy loops beside them
#   bash scripts/soak_tests.sh --runs 20 -- tests/test_web_browser.py   # a part of it
#
# Options: --runs N (5), --burn K (0 busy processes), --commit REV (HEAD), --keep (keep
# the clones and logs; they are removed otherwise, but for the logs of failed runs).
# Arguments after -- go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5 burn=0 commit=HEAD keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --burn) burn=$2; shift 2 ;;
        --commit) commit=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --) shift; break ;;
        *) echo "soak_tests.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done
rev=$(git rev-parse --verify "$commit^{commit}")
work=$(mktemp -d -t painterly-soak.XXXXXX)
burners=()
finish() {
    for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$keep" = 0 ]; then rm -rf "$work"; else echo "clones and logs kept in $work"; fi
}
trap finish EXIT
for _ in $(seq 1 "$burn"); do
    python3 -c "while True: pass" &
    burners+=($!)
done

echo "soak: $runs fresh-clone runs of ${rev:0:10}, $burn busy processes beside them, in $work"
for i in $(seq 1 "$runs"); do
    clone="$work/run$i"
    git clone -q . "$clone"
    git -C "$clone" checkout -q "$rev"
    start=$(date +%s)
    if (cd "$clone" && CI=true bash .ci/run --junitxml="$work/run$i.xml" "$@" \
        >"$work/run$i.log" 2>&1 </dev/null); then
        verdict=pass
    else
        verdict=FAIL
        # A failing run's log and report outlive the clean-up: they say what broke.
        kept=${kept:-$(mktemp -d -t painterly-soak-failed.XXXXXX)}
        cp "$work/run$i.log" "$kept/" && cp "$work/run$i.xml" "$kept/" 2>/dev/null || true
        echo "run $i failed: its log is kept in $kept/run$i.log"
    fi
    summary=$(grep -E "^[0-9]+ (passed|failed)|^=+ .*(passed|failed)" "$work/run$i.log" | tail -1)
    echo "run $i: $verdict in $(( $(date +%s) - start )) s: ${summary:-no pytest summary}"
    [ "$keep" = 1 ] || rm -rf "$clone"
done

python3 - "$work" "$runs" <<'EOF'
import statistics
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

work, runs = Path(sys.argv[1]), int(sys.argv[2])
times, failures, green = defaultdict(list), defaultdict(int), 0
for i in range(1, runs + 1):
    path = work / f"run{i}.xml"
    if not path.exists():
        print(f"run {i}: no test report (setup failed?); see run{i}.log with --keep")
        continue
    failed = False
    for case in ET.parse(path).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        times[name].append(float(case.get("time", 0)))
        if case.find("failure") is not None or case.find("error") is not None:
            failures[name] += 1
            failed = True
    green += not failed
print(f"\n{green} of {runs} runs passed")
for name, count in sorted(failures.items(), key=lambda kv: -kv[1]):
    print(f"  failed {count} of {runs}: {name}")
print("slowest tests (median s, max s over the runs):")
slowest = sorted(times.items(), key=lambda kv: -statistics.median(kv[1]))[:12]
for name, ts in slowest:
    print(f"  {statistics.median(ts):7.1f} {max(ts):7.1f}  {name}")
EOF
