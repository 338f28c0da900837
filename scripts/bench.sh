#!/usr/bin/env bash
# muxd against Redis, side by side: requests/s, latency, server CPU per request and
# memory per idle connection, as one table. Run `scripts/bench.sh --help`.
set -euo pipefail
shopt -s inherit_errexit

usage() {
	cat <<'EOF'
Usage: scripts/bench.sh [--quick] [--repeat N] [--idle N] [--threads N]
                        [--no-tls] [--no-fanout | --fanout-only]
                        [--no-build] [--raw FILE] [--keep-tmp] [--help]

Builds muxd in release mode, starts it on an ephemeral TCP port and a Unix socket in a
temporary directory, starts a Redis (when redis-server is installed) the same way as the
reference, and drives both with muxd-bench and redis-benchmark (whichever are present):

  tcp and unix  x  -c 50 -P 1 (ping_mbulk), -c 50 -P 16 (ping_inline, ping_mbulk),
                   -c 1000 -P 1 (ping_mbulk, for latency)
  tls              -c 50 -P 1 and -P 16 (ping_mbulk): muxd --tls against
                   redis-server --tls-port, same certificate (ECDSA P-256, made with
                   openssl), --tls --cacert for both generators

Runs are interleaved (muxd, Redis, muxd, Redis...) so that drift on a shared machine hits
both servers alike; each cell is repeated and the median reported. Then the fan-out
(muxd-bench --pubsub; see scripts/bench_fanout.sh): one publisher to 1, 100 and 1,000
subscribers, 64 B and 4 KiB payloads, tcp and unix, messages delivered per second, p99
delivery latency and server CPU per million delivered. Then a fresh muxd and a fresh
Redis each get N idle connections, plain and then TLS (handshake done, one PING
answered), and their RSS growth is reported per connection.

The table goes to stdout, progress to stderr.

Options:
  --quick        one repetition, fewer requests (well under a minute once built)
  --repeat N     repetitions of each cell, median reported (default 3; --quick: 1)
  --idle N       idle connections for the memory figure (default 10000)
  --no-tls       leave out the TLS rows
  --threads N    load-generator threads (default 1: one core for the server, one for
                 the generator on a 2-core machine; with --pubsub, subscriber threads)
  --no-fanout    skip the fan-out table
  --fanout-only  only the fan-out table
  --no-build     use the binaries already in target/release
  --raw FILE     also write every single run as tab-separated values to FILE
  --keep-tmp     keep the temporary directory (server logs, raw output)
  -h, --help     this text

Environment:
  MUXD_BENCH     path of a muxd-bench binary to use instead of target/release/muxd-bench

Columns:
  req/s          requests per second, as the load generator measured it (median)
  p50 ms, p99 ms latency percentiles from the load generator (median of the runs)
  +-%            half the spread of req/s over the repetitions, relative to the median
  CPU s/Mreq     server CPU seconds (utime+stime from /proc/PID/stat) per million requests
  x Redis        muxd's figure divided by Redis's (req/s: >1 is faster; CPU: <1 is cheaper)
EOF
}

# ---------------------------------------------------------------------------- options

ORIG_ARGS=("$@")
ORIG_ENV=() # the environment that changes what runs, for the closing command line
for var in CARGO_TARGET_DIR MUXD_BENCH; do
	if [[ -n ${!var:-} ]]; then ORIG_ENV+=("$var=${!var}"); fi
done
QUICK=0
REPEAT=""
IDLE_N=10000
THREADS=1
BUILD=1
FANOUT=1
FANOUT_ONLY=0
RAW=""
KEEP_TMP=0
TLS=1

need_number() {
	[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || {
		printf 'bench.sh: %s needs a positive number\n' "$1" >&2
		exit 2
	}
}

while (($# > 0)); do
	case $1 in
	--quick) QUICK=1 ;;
	--repeat | -r)
		need_number "$1" "${2:-}"
		REPEAT=$2
		shift
		;;
	--idle)
		need_number "$1" "${2:-}"
		IDLE_N=$2
		shift
		;;
	--threads)
		need_number "$1" "${2:-}"
		THREADS=$2
		shift
		;;
	--no-build) BUILD=0 ;;
	--no-fanout) FANOUT=0 ;;
	--fanout-only) FANOUT_ONLY=1 ;;
	--raw)
		[[ -n ${2:-} ]] || {
			echo 'bench.sh: --raw needs a file name' >&2
			exit 2
		}
		RAW=$2
		shift
		;;
	--keep-tmp) KEEP_TMP=1 ;;
	--no-tls) TLS=0 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		printf 'bench.sh: unknown option %q (see --help)\n' "$1" >&2
		exit 2
		;;
	esac
	shift
