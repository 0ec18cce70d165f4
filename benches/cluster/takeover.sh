#!/usr/bin/env bash
# Takeover time: a 1-router + 2-shard-node cluster on loopback (real processes, a real
# redis-server with AOF) loaded with a generated base through the router; then one shard
# node is killed (SIGKILL) and the survivor takes its shards over. Prints the time from the
# kill to the survivor's "shards loaded" (the lease running out, `LEASE_TTL` 6 s, included),
# the survivor's own elapsed time for the load, its RSS, and a load through the router
# afterwards (every status), so every shard answers again.
#
#   benches/cluster/takeover.sh [CUSTOMERS]
#   e.g. benches/cluster/takeover.sh 200000
#
# Needs redis-server on PATH; builds the release binary. The survivor never held the dead
# node's shards, so it has no snapshot of them: it reads their profiles, events and vectors
# from Redis and builds their graphs (the "without a snapshot" case of docs/scaling.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
CUSTOMERS=${1:-200000}
cargo build --release --locked -p doppel
BIN=target/release/doppel
SHARD_LOG=info
. benches/cluster/cluster.sh
now() { date +%s.%N; }

echo "== load $CUSTOMERS customers through the router (upload, train, activate), then 5 s of load"
STARTED=$(now)
"$BIN" bench load --addr "http://127.0.0.1:$ROUTER_PORT" --load-target \
    --customers "$CUSTOMERS" --seconds 5 --lookalike-share 0.05
echo "loaded and measured in $(python3 -c "print(round($(now) - $STARTED, 1))") s"
sleep 5

rss_mb() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }
echo "== kill -9 shard-1; shard-0 takes its shards over"
echo "shard-0 RSS before: $(rss_mb "${SHARD_PIDS[0]}") MB"
BEFORE=$(grep -c "shards loaded" "$WORK/shard-0.log" || true)
KILLED=$(now)
kill -9 "${SHARD_PIDS[1]}"
for _ in $(seq 1 36000); do
    AFTER=$(grep -c "shards loaded" "$WORK/shard-0.log" || true)
    if [ "$AFTER" -gt "$BEFORE" ]; then break; fi
    sleep 0.1
done
LOADED=$(now)
[ "$AFTER" -gt "$BEFORE" ] || { echo "no takeover within an hour"; exit 1; }
echo "kill → shards loaded on shard-0: $(python3 -c "print(round($LOADED - $KILLED, 2))") s (lease TTL 6 s included)"
grep "shards loaded" "$WORK/shard-0.log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g'
echo "shard-0 RSS after: $(rss_mb "${SHARD_PIDS[0]}") MB"
echo "shard map owners: $(redis-cli -p "$REDIS_PORT" --raw hvals 'doppel:{global}:shard_map' | sort | uniq -c | tr '\n' ' ')"

echo "== 5 s of load through the router after the takeover"
"$BIN" bench load --addr "http://127.0.0.1:$ROUTER_PORT" \
    --customers "$CUSTOMERS" --seconds 5 --lookalike-share 0.05
