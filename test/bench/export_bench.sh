#!/usr/bin/env bash
# An export of ROWS synthetic customers with 8 keys (EMAIL, PHONE, FN, LN, CT,
# ST, ZIP, COUNTRY) to the Graph API simulator with LATENCY_MS per request, in
# add mode. Run by hand, as root, after `make install`:
#   test/bench/export_bench.sh [ROWS] [LATENCY_MS] [PARALLEL]     # defaults 1000000 200 8
# Reports rows per second, the exporting worker's peak private memory and CPU,
# and the simulator's CPU, all from this one run.
set -euo pipefail

rows=${1:-1000000}
latency=${2:-200}
parallel=${3:-8}
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/cluster.sh"
source "$repo/scripts/lib/graph_sim.sh"
work=$(mktemp -d /tmp/connector-bench.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop "$work/cluster"; graph_sim_stop "$work/sim"; rm -rf "$work"' EXIT

graph_sim_start "$work/sim" --token EAAbenchToken --ad-account act_1 --latency-ms "$latency" \
  --kept-rows-cap 0
CLUSTER_PORT=54332 cluster_start "$work/cluster" "connector.graph_api_url = '$GRAPH_SIM_URL'" \
  "shared_buffers = 1GB" "max_worker_processes = 32" "jit = off"

psql -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION connector;
SELECT fb_create_destination('bench', 'act_1', 'EAAbenchToken', consent => true);
CREATE TABLE customers AS
SELECT i AS id,
       format('customer.%s@example-mail.com', i) AS email,
       format('+1 %s 555 %s', 200 + i % 700, lpad((i % 10000)::text, 4, '0')) AS phone,
       (ARRAY['Mary', 'Jörg', 'Valéry', 'Nathan', 'Ann'])[i % 5 + 1] AS first_name,
       (ARRAY['Smith', 'Müller', 'Dupont', 'Brien', 'Lee'])[i % 5 + 1] AS last_name,
       (ARRAY['Menlo Park', 'Berlin', 'Paris', 'London', 'Seoul'])[i % 5 + 1] AS city,
       (ARRAY['California', 'Berlin', 'Ile-de-France', 'England', 'Seoul'])[i % 5 + 1] AS state,
       lpad((i % 99999)::text, 5, '0') AS zip,
       (ARRAY['US', 'DE', 'FR', 'GB', 'KR'])[i % 5 + 1] AS country
FROM generate_series(1, $rows) AS i;
VACUUM ANALYZE customers;
CREATE VIEW segment AS SELECT * FROM customers;
SQL

cpu_before=$(curl -s "$GRAPH_SIM_URL/_sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['process_cpu_seconds'])")
started=$(date +%s.%N)
psql -q -c "SET connector.max_parallel_requests = $parallel" \
  -c "SELECT fb_export_segment('segment', 'bench', mode => 'add', wait => true)" >/dev/null 2>"$work/notices" &
export_pid=$!

# Sample the export worker until it ends: its peak private memory (RssAnon:
# VmHWM would also count the shared buffers it touched), and its CPU time.
peak_kb=0
peak_hwm_kb=0
cpu_ticks=0
while kill -0 "$export_pid" 2>/dev/null; do
  worker=$(psql -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'connector export'" 2>/dev/null | head -n 1)
  if [ -n "$worker" ] && [ -r "/proc/$worker/status" ]; then
    anon=$(awk '/RssAnon/ {print $2}' "/proc/$worker/status" 2>/dev/null || echo 0)
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$worker/status" 2>/dev/null || echo 0)
    ticks=$(awk '{print $14 + $15}' "/proc/$worker/stat" 2>/dev/null || echo 0)
    [ "${anon:-0}" -gt "$peak_kb" ] && peak_kb=$anon
    [ "${hwm:-0}" -gt "$peak_hwm_kb" ] && peak_hwm_kb=$hwm
    [ "${ticks:-0}" -gt "$cpu_ticks" ] && cpu_ticks=$ticks
  fi
  sleep 0.2
done
wait "$export_pid"
finished=$(date +%s.%N)
cpu_after=$(curl -s "$GRAPH_SIM_URL/_sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['process_cpu_seconds'])")

psql -x -c "SELECT run_id, status, rows_read, rows_sent, batches, retries, num_invalid_entries,
                   finished_at - started_at AS run_time FROM fb_export_runs"
awk -v rows="$rows" -v s="$started" -v f="$finished" -v kb="$peak_kb" -v ticks="$cpu_ticks" \
 -v hwm="$peak_hwm_kb" \
    -v hz="$(getconf CLK_TCK)" -v a="$cpu_before" -v b="$cpu_after" -v lat="$latency" -v par="$parallel" 'BEGIN {
  t = f - s
  printf "rows %d, latency %d ms, %d requests in flight\n", rows, lat, par
  printf "wall time %.1f s: %.0f rows/s\n", t, rows / t
  printf "export worker: peak private memory (RssAnon) %.1f MB (VmHWM with shared buffers %.1f MB), CPU %.1f s (%.1f us per row)\n", kb / 1024, hwm / 1024, ticks / hz, ticks / hz * 1e6 / rows
  printf "simulator: CPU %.1f s (%.1f us per row)\n", b - a, (b - a) * 1e6 / rows
}'
