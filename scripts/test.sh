#!/usr/bin/env bash
# Runs every test of connector on a fresh Debian 12 machine, as root:
#   1. core unit tests (GoogleTest via ctest), then again under ASan + UBSan
#   2. bounded libFuzzer runs over every key's normalizer and every parser of
#      what the Graph API answers
#   3. the extension built and installed, pg_regress as the postgres user
#      against a throwaway cluster and the Graph API simulator
#   4. integration tests against the real server and the simulator (pg_dump,
#      key files, TLS, app secret proof, cancellation), and a search of the
#      server log for any test secret
#   5. the Graph API simulator's own tests
# Prints one "N passed, N failed" line; exits non-zero on any failure.
# FUZZ_SECONDS (default 60) bounds each fuzz run.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
work=$(mktemp -d /tmp/connector-test.XXXXXX)
chmod 755 "$work"
source scripts/lib/cluster.sh
source scripts/lib/graph_sim.sh

cleanup() {
  cluster_stop "$work/cluster"
  graph_sim_stop "$work/graph_sim"
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
record() { # record NAME PASSED FAILED
  printf '%-28s %5d passed, %d failed\n' "$1" "$2" "$3" >>"$work/summary"
  passed=$((passed + $2))
  failed=$((failed + $3))
}
step() { printf '\n=== %s ===\n' "$*"; }

# ctest prints "N% tests passed, F tests failed out of T".
run_ctest() { # run_ctest NAME BUILD_DIR
  local log="$work/$1.log"
  ctest --test-dir "$2" --output-on-failure -j2 >"$log" 2>&1
  tail -n 3 "$log"
  local total failures
  total=$(sed -nE 's/.*tests failed out of ([0-9]+).*/\1/p' "$log" | tail -n 1)
  failures=$(sed -nE 's/.* ([0-9]+) tests failed out of.*/\1/p' "$log" | tail -n 1)
  if [ -z "$total" ]; then
    grep -E 'Failed|\*\*\*' "$log" | head -n 20
    record "$1" 0 1
  else
    [ "$failures" -gt 0 ] && grep -E '\(Failed\)|Failure' "$log" | head -n 40
    record "$1" $((total - failures)) "$failures"
  fi
}

# unittest prints "Ran N tests" and "FAILED (failures=F, errors=E)" or "OK".
run_unittest() { # run_unittest NAME DIRECTORY
  local log="$work/$1.log"
  python3 -m unittest discover -s "$2" -v >"$log" 2>&1
  tail -n 4 "$log"
  local ran bad=0 count
  ran=$(sed -nE 's/^Ran ([0-9]+) tests?.*/\1/p' "$log")
  for count in $(grep -oE '(failures|errors)=[0-9]+' "$log" | cut -d= -f2); do
    bad=$((bad + count))
  done
  if [ -z "$ran" ] || [ "$ran" -eq 0 ]; then
    tail -n 30 "$log"
    record "$1" 0 1
  else
    [ "$bad" -gt 0 ] && sed -n '/^=\{70\}$/,$p' "$log" | head -n 120
    record "$1" $((ran - bad)) "$bad"
  fi
}

build_cmake() { # build_cmake NAME BUILD_DIR [cmake options...]
  local name=$1 dir=$2
  shift 2
  if ! { cmake -S . -B "$dir" "$@" >"$work/$name-configure.log" 2>&1 &&
    cmake --build "$dir" -j2 >"$work/$name-build.log" 2>&1; }; then
    tail -n 40 "$work/$name-configure.log" "$work/$name-build.log" 2>/dev/null
    record "$name (build)" 0 1
    return 1
  fi
}

step "dependencies"
scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

step "core unit tests"
build_cmake unit build/release -DCMAKE_BUILD_TYPE=Release && run_ctest "unit tests" build/release

step "core unit tests under AddressSanitizer and UBSan"
build_cmake sanitize build/sanitize -DCONNECTOR_SANITIZE=ON -DCONNECTOR_BENCHMARKS=OFF &&
  run_ctest "unit tests (ASan+UBSan)" build/sanitize

run_fuzz() { # run_fuzz NAME TARGET MAX_LEN
  mkdir -p "$work/$2-corpus"
  if (cd "$work" && "$repo/build/fuzz/$2" -max_total_time="${FUZZ_SECONDS:-60}" \
    -max_len="$3" -print_final_stats=1 "$2-corpus" >"$work/$2.log" 2>&1); then
    grep -E 'stat::number_of_executed_units' "$work/$2.log"
    record "$1" 1 0
  else
    grep -vE '^#[0-9]+' "$work/$2.log" | tail -n 40
    record "$1" 0 1
  fi
}

step "fuzzing the normalizers and the Graph API answer parsers, ${FUZZ_SECONDS:-60} s each"
if CXX=clang++ build_cmake fuzz build/fuzz -DCONNECTOR_FUZZ=ON -DCONNECTOR_BENCHMARKS=OFF; then
  run_fuzz "fuzz (normalizers)" normalize_fuzz 512
  run_fuzz "fuzz (Graph API answers)" graph_answer_fuzz 8192
fi

step "extension: build, install, pg_regress"
if make -j2 >"$work/make.log" 2>&1 && make install >>"$work/make.log" 2>&1; then
  # The regression tests talk to the Graph API simulator, never to Meta.
  graph_sim_start "$work/graph_sim" --config test/fixtures/regress_graph_sim.json ||
    record "graph_sim start" 0 1
  # Preloaded, so the background worker and pg_cron run; they serve the
  # database the worker integration tests use.
  cluster_start "$work/cluster" "connector.graph_api_url = '$GRAPH_SIM_URL'" \
    "shared_preload_libraries = 'connector, pg_cron'" "max_worker_processes = 32" \
    "connector.database = 'connector_worker'" "cron.database_name = 'connector_worker'" \
    "cron.use_background_workers = on" ||
    record "cluster start" 0 1
  createdb connector_worker
  # pg_regress runs as postgres, from a copy it can write its results into.
  regress="$work/regress"
  mkdir -p "$regress"
  mkdir -p "$regress/test"
  cp -r Makefile connector.control sql "$regress/"
  cp -r test/regress "$regress/test/"
  chown -R postgres:postgres "$regress"
  (cd "$regress" && runuser -u postgres -- env PGHOST="$PGHOST" PGPORT="$PGPORT" \
    make installcheck) >"$work/regress.log" 2>&1
  grep -E '^(test | *[0-9]+ of|All [0-9]+)' "$work/regress.log"
  total=$(grep -cE '^test ' "$work/regress.log")
  failures=$(grep -cE '^test .*FAILED' "$work/regress.log")
  [ -f "$regress/regression.diffs" ] && head -n 80 "$regress/regression.diffs"
  if [ "$total" -eq 0 ]; then
    tail -n 20 "$work/regress.log"
    record "pg_regress" 0 1
  else
    record "pg_regress" $((total - failures)) "$failures"
  fi

  step "the module exports only what PostgreSQL looks up"
  internal=$(nm -D --defined-only connector.so | awk '{print $3}' |
    grep -vE '^(Pg_magic_func|_PG_init|(pg_finfo_)?fb_[a-z_]+|connector_(launcher|sweeper|export_worker)_main)$')
  if [ -z "$internal" ]; then
    echo "$(nm -D --defined-only connector.so | wc -l) exported symbols, all entry points"
    record "module exports" 1 0
  else
    echo "$internal" | head -n 10
    record "module exports" 0 1
  fi

  step "integration tests (destinations, exports, background worker, pg_cron, crash)"
  CONNECTOR_REPO="$repo" CONNECTOR_DATA_DIR="$work/cluster/data" \
    CONNECTOR_SERVER_LOG="$work/cluster/server.log" \
    run_unittest "integration" test/integration

  step "no secret in the server log of the whole run"
  # Every token and app secret the tests use starts with EAAregress or EAAintegration.
  leaks=$(grep -cE 'EAA(regress|integration)' "$work/cluster/server.log")
  if [ "$leaks" -eq 0 ]; then
    echo "none of the test secrets appears in $(wc -l <"$work/cluster/server.log") log lines"
    record "server log without secrets" 1 0
  else
    grep -nE 'EAA(regress|integration)' "$work/cluster/server.log" | cut -c1-200 | head -n 5
    record "server log without secrets" 0 1
  fi
else
  tail -n 40 "$work/make.log"
  record "extension (build)" 0 1
fi

step "Graph API simulator tests"
run_unittest "graph_sim" test/graph_sim

step "summary"
cat "$work/summary"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
