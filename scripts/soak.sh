#!/usr/bin/env bash
# Soak test: builds muxd (release), starts it on an ephemeral port and a temp Unix socket,
# runs scripts/soak.py against it (random disconnects, bad input, slow readers and writers,
# subscribers checking every message, resetting, or stalling until the pub/sub output limit
# (2mb here) closes them, mixed with checked traffic), then stops it with SIGTERM and checks
# it exits 0.
# Not part of the default test run.
#
#   scripts/soak.sh [--duration SECS] [--clients N] [--seed N]    (default 300 s, 64 clients)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=300
clients=64
seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

cargo build --release --bin muxd >&2
tmp=$(mktemp -d)
muxd_pid=""
cleanup() {
  if [ -n "$muxd_pid" ] && kill -0 "$muxd_pid" 2>/dev/null; then
    kill -TERM "$muxd_pid" 2>/dev/null || true
    wait "$muxd_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkfifo "$tmp/ready"
"${CARGO_TARGET_DIR:-target}/release/muxd" -q --tcp 127.0.0.1:0 --unix "$tmp/muxd.sock" --pubsub-hard-limit 2mb \
  >"$tmp/ready" 2>"$tmp/muxd.log" &
muxd_pid=$!
read -r -t 30 ready_line <"$tmp/ready" || { echo "muxd did not start:" >&2; cat "$tmp/muxd.log" >&2; exit 1; }
tcp=$(echo "$ready_line" | grep -o 'tcp://[^ ]*' | sed 's|tcp://||')
echo "muxd pid=$muxd_pid $ready_line" >&2

status=0
python3 scripts/soak.py --tcp "$tcp" --unix "$tmp/muxd.sock" --pid "$muxd_pid" \
  --clients "$clients" --duration "$duration" --seed "$seed" || status=$?

kill -TERM "$muxd_pid"
if wait "$muxd_pid"; then
  echo "muxd exited 0 after SIGTERM"
else
  echo "muxd exited with status $? after SIGTERM" >&2
  status=1
fi
muxd_pid=""
if [ -e "$tmp/muxd.sock" ]; then
  echo "socket file left behind" >&2
  status=1
fi
grep -E "ERROR|panicked" "$tmp/muxd.log" >&2 && status=1
exit "$status"
