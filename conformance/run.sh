#!/usr/bin/env bash
# Run the Autobahn|Testsuite conformance suite against this checkout's trio_mws.
#
# Usage: conformance/run.sh
#
# Installs wstest (install.sh), starts its fuzzingserver on 127.0.0.1 only, runs
# conformance/client.py once per client configuration (agent), stops the server and
# summarises the report (summarize.py). Both configurations negotiate permessage-deflate:
#   trio_mws-full     FULL_MESSAGE receive mode, echoes whole messages
#   trio_mws-partial  PARTIAL_MESSAGE receive mode, echoes each chunk as a frame
# Exit status: 0 only if every agent passed (no FAILED / UNIMPLEMENTED case, no failed
# close, 517 cases each when CASES is "*") and every client run completed.
#
# Environment:
#   PYTHON            interpreter with trio (default: python3); trio_mws is
#                     imported from this checkout (prepended to PYTHONPATH)
#   CASES             comma-separated wstest case patterns (default "*": all 517 cases),
#                     e.g. CASES='1.*,2.*,7.*' for a quick check
#   MODES             configurations to run, among "full partial" (default: both)
#   AUTOBAHN_PORT     fuzzingserver port on 127.0.0.1 (default 9001)
#   AUTOBAHN_WORKDIR  spec, server log and reports (default: conformance/reports)
#   AUTOBAHN_VENV, AUTOBAHN_PY2, AUTOBAHN_PY3   see install.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PYTHON=${PYTHON:-python3}
CASES=${CASES:-*}
MODES=${MODES:-full partial}
PORT=${AUTOBAHN_PORT:-9001}
VENV=${AUTOBAHN_VENV:-$HOME/.cache/trio_mws/autobahn-venv}
WORK=${AUTOBAHN_WORKDIR:-$HERE/reports}
ALL_CASES=517  # sections 1-7, 9, 10, 12, 13 of autobahntestsuite 25.10.1
export AUTOBAHN_VENV=$VENV PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

for mode in $MODES; do
  case $mode in full | partial) ;; *) echo "unknown mode '$mode' in MODES" >&2; exit 2 ;; esac
done

"$HERE/install.sh"

if ! "$PYTHON" -c 'import trio_mws' 2>/dev/null; then
  echo "ERROR: '$PYTHON' cannot import trio_mws from $ROOT (set PYTHON)" >&2
  "$PYTHON" -c 'import trio_mws' || true
  exit 2
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "ERROR: 127.0.0.1:$PORT is already in use (set AUTOBAHN_PORT)" >&2
  exit 2
fi

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
rm -rf "$WORK/clients" "$WORK/spec.json" "$WORK/fuzzingserver.log"  # never report stale results

"$PYTHON" - "$WORK/spec.json" "$PORT" "$WORK/clients" "$CASES" <<'PY'
import json
import sys

path, port, outdir, cases = sys.argv[1:]
spec = {
    "url": f"ws://127.0.0.1:{port}",
    "outdir": outdir,
    "cases": [case.strip() for case in cases.split(",") if case.strip()],
    "exclude-cases": [],
    "exclude-agent-cases": {},
}
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
PY

# wstest listens on all interfaces: wrap Twisted's listenTCP so that it binds 127.0.0.1.
# -u 0 disables wstest's embedded web server (port 8080).
(
  cd "$WORK"
  exec "$VENV/bin/python" -c '
import autobahntestsuite.choosereactor  # installs the best reactor first
from twisted.internet import reactor

listen_tcp = reactor.listenTCP


def listen_loopback(port, factory, backlog=50, interface=""):
    return listen_tcp(port, factory, backlog, interface or "127.0.0.1")


reactor.listenTCP = listen_loopback
from autobahntestsuite.wstest import run

run()
' -m fuzzingserver -s spec.json -u 0 >"$WORK/fuzzingserver.log" 2>&1
) &
SERVER=$!
CLIENT=
stop() {  # stop our own processes (by pid): the client if running, then the server
  local pid
  for pid in $CLIENT $SERVER; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap stop EXIT
trap 'exit 130' INT TERM

for _ in $(seq 150); do  # wait up to 30 s for the port
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "ERROR: fuzzingserver exited:" >&2
    cat "$WORK/fuzzingserver.log" >&2
    exit 3
  fi
  sleep 0.2
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "ERROR: fuzzingserver did not listen on 127.0.0.1:$PORT within 30 s" >&2
  cat "$WORK/fuzzingserver.log" >&2
  exit 3
fi
echo "fuzzingserver (pid $SERVER) on 127.0.0.1:$PORT, cases: $CASES, log: $WORK/fuzzingserver.log"

STATUS=0
AGENTS=()
START=$SECONDS
for mode in $MODES; do
  agent=trio_mws-$mode
  AGENTS+=("$agent")
  echo "--- $agent: receive mode $mode, compression on"
  t0=$SECONDS
  # In the background, so that a signal runs the traps at once (bash defers them until a
  # foreground command ends).
  "$PYTHON" "$HERE/client.py" --url "ws://127.0.0.1:$PORT" --agent "$agent" \
    --mode "$mode" --compression &
  CLIENT=$!
  if ! wait "$CLIENT"; then
    echo "ERROR: the $agent client run did not complete cleanly" >&2
    STATUS=1
  fi
  CLIENT=
  echo "--- $agent: wall time $((SECONDS - t0)) s"
done
echo "--- total client wall time $((SECONDS - START)) s"
stop
trap - EXIT

EXPECT=()
if [ "$CASES" = "*" ]; then EXPECT=(--expect-cases "$ALL_CASES"); fi
"$PYTHON" "$HERE/summarize.py" "$WORK/clients" "${AGENTS[@]}" "${EXPECT[@]}" || STATUS=1
echo "report: $WORK/clients/index.html"
exit "$STATUS"
