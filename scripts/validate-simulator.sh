#!/usr/bin/env bash
# Holds the simulator against measurement: for each shipped scenario, `run` measures it and
# `simulate` models it over the round trip the measurement found, and `report MEASURED
# SIMULATED` lays them side by side into reports/validation/<name>/ (validation.html,
# validation.md and validation.json, with both results.json). reports/validation/README.md
# sums them up, goal by goal, the shipped scenarios apart from the others. Each
# scenario is measured three times, so that a figure is judged against the spread of its
# repetitions (the machine's noise), not one draw of it.
#
# The model's costs are calibrated beside the measurements: `pushpull calibrate` before them,
# halfway through and after them, into reports/validation/calibrations/<day>/, and the three
# fitted together (calibration.json there) price the scenarios measured with them. Each page
# keeps the day it was measured (<name>/calibrated-beside), so --model-only prices it again on
# its own calibration's runs after a change to the model. A calibration from another day,
# even of this machine, prices its operations differently enough (here, five days apart, 1.1
# to 1.9 times) to move the CPU goals by more than the model's own errors do. All of it takes
# about 75 minutes on two cores for the six shipped scenarios (three eight-point calibrations
# among them); nothing else should run meanwhile, since the measured CPU is
# part of what is compared.
#
#   scripts/validate-simulator.sh                      # all of them
#   scripts/validate-simulator.sh quickstart           # just one (the summary is rewritten all the same)
#   scripts/validate-simulator.sh my/own.toml          # a scenario of yours, into reports/validation/own/
#   scripts/validate-simulator.sh --model-only [NAME]  # simulate again beside the measurements
#                                                      # already there (after a change to the model;
#                                                      # a page whose figures come out the same is
#                                                      # left as it was)
#   CALIBRATION=FILE scripts/validate-simulator.sh ... # model on FILE's costs; calibrate nothing
set -euo pipefail
cd "$(dirname "$0")/.."

measure=1
if [ "${1:-}" = --model-only ]; then
  measure=0
  shift
fi
scenarios=(quickstart chat order-feed zapier-waste clients-sweep payments-outage)
chosen=("${@:-${scenarios[@]}}")
repeat=3

cargo build --release --quiet
bin=target/release/pushpull
out=reports/validation
mkdir -p "$out"

# The measurements of this invocation are calibrated beside in calibrations/<day>/ (a second
# batch on one day gets the hour too).
batch=$(date -u +%Y-%m-%d)
[ ! -d "$out/calibrations/$batch" ] || batch=$(date -u +%Y-%m-%dT%H%MZ)

# Calibration runs, kept without what the fit does not read (time series, per-topic tallies,
# latency histograms): a tenth of the size. The runs that `calibrate` measures after the others
# (for memory alone, the webhook sender's and the pollers' pages; for the CPU alone, the webhook
# sender's retries and the replies over a round trip) go beside them as <when>-memory.json,
# <when>-pages.json, <when>-failures.json and <when>-round-trip.json (none in the days calibrated
# before their runs were measured).
calibrate() {
  local runs
  runs=$(mktemp -d)
  echo "== calibrating ($1)" >&2
  "$bin" calibrate --runs "$runs" --out "$runs/calibration.json" --quiet
  mkdir -p "$out/calibrations/$batch"
  python3 -c "
import json, sys
for source, kept in zip(sys.argv[1::2], sys.argv[2::2]):
    r = json.load(open(source))
    for p in r['points']:
        for m in p['modes']:
            m['timeseries'] = []
            m['latency_over_time'] = []
            m['deliveries']['by_topic'] = []
            for part in m.values():
                if isinstance(part, dict) and 'histogram' in part:
                    part['histogram'] = ''
    json.dump(r, open(kept, 'w'), indent=1)" "$runs/results.json" "$out/calibrations/$batch/$1.json" \
    "$runs/memory/results.json" "$out/calibrations/$batch/$1-memory.json" \
    "$runs/pages/results.json" "$out/calibrations/$batch/$1-pages.json" \
    "$runs/failures/results.json" "$out/calibrations/$batch/$1-failures.json" \
    "$runs/round-trip/results.json" "$out/calibrations/$batch/$1-round-trip.json"
  rm -rf "$runs"
}
if [ $measure = 1 ] && [ -z "${CALIBRATION:-}" ]; then
  calibrate before
fi

measured=0
# A name is a shipped scenario; a path ending in .toml is anyone's, written under its file's name.
file() {
  case $1 in
    *.toml) echo "$1" ;;
    *) echo "scenarios/$1.toml" ;;
  esac
}

