# The fan-out part of scripts/bench.sh (sourced by it, not run on its own): one publisher
# to 1, 100 and 1,000 subscribers, 64 B and 4 KiB payloads, over TCP and Unix, muxd and
# Redis interleaved, with `muxd-bench --pubsub`. Uses bench.sh's helpers (start_muxd,
# start_redis, stop_servers, target_args, cpu_ticks, alive, LIVE, TMP, ...).
#
# Both servers run with their pub/sub output limits off for this part, so that a load
# generator that falls behind is measured rather than disconnected.

FANOUT_RESULTS=$TMP/fanout.tsv
printf 'transport\tsubscribers\tpayload\tserver\trep\tstatus\tdelivered\tdelivered_per_s\tp99_us\tcpu_ticks\n' >"$FANOUT_RESULTS"

# Messages each cell publishes: about FANOUT_DELIVERIES deliveries (fewer for 4 KiB),
# between 2,000 and 1,000,000 messages.
fanout_messages() {
	local subscribers=$1 payload=$2 deliveries=$FANOUT_DELIVERIES n
	((payload > 1024)) && deliveries=$((deliveries / 8))
	n=$((deliveries / subscribers))
	((n < 2000)) && n=2000
	((n > 1000000)) && n=1000000
	echo "$n"
}

# fanout_one SERVER TRANSPORT SUBSCRIBERS PAYLOAD REP: one run, one row.
fanout_one() {
	local server=$1 transport=$2 subscribers=$3 payload=$4 rep=$5
	local pid gen_pid out=$TMP/fanout.out err=$TMP/fanout.err before after rc=0 status=ok
	local delivered="" rate="" p99="" bad=0 n
	local -a target cmd
	pid=$(server_pid "$server")
	alive "$pid" || die "$server (pid $pid) is gone: see its log"
	read -r -a target <<<"$(target_args "$server" "$transport")"
	n=$(fanout_messages "$subscribers" "$payload")
	[[ $rep == warmup ]] && n=2000
	cmd=("$MUXD_BENCH" "${target[@]}" --pubsub --publishers 1 --subscribers "$subscribers"
		-d "$payload" -P "$FANOUT_PIPELINE" -n "$n" --threads "$THREADS" --quiet --json)
	before=$(cpu_ticks "$pid")
	timeout -k 5 "$RUN_TIMEOUT" "${cmd[@]}" >"$out" 2>"$err" &
	gen_pid=$!
	LIVE[$gen_pid]=muxd-bench
	wait "$gen_pid" || rc=$?
	unset "LIVE[$gen_pid]"
	alive "$pid" || die "$server (pid $pid) died during: ${cmd[*]}"
	after=$(cpu_ticks "$pid")
	[[ $rep == warmup ]] && return 0
	if ((rc != 0)); then
		status=fail
		log "  failed (exit $rc): ${cmd[*]}"
		show_log "$err"
	fi
	read -r delivered rate p99 bad < <(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.lstrip().startswith("{")]
r = rows[-1] if rows else {}
print(r.get("delivered", 0), r.get("delivered_per_s", 0), r.get("p99_us", 0),
      r.get("lost", 0) + r.get("duplicated", 0) + r.get("wrong", 0) + r.get("errors", 0))
' "$out") || status=fail
	if [[ $status == ok && $bad != 0 ]]; then
		status=fail
		log "  $bad messages lost, duplicated or miscounted, or errors: ${cmd[*]}"
	fi
	[[ $status == ok ]] || FAILED=$((FAILED + 1))
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$transport" "$subscribers" "$payload" \
		"$server" "$rep" "$status" "${delivered:-0}" "${rate:-0}" "${p99:-0}" \
		$((after - before)) >>"$FANOUT_RESULTS"
	printf '%s\n' "${rate:-FAILED}"
}