done

if [[ -z $REPEAT ]]; then
	if ((QUICK)); then REPEAT=1; else REPEAT=3; fi
fi

# Requests per run, by cell kind. Sized so that a run lasts about 2 s (default) or a
# fraction of a second (--quick) on a 2-core machine.
if ((QUICK)); then
	N_P1=30000 N_P16=300000 N_C1000=30000 WARMUP_N=20000 FANOUT_DELIVERIES=1000000
else
	N_P1=100000 N_P16=1500000 N_C1000=100000 WARMUP_N=100000 FANOUT_DELIVERIES=8000000
fi
# The publisher's PUBLISH requests in flight in the fan-out cells.
FANOUT_PIPELINE=64
RUN_TIMEOUT=180   # seconds one load-generator run may take before it is called failed
READY_TIMEOUT=10  # seconds a server may take to come up
IDLE_TIMEOUT=120  # seconds to establish the idle connections

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# ------------------------------------------------------------ processes and cleanup

TMP=$(mktemp -d "${TMPDIR:-/tmp}/muxd-bench.XXXXXX")
declare -A LIVE=() # pid -> what it is; only processes this script started
NOTES=()
FAILED=0

log() { printf '%s\n' "$*" >&2; }
note() {
	NOTES+=("$*")
	log "note: $*"
}

# A process is alive while it exists and is not a zombie waiting to be reaped.
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# Stops one of our processes: SIGTERM, up to 5 s of grace, then SIGKILL; reaps it.
stop_pid() {
	local pid=$1 i
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$pid" || break
			sleep 0.05
		done
		if alive "$pid"; then
			log "${LIVE[$pid]:-process} $pid ignored SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
	unset "LIVE[$pid]"
}

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${!LIVE[@]}"; do
		stop_pid "$pid"
	done
	if ((KEEP_TMP)); then
		log "temporary files kept in $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

die() {
	log "bench.sh: $*"
	exit 1
}

# Last lines of a log file, indented, on stderr (for failure messages).
show_log() {
	[[ -s $1 ]] && sed 's/^/    | /' "$1" | tail -n 20 >&2
	return 0
}

# utime+stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name in field 2 may hold spaces, so count from the closing parenthesis).
cpu_ticks() {
	local stat fields
	stat=$(<"/proc/$1/stat")
	read -r -a fields <<<"${stat##*) }"
	echo $((fields[11] + fields[12]))
}

