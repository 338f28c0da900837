#!/usr/bin/env bash
# Slow and stuck clients against everyone else: requests/s of 100 pipelining clients
# (muxd-bench -c 100 -P 16) with and without two bad clients running beside them: one
# that sends its request one byte every 100 ms, one that writes requests and never reads
# its responses. Rounds alternate the order, so drift hits both alike; the median ratio
# is reported (the issue asks for the load to stay within 20%).
#
#   scripts/fairness.sh [--duration SECS] [--rounds N]      (default 5 s, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=5
rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

cargo build --release --bins >&2
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkfifo "$tmp/ready"
./target/release/muxd -q --tcp 127.0.0.1:0 --unix "$tmp/muxd.sock" >"$tmp/ready" 2>"$tmp/muxd.log" &
pids+=($!)
read -r -t 30 ready_line <"$tmp/ready" || { cat "$tmp/muxd.log" >&2; exit 1; }
port=$(echo "$ready_line" | grep -o 'tcp://[^ ]*' | sed 's|.*:||')
echo "muxd: $ready_line" >&2

# The two bad clients, in one small Python process: it runs until killed and, on the way
# out, says how many of the slow client's requests were answered correctly.
cat >"$tmp/bad_clients.py" <<'EOF'
import signal, socket, sys, threading, time
port = int(sys.argv[1])
answered = 0
stop = threading.Event()

def slow():
    global answered
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30)
    while not stop.is_set():
        for b in b"ECHO slow\r\n":
            s.sendall(bytes([b]))
            time.sleep(0.1)
        reply = b""
        while not reply.endswith(b"slow\r\n"):
            reply += s.recv(64)
        if reply == b"$4\r\nslow\r\n":
            answered += 1

def stuck():
    s = socket.create_connection(("127.0.0.1", port))
    request = b"*2\r\n$4\r\nECHO\r\n$4096\r\n" + b"s" * 4096 + b"\r\n"
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            s.sendall(request)
        except socket.timeout:
            pass  # The server pushes back: it stopped reading us, as it should.

def done(*_):
    stop.set()
    print(f"slow client: {answered} requests answered correctly", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, done)
for f in (slow, stuck):
    threading.Thread(target=f, daemon=True).start()
while True:
    time.sleep(1)
EOF

run_load() {
  ./target/release/muxd-bench -p "$port" -c 100 -P 16 -t ping_mbulk \
    --duration "$duration" --json -q | python3 -c 'import json,sys; print(json.load(sys.stdin)["rps"])'
}

with_bad() {
  python3 "$tmp/bad_clients.py" "$port" >>"$tmp/bad.log" &
  local bad=$!
  sleep 1 # let the stuck client fill its buffers and get paused
  local rps
  rps=$(run_load)
  kill -TERM "$bad"
  wait "$bad" || true
  echo "$rps"
}

alone=()
bad=()
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then
    alone+=("$(run_load)"); bad+=("$(with_bad)")
  else
    bad+=("$(with_bad)"); alone+=("$(run_load)")
  fi
  echo "round $round: alone ${alone[-1]} req/s, with the bad clients ${bad[-1]} req/s" >&2
done

python3 - "${alone[*]}" "${bad[*]}" <<'EOF'
import statistics, sys
alone = [float(x) for x in sys.argv[1].split()]
bad = [float(x) for x in sys.argv[2].split()]
a, b = statistics.median(alone), statistics.median(bad)
print(f"100 clients, -P 16, ping_mbulk: alone {a:,.0f} req/s, with a slow and a stuck client {b:,.0f} req/s")
print(f"ratio {b / a:.3f} (median of {len(alone)} rounds each)")
EOF
cat "$tmp/bad.log"
echo "server stats:"
python3 - "$port" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"INFO stats\r\n")
data = b""
while not data.endswith(b"\r\n\r\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
wanted = ("total_commands_processed", "output_paused_clients", "turns_yielded", "protocol_errors")
print("\n".join(l for l in data.decode().splitlines() if l.startswith(wanted)))
EOF
