#!/usr/bin/env bash
# Drives the poll endpoint with wrk, for comparison with the polling driver:
#   pushpull run scenarios/bench/poll-throughput.toml   (server.requests_per_second)
#   scripts/wrk-poll.sh                                 (wrk's Requests/sec, same endpoint)
# Both hit GET /events on a log with nothing new, with 64 connections, on loopback.
# Needs wrk (Debian: apt-get install wrk) and a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PUSHPULL:-target/release/pushpull}
scenario=${1:-scenarios/bench/poll-throughput.toml}
connections=${CONNECTIONS:-64}
seconds=${SECONDS_TO_RUN:-10}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

work=$(mktemp -d)
"$bin" serve >"$work/serve.txt" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q listening "$work/serve.txt" && break; sleep 0.1; done
line=$(head -1 "$work/serve.txt")
public=$(echo "$line" | sed -E 's|.*listening on (http://[^ ]+) control.*|\1|')
control=$(echo "$line" | sed -E 's|.* control (http://[^ ]+).*|\1|')

"$bin" validate --json "$scenario" >"$work/scenario.json"
printf '{"scenario": %s, "mode": "poll"}' "$(cat "$work/scenario.json")" >"$work/reset.json"
curl -sf -X POST "$control/control/reset" -H 'content-type: application/json' --data @"$work/reset.json"

# wrk's threads share the two cores with the server, as the driver's runtime threads do.
wrk -t2 -c"$connections" -d"${seconds}s" "$public/events?topics=0&after=0&limit=100"