# Resident set size in KiB (VmRSS from /proc/PID/status).
rss_kb() {
	local key value _unit
	while read -r key value _unit; do
		if [[ $key == VmRSS: ]]; then
			echo "$value"
			return 0
		fi
	done <"/proc/$1/status"
	return 1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# -------------------------------------------------------------------------- the build

if ((BUILD)); then
	log "building: cargo build --release --bins"
	cargo build --release --bins >&2
fi

# The target directory and whether the package has a muxd-bench binary at all (a stale
# binary left in target/ by another branch does not count).
read -r TARGET_DIR HAVE_MUXD_BENCH_TARGET < <(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
meta = json.load(sys.stdin)
bins = {t["name"] for p in meta["packages"] for t in p["targets"] if "bin" in t["kind"]}
print(meta["target_directory"], int("muxd-bench" in bins))
') || die "cargo metadata failed"
MUXD=$TARGET_DIR/release/muxd
[[ -x $MUXD ]] || die "no $MUXD: build it with cargo build --release --bins (or drop --no-build)"

GENS=()
if [[ -n ${MUXD_BENCH:-} ]]; then
	[[ -x $MUXD_BENCH ]] || die "MUXD_BENCH=$MUXD_BENCH is not an executable"
	GENS+=(muxd-bench)
	note "muxd-bench taken from MUXD_BENCH=$MUXD_BENCH"
elif MUXD_BENCH=$TARGET_DIR/release/muxd-bench && ((HAVE_MUXD_BENCH_TARGET)) && [[ -x $MUXD_BENCH ]]; then
	GENS+=(muxd-bench)
elif ((HAVE_MUXD_BENCH_TARGET)); then
	note "muxd-bench is a target of this package but $MUXD_BENCH is not built; its rows are skipped"
else
	note "this build has no muxd-bench binary (src/bin/muxd-bench); its rows are skipped"
fi
if command -v redis-benchmark >/dev/null; then
	GENS+=(redis-benchmark)
else
	note "redis-benchmark is not installed (Debian: apt-get install redis-tools); its rows are skipped"
fi
((${#GENS[@]} > 0)) || die "no load generator: neither muxd-bench nor redis-benchmark is available"

SERVERS=(muxd)
if ! command -v redis-server >/dev/null; then
	note "redis-server is not installed (Debian: apt-get install redis-server); no Redis reference, no ratios"
elif ! command -v redis-cli >/dev/null; then
	note "redis-cli is not installed, needed to see Redis come up; no Redis reference"
else
	SERVERS+=(redis)
fi

# TLS: one CA and one server certificate (127.0.0.1 and localhost), shared by both servers.
CA=$TMP/ca.crt
if ((TLS)) && ! command -v openssl >/dev/null; then
	note "openssl is not installed, needed to make the certificates; no TLS rows"
	TLS=0
fi
if ((TLS)); then
	(
		cd "$TMP"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-keyout ca.key -out ca.crt -subj "/CN=muxd bench CA"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout server.key -out server.csr -subj "/CN=localhost"
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile server.ext -out server.crt
	) >"$TMP/openssl.log" 2>&1 || {
		show_log "$TMP/openssl.log"
		die "openssl could not make the certificates"
	}
fi

# Enough descriptors for the idle connections on both ends, and then some.
want_fds=$((IDLE_N + 1100))
if (($(ulimit -n) < want_fds)); then
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	if (($(ulimit -n) < want_fds)); then
		note "open-file limit $(ulimit -n) is below $want_fds; the idle-connection figure may fail (raise ulimit -n)"
	fi
fi

# ---------------------------------------------------------------------------- servers

INSTANCE=0
# Extra flags for the next server started (the fan-out part sets them).
MUXD_EXTRA=()
REDIS_EXTRA=()

# Starts muxd on 127.0.0.1:0 and a Unix socket (and TLS on 127.0.0.1:0); waits for its
# READY line (read with a timeout, no sleeping). Sets MUXD_PID, MUXD_PORT, MUXD_TLS_PORT,
# MUXD_SOCK, MUXD_LOG.
start_muxd() {
	INSTANCE=$((INSTANCE + 1))
	local fifo=$TMP/muxd.$INSTANCE.out logf=$TMP/muxd.$INSTANCE.log fd line word
	local -a tls=()
	MUXD_LOG=$logf
	MUXD_SOCK=$TMP/muxd.$INSTANCE.sock
	MUXD_PORT="" MUXD_TLS_PORT=""
	if ((TLS)); then
		# Redis has no handshake deadline; redis-benchmark -I sets up all its TLS clients
		# before sending a single ClientHello, which on a loaded machine can take longer
		# than muxd's default 10 s.
		tls=(--tls 127.0.0.1:0 --tls-cert-file "$TMP/server.crt" --tls-key-file "$TMP/server.key"
			--tls-handshake-timeout 120)
	fi
	mkfifo "$fifo"
	# Opened read-write so that neither end blocks on open; kept open for muxd's lifetime
	# so that it never writes to a closed pipe.
	exec {fd}<>"$fifo"
	"$MUXD" -q --tcp 127.0.0.1:0 --unix "$MUXD_SOCK" "${tls[@]}" "${MUXD_EXTRA[@]}" >"$fifo" 2>"$logf" &
	MUXD_PID=$!
	LIVE[$MUXD_PID]=muxd
	if ! read -r -t "$READY_TIMEOUT" -u "$fd" line; then
		show_log "$logf"
		die "muxd did not print its READY line within ${READY_TIMEOUT}s"
	fi
	for word in $line; do
		case $word in
		tcp://*) MUXD_PORT=${word##*:} ;;
		tls://*) MUXD_TLS_PORT=${word##*:} ;;
		esac
	done
	[[ ${line%% *} == READY && $MUXD_PORT =~ ^[0-9]+$ ]] || die "unexpected READY line from muxd: $line"
	[[ -S $MUXD_SOCK ]] || die "muxd reported ready but $MUXD_SOCK is not a socket"
}

# Starts redis-server on a free loopback port and a Unix socket (and a TLS port, asking
# clients for no certificate, as muxd's), nothing persisted; waits until it answers PING.
# Sets REDIS_PID, REDIS_PORT, REDIS_TLS_PORT, REDIS_SOCK, REDIS_LOG.
start_redis() {
	INSTANCE=$((INSTANCE + 1))
	local logf=$TMP/redis.$INSTANCE.log try i
	local -a tls=()
	REDIS_LOG=$logf
	REDIS_SOCK=$TMP/redis.$INSTANCE.sock
	for try in 1 2 3; do
		REDIS_PORT=$(free_port)
		if ((TLS)); then
			REDIS_TLS_PORT=$(free_port)
			tls=(--tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TMP/server.crt"
				--tls-key-file "$TMP/server.key" --tls-ca-cert-file "$CA" --tls-auth-clients no)
		fi
		redis-server --port "$REDIS_PORT" --bind 127.0.0.1 "${tls[@]}" \
			--unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
			--save '' --appendonly no --dir "$TMP" --logfile "$logf" \
			--maxclients $((IDLE_N + 1100)) "${REDIS_EXTRA[@]}" --daemonize no >/dev/null 2>&1 &
		REDIS_PID=$!
		LIVE[$REDIS_PID]=redis-server
		for ((i = 0; i < READY_TIMEOUT * 20; i++)); do
			alive "$REDIS_PID" || break
			if [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; then
				return 0
			fi
			sleep 0.05
		done
		stop_pid "$REDIS_PID"
		log "redis-server did not come up on port $REDIS_PORT (try $try of 3)"
		show_log "$logf"
	done
	die "could not start redis-server"
}

stop_servers() {
	if [[ -n ${MUXD_PID:-} ]]; then stop_pid "$MUXD_PID"; fi
	if [[ -n ${REDIS_PID:-} ]]; then stop_pid "$REDIS_PID"; fi
	MUXD_PID="" REDIS_PID=""
}

server_pid() { if [[ $1 == muxd ]]; then echo "$MUXD_PID"; else echo "$REDIS_PID"; fi; }

# The flags that point a load generator (both speak -h/-p/-s) at a server and transport.
target_args() {
	local server=$1 transport=$2
	case $server/$transport in
	muxd/tcp) echo "-h 127.0.0.1 -p $MUXD_PORT" ;;
	muxd/unix) echo "-s $MUXD_SOCK" ;;
	muxd/tls) echo "-h 127.0.0.1 -p $MUXD_TLS_PORT --tls --cacert $CA" ;;
	redis/tcp) echo "-h 127.0.0.1 -p $REDIS_PORT" ;;
	redis/unix) echo "-s $REDIS_SOCK" ;;
	redis/tls) echo "-h 127.0.0.1 -p $REDIS_TLS_PORT --tls --cacert $CA" ;;
	esac
}

