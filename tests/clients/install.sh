#!/usr/bin/env bash
# Installs the client libraries of the real-client matrix (tests/client_matrix), each at
# its latest release, into DIR (default: ${XDG_CACHE_HOME:-~/.cache}/muxd-test-clients,
# where the tests look when the variables below are unset):
#
#   DIR/venv               a Python venv with redis (redis-py) and hiredis, from PyPI
#   DIR/node/node_modules  redis (node-redis) and ioredis, from npm
#
# Progress and the versions installed go to stderr; stdout gets the lines that point the
# tests at them, for `eval`:
#
#   export MUXD_TEST_PYTHON=DIR/venv/bin/python
#   export MUXD_TEST_NODE_PATH=DIR/node/node_modules
#
# Needs python3 (with its venv module), node and npm. .ci/run runs it.
set -euo pipefail

dir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/muxd-test-clients}
mkdir -p "$dir/node"
dir=$(cd "$dir" && pwd)

{
	python3 -m venv "$dir/venv"
	"$dir/venv/bin/pip" install --quiet --disable-pip-version-check --upgrade redis hiredis
	cd "$dir/node"
	[[ -f package.json ]] || npm init -y >/dev/null
	npm install --no-audit --no-fund --loglevel=error redis@latest ioredis@latest

	echo "client matrix: installed in $dir:"
	"$dir/venv/bin/python" -c 'import sys, redis, hiredis; print(f"  python {sys.version.split()[0]}, redis-py {redis.__version__}, hiredis {hiredis.__version__}")'
	NODE_PATH=$dir/node/node_modules node -e '
		const v = (p) => require(p + "/package.json").version;
		console.log(`  node ${process.versions.node}, node-redis ${v("redis")}, ioredis ${v("ioredis")}`);'
} >&2

printf 'export MUXD_TEST_PYTHON=%q\n' "$dir/venv/bin/python"
printf 'export MUXD_TEST_NODE_PATH=%q\n' "$dir/node/node_modules"
