#!/usr/bin/env bash
# Exports of ROWS synthetic customers with KEYS keys (8: EMAIL, PHONE, FN, LN,
# CT, ST, ZIP, COUNTRY; 5: EMAIL, PHONE, FN, LN, ZIP) to the Graph API
# simulator with LATENCY_MS per request, side by side on the same segment:
# add, replace, a first mirror run, and a mirror run after 1% of the rows
# changed. Run by hand, as root, after `make install`:
#   test/bench/export_bench.sh [ROWS] [LATENCY_MS] [PARALLEL] [KEYS]   # defaults 1000000 200 8 8
# Reports, per run, the wall time and its ratio to the add run, rows per
# second, the exporting worker's peak private memory and CPU, and the
# simulator's CPU; then the mirror ledger's bytes per row.
set -euo pipefail

rows=${1:-1000000}
latency=${2:-200}
parallel=${3:-8}
keys=${4:-8}
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/cluster.sh"
source "$repo/scripts/lib/graph_sim.sh"
source "$repo/test/bench/bench_customers.sh"
throwaway_work_dir bench

graph_sim_start "$work/sim" --token EAAbenchToken --ad-account act_1 --latency-ms "$latency" \
  --kept-rows-cap 0
CLUSTER_PORT=54332 cluster_start "$work/cluster" "connector.graph_api_url = '$GRAPH_SIM_URL'" \
  "shared_buffers = 1GB" "max_worker_processes = 32" "jit = off"

psql -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION connector" \
  -c "SELECT fb_create_destination('bench', 'act_1', 'EAAbenchToken', consent => true)"
bench_customers "$rows" "$keys"

# One waited export; prints "MODE SECONDS PEAK_KB CPU_TICKS SIM_CPU_SECONDS ROWS_SENT ROWS_REMOVED".
measure() { # measure MODE AUDIENCE
  local mode=$1 audience=$2 export_pid worker anon ticks peak_kb=0 cpu_ticks=0 started finished
  local sim_before sim_after
  sim_before=$(curl -s "$GRAPH_SIM_URL/_sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['process_cpu_seconds'])")
  started=$(date +%s.%N)
  psql -q -c "SET connector.max_parallel_requests = $parallel" -c "SET connector.mirror_max_removal = 1" \
    -c "SELECT fb_export_segment('segment', 'bench', mode => '$mode', audience_name => '$audience', wait => true)" \
    >/dev/null 2>>"$work/notices" &
  export_pid=$!
  # Sample the export worker until it ends: its peak private memory (RssAnon:
  # VmHWM would also count the shared buffers it touched), and its CPU time.
  while kill -0 "$export_pid" 2>/dev/null; do
    worker=$(psql -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'connector export'" 2>/dev/null | head -n 1)
    if [ -n "$worker" ] && [ -r "/proc/$worker/status" ]; then
      anon=$(awk '/RssAnon/ {print $2}' "/proc/$worker/status" 2>/dev/null || echo 0)
      ticks=$(awk '{print $14 + $15}' "/proc/$worker/stat" 2>/dev/null || echo 0)
      [ "${anon:-0}" -gt "$peak_kb" ] && peak_kb=$anon
      [ "${ticks:-0}" -gt "$cpu_ticks" ] && cpu_ticks=$ticks
    fi
    sleep 0.2
  done
  wait "$export_pid"
  finished=$(date +%s.%N)
  sim_after=$(curl -s "$GRAPH_SIM_URL/_sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['process_cpu_seconds'])")
  echo "$mode $(echo "$finished - $started" | bc) $peak_kb $cpu_ticks $(echo "$sim_after - $sim_before" | bc)" \
    "$(psql -At -c "SELECT rows_sent || ' ' || rows_removed FROM fb_export_runs ORDER BY run_id DESC LIMIT 1")"
}

{
  measure add "bench add"
  measure replace "bench replace"
  measure mirror "bench mirror"
  # 1% of the customers change their e-mail address: 1% to add, 1% to remove.
  psql -q -c "UPDATE customers SET email = 'new.' || email WHERE id % 100 = 0"
  measure mirror "bench mirror" | sed 's/^mirror/mirror-1%/'
} >"$work/results"

psql -x -c "SELECT run_id, mode, status, rows_read, rows_unchanged, rows_sent, rows_removed, batches,
                   retries, finished_at - started_at AS run_time FROM fb_export_runs ORDER BY run_id"
# The ledgers (of the replace and the mirror export) against the members they hold.
ledger=$(psql -At -c "SELECT pg_catalog.pg_total_relation_size('connector.ledger') || ' ' ||
                             (SELECT count(*) FROM customers) * count(DISTINCT export_id)
                      FROM connector.ledger")
awk -v rows="$rows" -v keys="$keys" -v lat="$latency" -v par="$parallel" -v hz="$(getconf CLK_TCK)" -v ledger="$ledger" 'BEGIN {
  printf "rows %d, %d keys, latency %d ms, %d requests in flight\n", rows, keys, lat, par
  printf "%-10s %8s %9s %10s %9s %10s %9s %9s %9s\n", "run", "wall s", "vs add", "rows/s", "peak MB", "worker s", "us/row", "sim s", "sent/rm"
}
{
  if ($1 == "add") add = $2
  printf "%-10s %8.1f %8.2fx %10.0f %9.1f %10.1f %9.1f %9.1f %9s\n", $1, $2, $2 / add, rows / $2, $3 / 1024,
    $4 / hz, $4 / hz * 1e6 / rows, $5, $6 "/" $7
}
END {
  split(ledger, l, " ")
  if (l[2] > 0) printf "ledgers: %d members, %.0f bytes per member (table, TOAST and indexes)\n", l[2], l[1] / l[2]
}' "$work/results"