# --------------------------------------------------------------------- one load run

RESULTS=$TMP/runs.tsv
MEMORY=$TMP/memory.tsv
printf 'generator\ttransport\tclients\tpipeline\ttest\tserver\trep\tstatus\trps\tp50_us\tp99_us\tcpu_ticks\trequests\n' >"$RESULTS"
printf 'generator\ttransport\tserver\tconnections\trss_before_kb\trss_after_kb\tstatus\n' >"$MEMORY"

# run_one GEN SERVER TRANSPORT CLIENTS PIPELINE TEST REQUESTS REP
# Runs one test with one generator against one server and appends a row to $RESULTS;
# REP "warmup" records nothing. A failed run is recorded as such and the bench goes on.
run_one() {
	local gen=$1 server=$2 transport=$3 clients=$4 pipeline=$5 test=$6 requests=$7 rep=$8
	local pid gen_pid out=$TMP/run.out err=$TMP/run.err before after status=ok rc=0
	local rps="" p50="" p99="" done_requests=$requests bad=0
	local -a target cmd
	pid=$(server_pid "$server")
	alive "$pid" || die "$server (pid $pid) is gone: see its log"
	read -r -a target <<<"$(target_args "$server" "$transport")"
	if [[ $gen == redis-benchmark ]]; then
		cmd=(redis-benchmark "${target[@]}" -c "$clients" -P "$pipeline" -n "$requests"
			-t "$test" --csv)
		# --threads 1 is not the default single-threaded loop: it switches to the
		# multi-threaded code path; ask for threads only when more than one.
		((THREADS == 1)) || cmd+=(--threads "$THREADS")
	else
		cmd=("$MUXD_BENCH" "${target[@]}" -c "$clients" -P "$pipeline" -n "$requests"
			-t "$test" --threads "$THREADS" --quiet --json)
	fi
	before=$(cpu_ticks "$pid")
	# In the background and waited for, so that Ctrl-C or SIGTERM reaches the trap at once
	# (bash defers traps while a foreground command runs); the trap stops it.
	timeout -k 5 "$RUN_TIMEOUT" "${cmd[@]}" >"$out" 2>"$err" &
	gen_pid=$!
	LIVE[$gen_pid]=$gen
	wait "$gen_pid" || rc=$?
	unset "LIVE[$gen_pid]"
	if ! alive "$pid"; then
		if [[ $server == muxd ]]; then show_log "$MUXD_LOG"; else show_log "$REDIS_LOG"; fi
		die "$server (pid $pid) died during: ${cmd[*]}"
	fi
	after=$(cpu_ticks "$pid")
	[[ $rep == warmup ]] && return 0
	if ((rc != 0)); then
		status=fail
		((rc == 124)) && log "  timed out after ${RUN_TIMEOUT}s"
		log "  failed (exit $rc): ${cmd[*]}"
		show_log "$err"
		show_log "$out"
	elif [[ $gen == redis-benchmark ]]; then
		# "PING_MBULK","rps","avg","min","p50","p95","p99","max" (latencies in ms)
		read -r rps p50 p99 < <(tail -n 1 "$out" | tr -d '"' |
			awk -F, '{ printf "%s %.0f %.0f\n", $2, $5 * 1000, $7 * 1000 }')
	else
		read -r rps p50 p99 done_requests bad < <(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.lstrip().startswith("{")]
r = rows[-1]
print(r["rps"], r["p50_us"], r["p99_us"], r["requests"], r.get("errors", 0) + r.get("wrong", 0))
' "$out") || status=fail
	fi
	if [[ $status == ok && ! $rps =~ ^[0-9.]+$ ]]; then
		status=fail
		log "  could not read a result from ${cmd[*]}"
		show_log "$out"
	fi
	if [[ $status == ok && $bad != 0 ]]; then
		status=fail
		log "  $bad errors or wrong replies: ${cmd[*]}"
	fi
	[[ $status == ok ]] || FAILED=$((FAILED + 1))
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$gen" "$transport" \
		"$clients" "$pipeline" "$test" "$server" "$rep" "$status" "${rps:-0}" "${p50:-0}" \
		"${p99:-0}" $((after - before)) "$done_requests" >>"$RESULTS"
	printf '%s\n' "${rps:-FAILED}"
}

