#!/usr/bin/env bash
# The hot path's instruction count: muxd under `valgrind --tool=callgrind`, driven by
# muxd-bench over a Unix socket, one server per load; prints the instructions the server
# executed (Ir, start-up and shutdown included: the same for every build) per load and
# per request.
#
#   scripts/callgrind.sh [--bin-dir DIR]   # default: target/release (built if missing)
#
# Compare two builds by running it on each (the figures are deterministic to within a
# fraction of a percent). It kills only the servers it started.
set -euo pipefail

cd "$(dirname "$0")/.."
bin_dir="${CARGO_TARGET_DIR:-target}/release"
if [[ "${1:-}" == "--bin-dir" ]]; then
    bin_dir="$2"
fi
if [[ ! -x "$bin_dir/muxd" || ! -x "$bin_dir/muxd-bench" ]]; then
    cargo build --release --bins
fi
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 2; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# One load against a fresh server: prints "<label> <Ir> <requests> <Ir per request>".
measure() {
    local label="$1" requests="$2"
    shift 2
    local sock="$work/muxd.sock" out="$work/callgrind.out" fifo="$work/ready"
    rm -f "$sock" "$out" "$fifo"
    mkfifo "$fifo"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin_dir/muxd" --unix "$sock" -q >"$fifo" 2>"$work/stderr" &
    server_pid=$!
    # The READY line, never a sleep.
    if ! read -r -t 60 ready <"$fifo" || [[ "$ready" != READY* ]]; then
        echo "callgrind.sh: muxd did not start:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    "$bin_dir/muxd-bench" -s "$sock" -q "$@" >/dev/null
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    local ir
    ir="$(awk '/^(summary|totals):/ { print $2; exit }' "$out")"
    printf '%-28s Ir=%-12s requests=%-8s Ir/request=%.1f\n' \
        "$label" "$ir" "$requests" "$(echo "$ir / $requests" | bc -l)"
}

measure "-c 10 -P 16 ping_mbulk" 200000 -c 10 -P 16 -n 200000 -t ping_mbulk
measure "-c 10 -P 1 ping_mbulk" 50000 -c 10 -P 1 -n 50000 -t ping_mbulk
