#!/usr/bin/env bash
# One row of muxd's real-client matrix for redis-cli (tests/client_matrix runs it).
#
#   redis_cli_check.sh --target tcp://HOST:PORT|unix:///PATH [--password PW]
#                      [--mode resp2|resp3] [--server muxd|redis]
#
# --mode resp3 is `redis-cli -3` (HELLO 3 on connect). Checks, each run with nothing on
# stderr: PING; ECHO of a binary payload (-x, from a file); ADD/SUM on one connection
# (commands on stdin); CLIENT SETNAME then CLIENT LIST (name and resp= shown); --pipe of
# 1,000 commands (redis-cli counts the replies and errors, it does not show them). With
# --password the server requires it: the row connects with -a, and a wrong password must
# print "AUTH failed: WRONGPASS ...". --server redis swaps ADD/SUM for INCRBY and a Lua
# get-and-delete, which a real redis-server has, with the same replies.
set -euo pipefail

target='' password='' mode=resp2 server=muxd
while (($#)); do
	case $1 in
	--target) target=$2 ;;
	--password) password=$2 ;;
	--mode) mode=$2 ;;
	--server) server=$2 ;;
	*) echo "usage: $0 --target tcp://HOST:PORT|unix:///PATH [--password PW] [--mode resp2|resp3] [--server muxd|redis]" >&2 && exit 2 ;;
	esac
	shift 2
done

case $target in
unix://*) conn=(-s "${target#unix://}") ;;
tcp://*)
	hostport=${target#tcp://}
	conn=(-h "${hostport%:*}" -p "${hostport##*:}")
	;;
*) echo "bad --target $target" >&2 && exit 2 ;;
esac
case $mode in
resp2) conn+=() proto=2 ;;
resp3) conn+=(-3) proto=3 ;;
*) echo "bad --mode $mode" >&2 && exit 2 ;;
esac

label="$(redis-cli --version) mode=$mode $target${password:+ with password}"
echo "$label"
step=start
fail() {
	echo "FAIL $label: $step: $*" >&2
	exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

auth=()
[[ -z $password ]] || auth=(-a "$password" --no-auth-warning)

# Runs redis-cli on the target with the row's password, failing the row if it exits
# non-zero or writes to stderr (e.g. "HELLO 3 failed: ...").
cli() {
	if ! redis-cli "${conn[@]}" "${auth[@]}" "$@" 2>"$tmp/stderr"; then
		fail "redis-cli $* exited non-zero; stderr: $(cat "$tmp/stderr")"
	fi
	[[ ! -s $tmp/stderr ]] || fail "redis-cli $* wrote to stderr: $(cat "$tmp/stderr")"
}

expect() { # expect WHAT GOT WANT
	[[ $2 == "$3" ]] || fail "$1: expected $(printf %q "$3"), got $(printf %q "$2")"
}

# ADD/SUM as command lines; on Redis, INCRBY and a script with the same integer replies.
key=matrix:adder:$$
add() {
	if [[ $server == muxd ]]; then
		echo "ADD $*"
	else
		local n sum=0
		for n; do sum=$((sum + n)); done
		echo "INCRBY $key $sum"
	fi
}
sum() {
	if [[ $server == muxd ]]; then
		echo SUM
	else
		echo "EVAL \"local v = redis.call('GET', KEYS[1]) or 0 redis.call('DEL', KEYS[1]) return tonumber(v)\" 1 $key"
	fi
}

row() {
	# A failing cli exits its $(...) subshell only: assigning the output first ends the row.
	local out
	step=PING
	out=$(cli PING)
	expect PING "$out" PONG

	step=ECHO
	{
		printf 'a\r\nb'
		for i in $(seq 0 255); do printf "\\$(printf %03o "$i")"; done
		printf '\r\n*1\r\n$-1\r\n\0'
	} >"$tmp/payload"
	cli -x ECHO <"$tmp/payload" >"$tmp/echoed"
	# redis-cli prints the reply, then a newline.
	printf '\n' >>"$tmp/payload"
	cmp -s "$tmp/payload" "$tmp/echoed" || fail "ECHO binary payload: got $(od -An -c "$tmp/echoed" | head -c 400)"

	step='ADD and SUM'
	out=$(printf '%s\n' "$(add 1 2 3)" "$(add -10)" "$(sum)" "$(sum)" | cli)
	expect "$step" "$out" $'6\n-4\n-4\n0'

	step='CLIENT SETNAME, CLIENT LIST'
	local name=matrix-redis-cli-$mode-$$ row
	out=$(printf '%s\n' "CLIENT SETNAME $name" 'CLIENT LIST' | cli)
	expect 'CLIENT SETNAME' "${out%%$'\n'*}" OK
	row=$(grep -E "(^| )name=$name( |$)" <<<"$out") || fail "no CLIENT LIST row named $name in: $out"
	[[ " $row " == *" resp=$proto "* ]] || fail "CLIENT LIST row without resp=$proto: $row"

	step='--pipe of 1000'
	local i
	for ((i = 0; i < 1000; i++)); do
		if ((i % 2)); then
			add 1
		else
			echo "ECHO m$i"
		fi
	done | while read -r -a words; do
		printf '*%d\r\n' "${#words[@]}"
		for w in "${words[@]}"; do printf '$%d\r\n%s\r\n' "${#w}" "$w"; done
	done >"$tmp/pipe"
	out=$(cli --pipe <"$tmp/pipe")
	[[ $out == *'errors: 0, replies: 1000'* ]] || fail "expected 'errors: 0, replies: 1000' in: $out"
}

wrong_password() {
	step='wrong password'
	local out
	out=$(redis-cli "${conn[@]}" -a "$password-wrong" --no-auth-warning PING 2>"$tmp/stderr") || true
	grep -q '^AUTH failed: WRONGPASS' "$tmp/stderr" ||
		fail "expected 'AUTH failed: WRONGPASS' on stderr; stdout: $out; stderr: $(cat "$tmp/stderr")"
}

row
[[ -z $password ]] || wrong_password
echo "ok $label"