run_fanout() {
	local transport subscribers payload rep server total count=0
	MUXD_EXTRA=(--pubsub-hard-limit 0 --pubsub-soft-limit 0)
	REDIS_EXTRA=(--client-output-buffer-limit "pubsub 0 0 0")
	start_muxd
	if [[ " ${SERVERS[*]} " == *" redis "* ]]; then start_redis; fi
	MUXD_EXTRA=() REDIS_EXTRA=()
	log "fan-out: warming up"
	for server in "${SERVERS[@]}"; do
		fanout_one "$server" tcp 100 64 warmup >/dev/null
	done
	total=$((2 * 3 * 2 * REPEAT * ${#SERVERS[@]}))
	for transport in tcp unix; do
		for subscribers in 1 100 1000; do
			for payload in 64 4096; do
				for ((rep = 1; rep <= REPEAT; rep++)); do
					for server in "${SERVERS[@]}"; do
						count=$((count + 1))
						printf '[%d/%d] fan-out %s 1 -> %s x %s B -> %s: ' "$count" "$total" \
							"$transport" "$subscribers" "$payload" "$server" >&2
						fanout_one "$server" "$transport" "$subscribers" "$payload" "$rep" >&2
					done
				done
			done
		done
	done
	stop_servers
	log "fan-out done after ${SECONDS}s"
}

# Prints the fan-out table from $FANOUT_RESULTS.
fanout_table() {
	python3 - "$FANOUT_RESULTS" "$CLK_TCK" "$FANOUT_PIPELINE" <<'PY'
import csv, statistics, sys

path, clk_tck, pipeline = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cells, order = {}, []
for r in csv.DictReader(open(path), delimiter="\t"):
    key = (r["transport"], int(r["subscribers"]), int(r["payload"]))
    if key not in cells:
        cells[key] = {}
        order.append(key)
    cells[key].setdefault(r["server"], []).append(r)

def summary(runs):
    ok = [r for r in runs if r["status"] == "ok" and int(r["delivered"]) > 0]
    if not ok:
        return None
    rate = statistics.median(float(r["delivered_per_s"]) for r in ok)
    return {
        "rate": rate,
        "p99": statistics.median(float(r["p99_us"]) for r in ok) / 1000,
        "cpu": statistics.median(int(r["cpu_ticks"]) / clk_tck / int(r["delivered"]) * 1e6 for r in ok),
        "failed": len(runs) - len(ok),
    }

head = ("link", "subs", "payload", "server", "delivered/s", "p99 ms", "CPU s/M delivered",
        "delivered/s x Redis", "CPU x Redis")
rows = []
for key in order:
    transport, subs, payload = key
    s = {server: summary(runs) for server, runs in cells[key].items()}
    redis, first = s.get("redis"), True
    for server in ("muxd", "redis"):
        if server not in cells[key]:
            continue
        m = s[server]
        lead = (transport, str(subs), f"{payload} B") if first else ("",) * 3
        first = False
        if m is None:
            rows.append(lead + (server, "FAILED", "", "", "", ""))
            continue
        r_rate = r_cpu = ""
        if server == "muxd" and redis:
            r_rate = f"{m['rate'] / redis['rate']:.2f}"
            r_cpu = f"{m['cpu'] / redis['cpu']:.2f}" if redis["cpu"] else "-"
        failed = f" ({m['failed']} failed)" if m["failed"] else ""
        rows.append(lead + (server, f"{m['rate']:,.0f}{failed}", f"{m['p99']:.2f}",
                            f"{m['cpu']:.3f}", r_rate, r_cpu))

widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
def fmt(row):
    return "  ".join(str(x).ljust(w) if i in (0, 3) else str(x).rjust(w)
                     for i, (x, w) in enumerate(zip(row, widths))).rstrip()
print(f"Fan-out (muxd-bench --pubsub, 1 publisher -P {pipeline}; medians; pub/sub output limits off)")
print(fmt(head))
print("  ".join("-" * w for w in widths))
for row in rows:
    print(fmt(row))
PY
}