# ---------------------------------------------------------------------------- facts

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
CLK_TCK=$(getconf CLK_TCK)
facts() {
	local cpu rev redis_v bench_v rustc_v
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
	rev="$rev ($(git -C "$ROOT" rev-parse --abbrev-ref HEAD 2>/dev/null || echo '?'))"
	redis_v=$(redis-server --version 2>/dev/null || echo 'not installed')
	bench_v=$(redis-benchmark --version 2>/dev/null || echo 'not installed')
	rustc_v=$(rustc --version 2>/dev/null || echo unknown)
	echo "# muxd benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# machine:  $(nproc) cores (nproc), ${cpu:-unknown cpu}, $(uname -srm), load avg $START_LOAD at start"
	echo "# muxd:     git $rev, $rustc_v, release build"
	echo "# redis:    $redis_v"
	echo "# loadgen:  $bench_v; muxd-bench $(
		[[ " ${GENS[*]} " == *" muxd-bench "* ]] && echo present || echo absent
	); $THREADS thread(s) each"
	echo "# method:   median of $REPEAT run(s) per cell, servers interleaved; CPU from /proc/PID/stat (CLK_TCK $CLK_TCK); open-file limit $(ulimit -n)"
}
facts >"$TMP/facts"
cat "$TMP/facts" >&2

