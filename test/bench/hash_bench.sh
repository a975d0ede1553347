#!/usr/bin/env bash
# fb_hash('EMAIL', ...) against PostgreSQL's built-in hashing chain, on
# 1,000,000 synthetic customers in a throwaway cluster, serial and with 2
# parallel workers. Run by hand, as root, after `make install`:
#   test/bench/hash_bench.sh [ROWS]
# Reports the best of 6 runs of each query in one warm session (the first
# call in a new backend also pays for loading the library), and ratios within
# this run.
set -euo pipefail

rows=${1:-1000000}
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/cluster.sh"
throwaway_work_dir bench
CLUSTER_PORT=54331 cluster_start "$work/cluster" "shared_buffers = 512MB" "jit = off"

psql -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION connector;
CREATE TABLE customers AS
SELECT i AS id, format(' %s.%s@Example-Mail.com ', md5(i::text)::varchar(10), i) AS email
FROM generate_series(1, $rows) AS i;
VACUUM ANALYZE customers;
SELECT count(*) FROM customers;  -- warm the cache
SQL

best_ms() { # best_ms WORKERS QUERY: best of 6 runs in one warm session, in ms (psql's \timing)
  {
    echo "SET max_parallel_workers_per_gather = $1;"
    echo "SET parallel_setup_cost = 0; SET min_parallel_table_scan_size = 0;"
    echo '\timing on'
    for _ in 1 2 3 4 5 6; do echo "$2;"; done
  } | psql -At | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | sort -n | head -n 1
}

scan="SELECT count(email) FROM customers"
builtin="SELECT count(encode(sha256(convert_to(lower(btrim(email)), 'UTF8')), 'hex')) FROM customers"
ours="SELECT count(fb_hash('EMAIL', email)) FROM customers"

echo "rows: $rows"
for workers in 0 2; do
  s=$(best_ms "$workers" "$scan")
  b=$(best_ms "$workers" "$builtin")
  f=$(best_ms "$workers" "$ours")
  awk -v w="$workers" -v s="$s" -v b="$b" -v f="$f" -v n="$rows" 'BEGIN {
    printf "workers=%d  scan only %8.1f ms | built-in chain %8.1f ms (%.0f ns/row) | fb_hash %8.1f ms (%.0f ns/row)\n",
           w, s, b, b * 1e6 / n, f, f * 1e6 / n
    printf "           fb_hash is %.2fx faster overall, %.2fx on the hashing work (scan subtracted)\n",
           b / f, (b - s) / (f - s)
  }'
done
