# The Graph API simulator (test/graph_sim) for the test, demo and benchmark
# scripts. Source this file, then:
#   graph_sim_start DIR [graph_sim.py options...]   start it on a free port; sets
#                                                   GRAPH_SIM_PORT and GRAPH_SIM_URL
#   graph_sim_stop DIR                              stop it

GRAPH_SIM=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/test/graph_sim/graph_sim.py

graph_sim_start() {
  local dir=$1
  shift
  mkdir -p "$dir"
  python3 "$GRAPH_SIM" --port 0 "$@" >"$dir/graph_sim.out" 2>"$dir/graph_sim.err" &
  echo $! >"$dir/graph_sim.pid"
  local _
  for _ in $(seq 100); do
    GRAPH_SIM_PORT=$(sed -n 's/^READY port=//p' "$dir/graph_sim.out")
    if [ -n "$GRAPH_SIM_PORT" ]; then
      export GRAPH_SIM_PORT
      export GRAPH_SIM_URL="http://127.0.0.1:$GRAPH_SIM_PORT"
      return 0
    fi
    sleep 0.1
  done
  cat "$dir/graph_sim.err" >&2
  return 1
}

graph_sim_stop() {
  local dir=$1
  [ -f "$dir/graph_sim.pid" ] || return 0
  kill "$(cat "$dir/graph_sim.pid")" 2>/dev/null || true
  rm -f "$dir/graph_sim.pid"
}
