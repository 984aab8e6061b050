#!/usr/bin/env bash
# Run the Autobahn|Testsuite conformance suite against this checkout's trio_mws.
#
# Usage: conformance/run.sh
#
# Installs wstest (install.sh), then for each client configuration (agent) starts a
# fuzzingserver of its own on 127.0.0.1 and runs conformance/client.py against it; the
# agents run side by side (each pair is a Python 2 server and a Python 3 client taking
# turns, so two pairs use two cores). It stops the servers and summarises each report
# (summarize.py). Both configurations negotiate permessage-deflate:
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
#   AUTOBAHN_PORT     first fuzzingserver port on 127.0.0.1 (default 9001); the Nth mode
#                     in MODES uses AUTOBAHN_PORT + N - 1 (full: 9001, partial: 9002)
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
MODE_LIST=($MODES)
PORTS=()
for i in "${!MODE_LIST[@]}"; do
  port=$((PORT + i))
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "ERROR: 127.0.0.1:$port is already in use (set AUTOBAHN_PORT)" >&2
    exit 2
  fi
  PORTS+=("$port")
done

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

SERVERS=()
CLIENTS=()
stop() {  # stop our own processes (by pid): the clients if running, then the servers
  local pid
  for pid in "${CLIENTS[@]}" "${SERVERS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap stop EXIT
trap 'exit 130' INT TERM

cpu_seconds() {  # user + system CPU of a live process, from /proc/PID/stat (fields 14, 15)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo "?"; return; }
  stat=${stat##*) }  # drop "pid (comm) ": comm may hold spaces
  set -- $stat
  awk -v ticks="$(( ${12} + ${13} ))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", ticks / hz }'
}

# wstest listens on all interfaces: wrap Twisted's listenTCP so that it binds 127.0.0.1.
# -u 0 disables wstest's embedded web server (port 8080).
start_server() {  # start_server DIR PORT: a fuzzingserver with its own spec, log and reports
  local dir=$1 port=$2
  rm -rf "$dir"  # never report stale results
  mkdir -p "$dir"
  "$PYTHON" - "$dir/spec.json" "$port" "$dir/clients" "$CASES" <<'PY'
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
  (
    cd "$dir"
    exec "$VENV/bin/python" -c '
import autobahntestsuite.choosereactor  # installs the best reactor first
from twisted.internet import reactor

listen_tcp = reactor.listenTCP


def listen_loopback(port, factory, backlog=50, interface=""):
    return listen_tcp(port, factory, backlog, interface or "127.0.0.1")


reactor.listenTCP = listen_loopback
from autobahntestsuite.wstest import run

run()
' -m fuzzingserver -s spec.json -u 0 >"$dir/fuzzingserver.log" 2>&1
  ) &
  SERVERS+=($!)
}

wait_for_server() {  # wait_for_server PID PORT LOG: up to 30 s for the port
  local pid=$1 port=$2 log=$3
  for _ in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "ERROR: fuzzingserver exited:" >&2
      cat "$log" >&2
      exit 3
    fi
    sleep 0.2
  done
  echo "ERROR: fuzzingserver did not listen on 127.0.0.1:$port within 30 s" >&2
  cat "$log" >&2
  exit 3
}

for i in "${!MODE_LIST[@]}"; do
  start_server "$WORK/${MODE_LIST[i]}" "${PORTS[i]}"
done
for i in "${!MODE_LIST[@]}"; do
  wait_for_server "${SERVERS[i]}" "${PORTS[i]}" "$WORK/${MODE_LIST[i]}/fuzzingserver.log"
  echo "fuzzingserver (pid ${SERVERS[i]}) on 127.0.0.1:${PORTS[i]} for ${MODE_LIST[i]}," \
    "cases: $CASES, log: $WORK/${MODE_LIST[i]}/fuzzingserver.log"
done

STATUS=0
START=$SECONDS
for i in "${!MODE_LIST[@]}"; do
  mode=${MODE_LIST[i]}
  echo "--- trio_mws-$mode: receive mode $mode, compression on, port ${PORTS[i]}"
  # In the background, side by side; also so that a signal runs the traps at once (bash
  # defers them until a foreground command ends). Each line is prefixed by its agent.
  "$PYTHON" "$HERE/client.py" --url "ws://127.0.0.1:${PORTS[i]}" --agent "trio_mws-$mode" \
    --mode "$mode" --compression > >(sed -u "s/^/[$mode] /") 2> >(sed -u "s/^/[$mode] /" >&2) &
  CLIENTS+=($!)
done
for i in "${!MODE_LIST[@]}"; do
  mode=${MODE_LIST[i]}
  if ! wait "${CLIENTS[i]}"; then
    echo "ERROR: the trio_mws-$mode client run did not complete cleanly" >&2
    STATUS=1
  fi
  # The server is idle once its client is done: its CPU time so far is its share of the run.
  echo "--- trio_mws-$mode: done after $((SECONDS - START)) s wall;" \
    "fuzzingserver CPU $(cpu_seconds "${SERVERS[i]}") s"
done
echo "--- all agents: wall time $((SECONDS - START)) s"
stop
trap - EXIT

EXPECT=()
if [ "$CASES" = "*" ]; then EXPECT=(--expect-cases "$ALL_CASES"); fi
for mode in "${MODE_LIST[@]}"; do
  "$PYTHON" "$HERE/summarize.py" "$WORK/$mode/clients" "trio_mws-$mode" "${EXPECT[@]}" \
    || STATUS=1
  echo "report: $WORK/$mode/clients/index.html"
done
exit "$STATUS"
