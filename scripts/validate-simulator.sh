#!/usr/bin/env bash
# Holds the simulator against measurement: for each shipped scenario, `run` measures it and
# `simulate` models it over the round trip the measurement found, and `report MEASURED
# SIMULATED` lays them side by side into reports/validation/<name>/ (validation.html and
# validation.md, with both results.json). reports/validation/README.md sums them up. Each
# scenario is measured three times, so that a figure is judged against the spread of its
# repetitions (the machine's noise), not one draw of it.
#
# The model's costs are calibrated here, beside the measurements: `pushpull calibrate` before
# them, halfway through and after them, the three fitted together into
# reports/validation/calibration.json (their runs kept in reports/validation/calibration-runs/
# and fitted again by --model-only, so that a change to the model prices them anew). A
# calibration from another day, even of this machine, prices its operations differently
# enough to move the CPU goals by more than the model's own errors do. All of it takes about
# an hour on two cores; nothing else should run meanwhile, since the measured CPU is part of
# what is compared.
#
#   scripts/validate-simulator.sh                      # all of them
#   scripts/validate-simulator.sh quickstart           # just one (the summary is rewritten all the same)
#   scripts/validate-simulator.sh my/own.toml          # a scenario of yours, into reports/validation/own/
#   scripts/validate-simulator.sh --model-only [NAME]  # simulate again beside the measurements
#                                                      # already there (after a change to the model)
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

# Calibration runs, kept without what the fit does not read (time series, per-topic tallies,
# latency histograms): a tenth of the size.
calibrate() {
  local runs
  runs=$(mktemp -d)
  echo "== calibrating ($1)" >&2
  "$bin" calibrate --runs "$runs" --out "$runs/calibration.json" --quiet
  mkdir -p "$out/calibration-runs"
  python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
for p in r['points']:
    for m in p['modes']:
        m['timeseries'] = []
        m['latency_over_time'] = []
        m['deliveries']['by_topic'] = []
        for part in m.values():
            if isinstance(part, dict) and 'histogram' in part:
                part['histogram'] = ''
json.dump(r, open(sys.argv[2], 'w'), indent=1)" "$runs/results.json" "$out/calibration-runs/$1.json"
  rm -rf "$runs"
}
if [ $measure = 1 ] && [ -z "${CALIBRATION:-}" ]; then
  rm -rf "$out/calibration-runs"
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
  elif [ ! -f "$dir/measured/results.json" ]; then
    echo "$dir/measured/results.json: no measurement to simulate beside; run without --model-only" >&2
    exit 1
  fi
done

if [ -z "${CALIBRATION:-}" ]; then
  if [ $measure = 1 ]; then
    calibrate after
  fi
  if [ -d "$out/calibration-runs" ]; then
    froms=()
    for runs in before halfway after; do
      [ ! -f "$out/calibration-runs/$runs.json" ] || froms+=(--from "$out/calibration-runs/$runs.json")
    done
    "$bin" calibrate "${froms[@]}" --out "$out/calibration.json" --quiet
  fi
fi
calibration=${CALIBRATION:-$out/calibration.json}
if [ ! -f "$calibration" ]; then
  echo "$calibration: no calibration to model on; run without --model-only, or name one with CALIBRATION=FILE" >&2
  exit 1
fi

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
  "$bin" simulate "$(file "$chosen_one")" --round-trip "$round_trip" --calibration "$calibration" \
    --out "$dir/simulated" --quiet || [ $? -eq 3 ]
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
  if [ -n "${CALIBRATION:-}" ]; then
    echo "The model's costs: $CALIBRATION."
  else
    echo "The model's costs: [calibration.json](calibration.json), \`pushpull calibrate\` run here before the"
    echo "measurements, halfway through and after them, all fitted together (their runs in"
    echo "[calibration-runs/](calibration-runs))."
  fi
  echo
  for name in "${scenarios[@]}"; do
    if [ -f "$out/$name/not-simulated.txt" ]; then
      echo "- $name: not simulated: $(sed 's/^error: //' "$out/$name/not-simulated.txt" | head -1)"
    elif [ -f "$out/$name/validation.md" ]; then
      echo "- [$name]($name/validation.md): $(grep -m1 '^The model met' "$out/$name/validation.md")"
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
      echo "- [$name]($name/validation.md): $(grep -m1 '^The model met' "$out/$name/validation.md")"
    done
  fi
} >"$out/README.md"
echo "summary: $out/README.md" >&2
