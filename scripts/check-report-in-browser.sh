#!/usr/bin/env bash
# Opens a pushpull report in headless Chromium, saves a screenshot, and fails when the page
# logs a console error or a chart is drawn with no size.
#
#   scripts/check-report-in-browser.sh reports/quickstart/report.html [screenshot.png]
#
# Installs Debian's chromium package if it is missing (needs root and the package registry).
set -euo pipefail

report=${1:?usage: $0 REPORT.html [SCREENSHOT.png]}
[ -f "$report" ] || { echo "no such file: $report" >&2; exit 2; }
report=$(realpath "$report")
shot=${2:-${report%.html}-screenshot.png}

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "installing chromium (Debian package)..." >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  browser=$(command -v chromium)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$work/profile" --hide-scrollbars)

# A copy of the report with a probe appended: it collects console errors and page errors,
# measures every chart once laid out, and writes both into the DOM that --dump-dom prints.
# The report itself carries no script.
cp "$report" "$work/probe.html"
cat >>"$work/probe.html" <<'PROBE'
<script>
const problems = [];
addEventListener('error', e => problems.push('page error: ' + (e.message || e.target.outerHTML)), true);
const logError = console.error;
console.error = (...args) => { problems.push(args.join(' ')); logError(...args); };
addEventListener('load', () => {
  const sizes = [...document.querySelectorAll('figure svg')].map(svg => {
    const r = svg.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) problems.push('chart with no size: ' + svg.closest('figure').id);
    return svg.closest('figure').id + '=' + Math.round(r.width) + 'x' + Math.round(r.height);
  });
  if (sizes.length === 0) problems.push('no charts in the report');
  document.body.setAttribute('data-chart-sizes', sizes.join(' '));
  document.body.setAttribute('data-problems', problems.join(' | '));
});
</script>
PROBE

"$browser" "${flags[@]}" --enable-logging=stderr --v=0 --virtual-time-budget=5000 \
  --dump-dom "file://$work/probe.html" >"$work/dom.html" 2>"$work/console.txt" || true
"$browser" "${flags[@]}" --window-size=1280,2400 --screenshot="$shot" "file://$report" >/dev/null 2>&1 || true

sizes=$(grep -o 'data-chart-sizes="[^"]*"' "$work/dom.html" | sed 's/data-chart-sizes=//; s/"//g' || true)
problems=$(grep -o 'data-problems="[^"]*"' "$work/dom.html" | sed 's/data-problems=//; s/"//g' || true)
errors=$( (grep -E 'CONSOLE' "$work/console.txt" | grep -iE 'error|uncaught' || true; [ -n "$problems" ] && echo "$problems") || true)

[ -s "$shot" ] && echo "screenshot: $shot" || { echo "FAIL: no screenshot was written" >&2; exit 1; }
[ -n "$sizes" ] || { echo "FAIL: the page did not finish loading (no chart sizes measured)" >&2; exit 1; }
echo "charts: $sizes"
if [ -n "$errors" ]; then
  echo "FAIL:" >&2
  echo "$errors" >&2
  exit 1
fi
echo "ok: no console or page errors, every chart has a size"
