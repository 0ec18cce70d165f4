# Sourced by the cluster benches: starts a real redis-server (AOF) and a 1-router +
# 2-shard-node cluster on loopback, and waits until the two nodes hold the 16 shards.
# Sets WORK, PIDS, SHARD_PIDS, REDIS_PORT, REDIS and ROUTER_PORT; `BIN` must be set and
# the caller's shell must use `set -euo pipefail`. Shard nodes log at $SHARD_LOG (warn).

PIDS=()
SHARD_PIDS=()
WORK=$(mktemp -d)
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
    DOPPEL_LOG=${SHARD_LOG:-warn} "$BIN" serve --role shard --node-id "shard-$n" \
        --listen "127.0.0.1:$(free_port)" --internal-listen "127.0.0.1:$(free_port)" \
        --redis "$REDIS" --data-dir "$WORK/shard-$n" >"$WORK/shard-$n.log" 2>&1 &
    PIDS+=($!)
    SHARD_PIDS+=($!)
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