# ---------------------------------------------------------------------- throughput

# shellcheck source=scripts/bench_fanout.sh
source "$ROOT/scripts/bench_fanout.sh"

# transport clients pipeline test requests
CELLS=()
for transport in tcp unix; do
	CELLS+=("$transport 50 1 ping_mbulk $N_P1")
	CELLS+=("$transport 50 16 ping_inline $N_P16")
	CELLS+=("$transport 50 16 ping_mbulk $N_P16")
	CELLS+=("$transport 1000 1 ping_mbulk $N_C1000")
done
if ((TLS)); then
	CELLS+=("tls 50 1 ping_mbulk $N_P1")
	CELLS+=("tls 50 16 ping_mbulk $N_P16")
fi

if ((FANOUT_ONLY)); then CELLS=(); fi
((${#CELLS[@]} == 0)) || start_muxd
((${#CELLS[@]} == 0)) || log "muxd pid $MUXD_PID on tcp 127.0.0.1:$MUXD_PORT and $MUXD_SOCK"
if ((${#CELLS[@]} > 0)) && [[ " ${SERVERS[*]} " == *" redis "* ]]; then
	start_redis
	log "redis-server pid $REDIS_PID on tcp 127.0.0.1:$REDIS_PORT and $REDIS_SOCK"
fi

((${#CELLS[@]} == 0)) || log "warming up"
for gen in "${GENS[@]}"; do
	((${#CELLS[@]} > 0)) || break
	for server in "${SERVERS[@]}"; do
		run_one "$gen" "$server" tcp 50 16 ping_mbulk "$WARMUP_N" warmup >/dev/null
	done
done

total=$((${#CELLS[@]} * REPEAT * ${#GENS[@]} * ${#SERVERS[@]}))
count=0
for cell in "${CELLS[@]}"; do
	read -r transport clients pipeline test requests <<<"$cell"
	for ((rep = 1; rep <= REPEAT; rep++)); do
		for gen in "${GENS[@]}"; do
			for server in "${SERVERS[@]}"; do
				count=$((count + 1))
				printf '[%d/%d] %s %s -c %s -P %s %s -> %s: ' "$count" "$total" "$gen" \
					"$transport" "$clients" "$pipeline" "$test" "$server" >&2
				run_one "$gen" "$server" "$transport" "$clients" "$pipeline" "$test" \
					"$requests" "$rep" >&2
			done
		done
	done
done
stop_servers
((${#CELLS[@]} == 0)) || log "throughput done after ${SECONDS}s"

if ((FANOUT)) && [[ " ${GENS[*]} " == *" muxd-bench "* ]]; then
	run_fanout
elif ((FANOUT)); then
	note "the fan-out table needs muxd-bench; skipped"
fi

# -------------------------------------------------------------------------- memory

# Waits until a server reports at least $2 connected_clients in INFO clients, for at most
# IDLE_TIMEOUT seconds while the generator $3 is alive.
connected_clients() {
	{ redis-cli -h 127.0.0.1 -p "$1" info clients 2>/dev/null || true; } |
		tr -d '\r' | sed -n 's/^connected_clients://p'
}
wait_connected() {
	local port=$1 want=$2 gen_pid=$3 i n=0
	for ((i = 0; i < IDLE_TIMEOUT * 5; i++)); do
		n=$(connected_clients "$port")
		n=${n:-0}
		((n >= want)) && return 0
		alive "$gen_pid" || break
		sleep 0.2
	done
	log "  only $n of $want clients connected"
	return 1
}

# idle_one GEN SERVER TRANSPORT: fresh server, RSS before, IDLE_N idle connections (tcp or
# tls), RSS after. A fresh server each time, so that memory freed by an earlier test cannot
# be reused.
idle_one() {
	local gen=$1 server=$2 transport=$3 pid port before after status=ok gen_pid fd="" line="" base
	local fifo=$TMP/idle.$gen.$server.$transport.out logf=$TMP/idle.$gen.$server.$transport.log
	local -a target
	if [[ $server == muxd ]]; then
		start_muxd
		pid=$MUXD_PID port=$MUXD_PORT
	else
		start_redis
		pid=$REDIS_PID port=$REDIS_PORT
	fi
	read -r -a target <<<"$(target_args "$server" "$transport")"
	before=$(rss_kb "$pid")
	if [[ $gen == muxd-bench ]]; then
		mkfifo "$fifo"
		exec {fd}<>"$fifo"
		"$MUXD_BENCH" "${target[@]}" --idle "$IDLE_N" --duration $((IDLE_TIMEOUT * 2)) \
			>"$fifo" 2>"$logf" &
		gen_pid=$!
		LIVE[$gen_pid]=muxd-bench
		if ! read -r -t "$IDLE_TIMEOUT" -u "$fd" line || [[ $line != "IDLE $IDLE_N connected" ]]; then
			log "  muxd-bench --idle printed '${line:-nothing}' instead of 'IDLE $IDLE_N connected'"
			show_log "$logf"
			status=fail
		fi
	else
		# Whether INFO counts the asking connection itself: count with no one else there.
		base=$(connected_clients "$port")
		redis-benchmark "${target[@]}" -I -c "$IDLE_N" >"$logf" 2>&1 &
		gen_pid=$!
		LIVE[$gen_pid]=redis-benchmark
		wait_connected "$port" $((${base:-0} + IDLE_N)) "$gen_pid" || {
			show_log "$logf"
			status=fail
		}
	fi
	after=$(rss_kb "$pid")
	stop_pid "$gen_pid"
	if [[ -n $fd ]]; then exec {fd}<&-; fi
	stop_servers
	[[ $status == ok ]] || FAILED=$((FAILED + 1))
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$gen" "$transport" "$server" "$IDLE_N" "$before" "$after" "$status" >>"$MEMORY"
	log "  RSS $before KiB -> $after KiB ($status)"
}

IDLE_TRANSPORTS=(tcp)
((TLS)) && IDLE_TRANSPORTS+=(tls)
((FANOUT_ONLY)) && IDLE_TRANSPORTS=()
for transport in "${IDLE_TRANSPORTS[@]}"; do
	for gen in "${GENS[@]}"; do
		for server in "${SERVERS[@]}"; do
			log "idle: $gen holds $IDLE_N $transport connections to a fresh $server"
			idle_one "$gen" "$server" "$transport"
		done
	done
done

# -------------------------------------------------------------------------- report

[[ -n $RAW ]] && cp "$RESULTS" "$RAW" && tail -n +2 "$MEMORY" | sed 's/^/memory\t/' >>"$RAW"

{
	cat "$TMP/facts"
	echo
	python3 - "$RESULTS" "$MEMORY" "$CLK_TCK" <<'PY'
import csv, statistics, sys

runs_file, memory_file, clk_tck = sys.argv[1], sys.argv[2], int(sys.argv[3])
median = statistics.median

cells = {}  # (gen, transport, clients, pipeline, test) -> server -> [run]
order = []
with open(runs_file) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        key = (r["generator"], r["transport"], int(r["clients"]), int(r["pipeline"]), r["test"])
        if key not in cells:
            cells[key] = {}
            order.append(key)
        cells[key].setdefault(r["server"], []).append(r)

def summary(runs):
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return None
    rps = [float(r["rps"]) for r in ok]
    cpu = [int(r["cpu_ticks"]) / clk_tck / int(r["requests"]) * 1e6 for r in ok]
    m = median(rps)
    return {
        "rps": m,
        "spread": (max(rps) - min(rps)) / 2 / m * 100 if m else 0,
        "p50": median(float(r["p50_us"]) for r in ok) / 1000,
        "p99": median(float(r["p99_us"]) for r in ok) / 1000,
        "cpu": median(cpu),
        "n": len(ok),
        "failed": len(runs) - len(ok),
    }

head = ("load generator", "link", "conns", "pipe", "test", "server",
        "req/s", "+-%", "p50 ms", "p99 ms", "CPU s/Mreq", "req/s x Redis", "CPU x Redis")
rows = []
for key in order:
    gen, transport, clients, pipeline, test = key
    s = {server: summary(runs) for server, runs in cells[key].items()}
    redis = s.get("redis")
    first = True
    for server in ("muxd", "redis"):
        if server not in cells[key]:
            continue
        m = s[server]
        lead = (gen, transport, str(clients), str(pipeline), test) if first else ("",) * 5
        first = False
        if m is None:
            rows.append(lead + (server, "FAILED") + ("",) * 6)
            continue
        ratio_rps = ratio_cpu = ""
        if server == "muxd" and redis:
            ratio_rps = f"{m['rps'] / redis['rps']:.2f}"
            ratio_cpu = f"{m['cpu'] / redis['cpu']:.2f}" if redis["cpu"] else "-"
        failed = f" ({m['failed']} failed)" if m["failed"] else ""
        rows.append(lead + (
            server, f"{m['rps']:,.0f}{failed}", f"{m['spread']:.0f}" if m["n"] > 1 else "-",
            f"{m['p50']:.3f}", f"{m['p99']:.3f}", f"{m['cpu']:.2f}", ratio_rps, ratio_cpu))

def table(head, rows, left):
    """Prints rows under head; the columns numbered in `left` are text, the rest numbers."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    def fmt(row):
        return "  ".join(str(x).ljust(w) if i in left else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(row, widths))).rstrip()
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt(row))

if rows:
    print("Throughput and latency (PING; medians)")
    table(head, rows, {0, 1, 4, 5})

mem = list(csv.DictReader(open(memory_file), delimiter="\t"))
if mem:
    print()
    n = mem[0]["connections"]
    print(f"Memory: RSS growth of a fresh server for {n} idle connections (VmRSS before and after)")
    per = {}
    mrows = []
    for r in mem:
        before, after, conns = int(r["rss_before_kb"]), int(r["rss_after_kb"]), int(r["connections"])
        how = "muxd-bench --idle" if r["generator"] == "muxd-bench" else "redis-benchmark -I"
        lead = (how, r["transport"], r["server"])
        if r["status"] != "ok":
            mrows.append(lead + (f"{before:,}", f"{after:,}", "FAILED", ""))
            continue
        b = (after - before) * 1024 / conns
        per[(r["generator"], r["transport"], r["server"])] = b
        mrows.append(lead + (f"{before:,}", f"{after:,}", f"{b:,.0f}", ""))
    for i, r in enumerate(mem):
        g, t = r["generator"], r["transport"]
        if r["server"] == "muxd" and (g, t, "muxd") in per and per.get((g, t, "redis")):
            mrows[i] = mrows[i][:6] + (f"{per[(g, t, 'muxd')] / per[(g, t, 'redis')]:.2f}",)
    table(("load generator", "link", "server", "RSS before KiB", "RSS after KiB", "bytes/conn", "x Redis"), mrows, {0, 1, 2})
PY
	if (($(wc -l <"$FANOUT_RESULTS") > 1)); then
		echo
		fanout_table
	fi
	echo
	echo "# load avg $(cut -d' ' -f1-3 /proc/loadavg) at the end (it was $START_LOAD at the start); took ${SECONDS}s"
	for n in "${NOTES[@]}"; do
		echo "# note: $n"
	done
	((FAILED == 0)) || echo "# $FAILED run(s) FAILED: see the messages above the table"
	printf '# command: (cd %q &&' "$ROOT"
	for var in "${ORIG_ENV[@]}"; do
		printf ' %s=%q' "${var%%=*}" "${var#*=}"
	done
	printf ' %q' scripts/bench.sh "${ORIG_ARGS[@]}"
	printf ')\n'
}

((FAILED == 0))
