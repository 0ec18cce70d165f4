#!/usr/bin/env bash
# Load-generator comparison: a 1-router + 2-shard-node cluster on loopback (real processes,
# a real redis-server with AOF) against a `--role all` single node, same generated base,
# same load. Prints both tables (QPS, p50/p99/p999, every status code).
#
#   benches/cluster/run.sh [CUSTOMERS] [SECONDS] [more `doppel bench load` flags...]
#   e.g. benches/cluster/run.sh 20000 10 --lookalike-share 0
#
# Needs redis-server on PATH; builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
CUSTOMERS=${1:-20000}
SECONDS_OF_LOAD=${2:-10}
EXTRA=("${@:3}")
cargo build --release --locked -p doppel
BIN=target/release/doppel
. benches/cluster/cluster.sh

echo "== cluster: 1 router + 2 shard nodes (loopback, Redis with AOF)"
"$BIN" bench load --addr "http://127.0.0.1:$ROUTER_PORT" --load-target \
    --customers "$CUSTOMERS" --seconds "$SECONDS_OF_LOAD" "${EXTRA[@]}"
echo
echo "== single node: --role all, embedded store, in-process"
"$BIN" bench load --customers "$CUSTOMERS" --seconds "$SECONDS_OF_LOAD" "${EXTRA[@]}"
