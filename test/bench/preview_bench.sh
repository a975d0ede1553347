#!/usr/bin/env bash
# fb_preview_export against the read phase of an export of the same segment:
# ROWS synthetic customers with KEYS keys (8 or 5, as export_bench.sh), the
# preview timed on its own, then an add export to the Graph API simulator
# whose read phase (until fb_export_runs says it is sending) is timed the same
# way. Run by hand, as root, after `make install`:
#   test/bench/preview_bench.sh [ROWS] [KEYS]   # defaults 1000000 5
set -euo pipefail

rows=${1:-1000000}
keys=${2:-5}
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/cluster.sh"
source "$repo/scripts/lib/graph_sim.sh"
source "$repo/test/bench/bench_customers.sh"
throwaway_work_dir preview-bench

graph_sim_start "$work/sim" --token EAAbenchToken --ad-account act_1 --kept-rows-cap 0
# Preloaded: the run's live phase (in shared memory) tells when its read ends.
CLUSTER_PORT=54333 cluster_start "$work/cluster" "connector.graph_api_url = '$GRAPH_SIM_URL'" \
  "shared_preload_libraries = 'connector'" "shared_buffers = 1GB" "max_worker_processes = 32" "jit = off"
psql -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION connector" \
  -c "SELECT fb_create_destination('bench', 'act_1', 'EAAbenchToken', consent => true)"
bench_customers "$rows" "$keys"
psql -q -c "SELECT count(*) FROM segment" >/dev/null  # the table in shared buffers for both

started=$(date +%s.%N)
report=$(psql -At -c "SELECT fb_preview_export('segment', sample => 0)")
preview=$(echo "$(date +%s.%N) - $started" | bc)

psql -q -c "SELECT fb_export_segment('segment', 'bench', mode => 'add', wait => true)" >/dev/null 2>&1 &
export_pid=$!
read_phase=""
while kill -0 "$export_pid" 2>/dev/null; do
  phase=$(psql -At -c "SELECT coalesce(phase, '') || ' ' || extract(epoch FROM clock_timestamp() - started_at)
                       FROM fb_export_runs WHERE status = 'running'")
  case $phase in
    reading*|diffing*|"") ;;
    *) [ -z "$read_phase" ] && read_phase=${phase#* } ;;
  esac
  sleep 0.05
done
wait "$export_pid"

echo "rows $rows, $keys keys"
echo "report: $report"
awk -v preview="$preview" -v read="$read_phase" 'BEGIN {
  printf "fb_preview_export       %6.2f s\n", preview
  printf "export, read phase      %6.2f s (until it was sending)\n", read
  printf "preview / read phase    %6.2fx\n", preview / read
}'
