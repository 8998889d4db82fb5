#!/usr/bin/env bash
# Load test of `triage serve` on loopback: start-up time, /v1/classify and
# /v1/classify/batch throughput and latency percentiles (wrk), and the
# server's resident memory. Bounded in time; traffic goes to 127.0.0.1 only.
#
#   scripts/loadtest.sh [duration=20s] [connections=32]
#
# Needs wrk (apt-get install wrk) and a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20s}
CONNS=${2:-32}
PORT=${PORT:-18099}
BIN=target/release/triage
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
rows = [json.loads(l) for l in open("models/heldout.jsonl", encoding="utf-8")]
with open(f"{work}/single.txt", "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps({"text": r["text"], "channel": r["channel"]}, ensure_ascii=False) + "\n")
with open(f"{work}/batch.txt", "w", encoding="utf-8") as f:
    for i in range(0, len(rows) - 32, 32):
        items = [{"text": r["text"], "channel": r["channel"]} for r in rows[i:i + 32]]
        f.write(json.dumps({"items": items}, ensure_ascii=False) + "\n")
PY

START=$(date +%s%N)
RUST_LOG=warn "$BIN" serve --port "$PORT" --data-dir "$WORK/data" > "$WORK/server.log" 2>&1 &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null; do sleep 0.01; done
READY=$(( ($(date +%s%N) - START) / 1000000 ))
echo "start-up to ready: ${READY} ms"

echo "== POST /v1/classify, $CONNS connections, $DURATION"
WRK_BODIES="$WORK/single.txt" wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s scripts/wrk_bodies.lua "http://127.0.0.1:$PORT/v1/classify" | grep -E "Latency|50%|75%|90%|99%|Requests/sec|requests in|Non-2xx"
echo "== POST /v1/classify/batch (32 complaints each), 4 connections, $DURATION"
WRK_BODIES="$WORK/batch.txt" wrk -t2 -c4 -d"$DURATION" --latency -s scripts/wrk_bodies.lua "http://127.0.0.1:$PORT/v1/classify/batch" | grep -E "Latency|50%|75%|90%|99%|Requests/sec|requests in|Non-2xx"
grep -E "VmHWM|VmRSS" /proc/$PID/status
