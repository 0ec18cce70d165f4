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
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    status=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$status" != 0 ]; then
        for log in "$WORK"/*.log; do echo "--- $log"; tail -n 20 "$log"; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync everysec --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
REDIS="redis://127.0.0.1:$REDIS_PORT"

for n in 0 1; do
    mkdir -p "$WORK/shard-$n"
    DOPPEL_LOG=warn "$BIN" serve --role shard --node-id "shard-$n" \
        --listen "127.0.0.1:$(free_port)" --internal-listen "127.0.0.1:$(free_port)" \
        --redis "$REDIS" --data-dir "$WORK/shard-$n" >"$WORK/shard-$n.log" 2>&1 &
    PIDS+=($!)
done
ROUTER_PORT=$(free_port)
DOPPEL_LOG=warn "$BIN" serve --role router --listen "127.0.0.1:$ROUTER_PORT" \
    --redis "$REDIS" --data-dir "$WORK/router" >"$WORK/router.log" 2>&1 &
PIDS+=($!)
# Wait until both shard nodes claimed their shards (all 16 mapped, over 2 nodes), then for
# the hand-off of what the first node took before the second one joined.
SETTLED=no
for _ in $(seq 1 120); do
    MAPPED=$(redis-cli -p "$REDIS_PORT" hlen 'doppel:{global}:shard_map')
    OWNERS=$(redis-cli -p "$REDIS_PORT" --raw hvals 'doppel:{global}:shard_map' | sort -u | wc -l)
    if [ "$MAPPED" = "16" ] && [ "$OWNERS" = "2" ]; then SETTLED=yes; break; fi
    sleep 0.5
done
[ "$SETTLED" = yes ] || { echo "shard nodes did not claim their shards"; exit 1; }
sleep 5

echo "== cluster: 1 router + 2 shard nodes (loopback, Redis with AOF)"
"$BIN" bench load --addr "http://127.0.0.1:$ROUTER_PORT" --load-target \
    --customers "$CUSTOMERS" --seconds "$SECONDS_OF_LOAD" "${EXTRA[@]}"
echo
echo "== single node: --role all, embedded store, in-process"
"$BIN" bench load --customers "$CUSTOMERS" --seconds "$SECONDS_OF_LOAD" "${EXTRA[@]}"