for chosen_one in "${chosen[@]}"; do
  name=$(basename "$chosen_one" .toml)
  dir="$out/$name"
  if [ $measure = 1 ] && [ -z "${CALIBRATION:-}" ] && [ ${#chosen[@]} -gt 1 ] && [ $measured = $((${#chosen[@]} / 2)) ]; then
    calibrate halfway
  fi
  measured=$((measured + 1))
  echo "== $name" >&2
  if ! "$bin" simulate "$(file "$chosen_one")" --round-trip 1ms --out "$(mktemp -d)" --quiet 2>"$dir.why"; then
    # Refused (faults are not modelled yet, say): keep the reason for the summary.
    mkdir -p "$dir"
    mv "$dir.why" "$dir/not-simulated.txt"
    continue
  fi
  rm -f "$dir.why" "$dir/not-simulated.txt"
  if [ $measure = 1 ]; then
    # Exit code 3 (a threshold failed) still leaves results worth comparing.
    "$bin" run "$(file "$chosen_one")" --repeat $repeat --out "$dir/measured" --quiet || [ $? -eq 3 ]
    if [ -z "${CALIBRATION:-}" ]; then
      echo "$batch" >"$dir/calibrated-beside"
    else
      rm -f "$dir/calibrated-beside"
    fi
  elif [ ! -f "$dir/measured/results.json" ]; then
    echo "$dir/measured/results.json: no measurement to simulate beside; run without --model-only" >&2
    exit 1
  fi
done

if [ $measure = 1 ] && [ -z "${CALIBRATION:-}" ]; then
  calibrate after
fi

# The calibration a page is modelled on, into $calibration: CALIBRATION, or the fit of the
# runs taken beside its measurement (fitted once per invocation, so that a change to the fit
# reaches it).
fitted=()
calibration_of() {
  if [ -n "${CALIBRATION:-}" ]; then
    calibration=$CALIBRATION
    return
  fi
  if [ ! -f "$1/calibrated-beside" ]; then
    echo "$1: no calibration taken beside its measurement; measure it again, or name one with CALIBRATION=FILE" >&2
    exit 1
  fi
  local day runs
  day=$(cat "$1/calibrated-beside")
  calibration=$out/calibrations/$day/calibration.json
  if [[ " ${fitted[*]} " != *" $day "* ]]; then
    froms=()
    for runs in before before-memory before-pages before-failures before-round-trip halfway halfway-memory \
      halfway-pages halfway-failures halfway-round-trip after after-memory after-pages after-failures \
      after-round-trip; do
      [ ! -f "$out/calibrations/$day/$runs.json" ] || froms+=(--from "$out/calibrations/$day/$runs.json")
    done
    "$bin" calibrate "${froms[@]}" --out "$calibration" --quiet
    fitted+=("$day")
  fi
}

for chosen_one in "${chosen[@]}"; do
  name=$(basename "$chosen_one" .toml)
  dir="$out/$name"
  [ -f "$dir/measured/results.json" ] && [ ! -f "$dir/not-simulated.txt" ] || continue
  echo "== simulating $name" >&2
  # The model's network: the median of the round trips the measurement found before each mode.
  round_trip=$(python3 -c "
import json, statistics, sys
r = json.load(open(sys.argv[1]))
modes = r.get('modes', []) + [m for p in r.get('points', []) for m in p['modes']]
print('%.3fms' % statistics.median(m['theory']['given']['round_trip_ms'] for m in modes))" "$dir/measured/results.json")
  calibration_of "$dir"
  modelled=$(mktemp -d)
  "$bin" simulate "$(file "$chosen_one")" --round-trip "$round_trip" --calibration "$calibration" --clients-beside-server \
    --out "$modelled" --quiet || [ $? -eq 3 ]
  # A model that gives the page the same figures leaves it as it was, with the machine, commit
  # and time it was modelled at (what the model's figures do not depend on); one that gives
  # other figures replaces it.
  if ! python3 -c "
import json, sys
def figures(path):
    r = json.load(open(path))
    r.pop('environment', None)
    return r
sys.exit(figures(sys.argv[1]) != figures(sys.argv[2]))" "$modelled/results.json" "$dir/simulated/results.json" 2>/dev/null; then
    rm -rf "$dir/simulated"
    mv "$modelled" "$dir/simulated"
  else
    rm -rf "$modelled"
  fi
  echo "$calibration" >"$dir/modelled-on"
  "$bin" report "$dir/measured/results.json" "$dir/simulated/results.json" --out "$dir" >/dev/null
done

{
  echo "# The simulator beside measurement"
  echo
  echo "Generated by \`scripts/validate-simulator.sh\` (never edited by hand): each shipped scenario"
  echo "measured three times by \`pushpull run\` and modelled by \`pushpull simulate\` over the round trip the"
  echo "measurement found, every headline figure side by side with its goal. The machine and the"
  echo "calibration each used are in its page."
  echo
  echo "The model's costs: each page's own calibration, \`pushpull calibrate\` run beside its measurements"
  echo "(before them, halfway through and after), all fitted together: the runs and their fit are in"
  echo "[calibrations/](calibrations), one folder a day. Each line names the calibration its page was modelled on."
  echo
  # A page's line: its verdict and the calibration it was modelled on.
  line() {
    local on
    on=$(cat "$out/$1/modelled-on" 2>/dev/null || echo "an unrecorded calibration")
    echo "- [$1]($1/validation.md): $(grep -m1 '^The model met' "$out/$1/validation.md") Modelled on ${on#"$out"/}."
  }
  for name in "${scenarios[@]}"; do
    if [ -f "$out/$name/not-simulated.txt" ]; then
      echo "- $name: not simulated: $(sed 's/^error: //' "$out/$name/not-simulated.txt" | head -1)"
    elif [ -f "$out/$name/validation.md" ]; then
      line "$name"
    fi
  done
  others=()
  for page in "$out"/*/validation.md; do
    name=$(basename "$(dirname "$page")")
    [[ " ${scenarios[*]} " == *" $name "* ]] || others+=("$name")
  done
  if [ ${#others[@]} -gt 0 ]; then
    echo
    echo "Other scenarios validated here:"
    echo
    for name in "${others[@]}"; do
      line "$name"
    done
  fi
  echo
  echo "## Goal by goal"
  echo
  echo "Each goal summed over the pages' validation.json: met, neither (outside by less than its"
  echo "noise) and missed, the shipped scenarios apart from the others; and for a figure, how far the"
  echo "model comes from the measurement over every page, as the root mean square of ln(simulated /"
  echo "measured) and the worst ratio."
  echo
  python3 - "$out" "${scenarios[@]}" <<'PY'
import glob, json, math, os, sys

out, shipped = sys.argv[1], set(sys.argv[2:])
# (name, test of a check) for the figures held to a goal; then knees and fates. Each row's
# goal is read from its checks (validation.json carries the goal each was judged against).
kinds = [
    ("pollers' median latency", lambda c: c["figure"] == "latency.p50" and "share" in c["goal"]),
    ("pollers' requests per event", lambda c: c["figure"] == "requests_per_event"),
    ("pollers' empty share", lambda c: c["figure"] == "empty_share"),
    ("push modes' median latency", lambda c: c["figure"] == "latency.p50" and "ms" in c["goal"]),
    ("CPU per 1,000 deliveries", lambda c: c["figure"] == "cpu_ms_per_1k"),
    ("memory per client", lambda c: c["figure"] == "memory_per_client"),
]
KNEES, FATES = "knee of p99 in a sweep", "late, dead-lettered, lost, duplicates"
rows = {name: {True: [], False: []} for name, _ in kinds}
rows[KNEES] = {True: [], False: []}
rows[FATES] = {True: [], False: []}
goals = {name: set() for name in rows}
for path in sorted(glob.glob(os.path.join(out, "*", "validation.json"))):
    page = os.path.basename(os.path.dirname(path))
    v = json.load(open(path))
    for c in v["checks"]:
        if not c["goal"]:
            continue
        for name, test in kinds:
            if test(c):
                ratio = None
                if c["measured"] and c["simulated"] is not None and c["measured"] > 0 and c["simulated"] > 0:
                    ratio = c["simulated"] / c["measured"]
                rows[name][page in shipped].append((c["verdict"], ratio))
                goals[name].add(json.dumps(c["goal"], sort_keys=True))
    for name, key in ((KNEES, "knees"), (FATES, "fates")):
        rows[name][page in shipped] += [(k["verdict"], None) for k in v[key]]
        goals[name].update(json.dumps(k["goal"], sort_keys=True) for k in v[key])

def goal_words(goal):
    (kind, value), = json.loads(goal).items()
    return f"± {value * 100:.0f}%" if kind == "share" else f"± {value:g} {kind}"

def label(name):
    # Every page of one validation holds a kind to one goal; several would be named each.
    return ", ".join([name] + [goal_words(g) for g in sorted(goals[name])])

def tally(checks):
    if not checks:
        return "—"
    n = lambda verdict: sum(1 for v, _ in checks if v == verdict)
    return f"{n('met')} / {n('within_noise')} / {n('missed')} of {len(checks)}"

print("| goal | shipped: met / neither / missed | others: met / neither / missed | rms ln ratio | worst ratio |")
print("|---|---:|---:|---:|---:|")
total = {True: [], False: []}
for name, by in rows.items():
    ratios = [r for side in by.values() for _, r in side if r]
    rms = f"{math.sqrt(sum(math.log(r) ** 2 for r in ratios) / len(ratios)):.3f}" if ratios else "—"
    worst = f"{max(ratios, key=lambda r: abs(math.log(r))):.2f}×" if ratios else "—"
    print(f"| {label(name)} | {tally(by[True])} | {tally(by[False])} | {rms} | {worst} |")
    for side in (True, False):
        total[side] += by[side]
print(f"| every goal | {tally(total[True])} | {tally(total[False])} | | |")
PY
} >"$out/README.md"
echo "summary: $out/README.md" >&2
