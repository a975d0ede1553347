#!/usr/bin/env bash
# The connector demo, on a fresh Debian 12 machine, as root: installs what is
# needed, builds and installs the extension, starts a throwaway cluster with
# connector preloaded and the Graph API simulator, and exports a segment of
# 100,000 synthetic customers to a custom audience.
#   scripts/demo.sh          run and clean up
#   scripts/demo.sh --keep   leave the cluster (and simulator) running
# With FB_ACCESS_TOKEN and FB_AD_ACCOUNT_ID set, it exports to the real Graph
# API instead of the simulator (the token is read from the environment into a
# file only the server can read, never into SQL text).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
keep=false
[ "${1:-}" = "--keep" ] && keep=true

echo "== installing dependencies and building"
scripts/install-deps.sh
make -j2 >/dev/null
make install >/dev/null

source scripts/lib/cluster.sh
source scripts/lib/graph_sim.sh
work=$(mktemp -d /tmp/connector-demo.XXXXXX)
chmod 755 "$work"
if ! $keep; then
  trap 'cluster_stop "$work/cluster"; graph_sim_stop "$work/sim"; rm -rf "$work"' EXIT
fi

if [ -n "${FB_ACCESS_TOKEN:-}" ] && [ -n "${FB_AD_ACCOUNT_ID:-}" ]; then
  api_url=https://graph.facebook.com
  account=$FB_AD_ACCOUNT_ID
  token=$FB_ACCESS_TOKEN
  echo "== exporting to the real Graph API, ad account $account"
else
  token=EAAdemoTokenForTheSimulator
  account=act_1234567890
  graph_sim_start "$work/sim" --token "$token" --ad-account "$account" --latency-ms 50
  api_url=$GRAPH_SIM_URL
  echo "== the Graph API simulator listens at $api_url (50 ms latency per request)"
fi
install -m 600 -o postgres -g postgres /dev/null "$work/meta_main.token"
printf '%s\n' "$token" >"$work/meta_main.token"

CLUSTER_PORT=54330 cluster_start "$work/cluster" \
  "shared_preload_libraries = 'connector'" "connector.database = 'shop'" \
  "connector.graph_api_url = '$api_url'" "max_worker_processes = 32"
createdb shop
echo "== a throwaway cluster runs with connector preloaded (socket $PGHOST, port $PGPORT)"

psql -q -v ON_ERROR_STOP=1 -d shop <<SQL
CREATE EXTENSION connector;
CREATE TABLE customers AS
SELECT i AS id,
       format('customer.%s@example.com', i) AS email,
       CASE WHEN i % 4 = 0 THEN NULL ELSE format('+1 650 %s %s', 200 + i % 700, lpad((i % 10000)::text, 4, '0')) END AS phone,
       (ARRAY['Mary', 'Jörg', 'Valéry', 'Na''than', '정'])[i % 5 + 1] AS first_name,
       (ARRAY['Smith', 'Müller', 'Dupont', 'O''Brien', '김'])[i % 5 + 1] AS last_name,
       (ARRAY['United States', 'DE', 'France', 'UK', 'Korea, Republic of'])[i % 5 + 1] AS country,
       (random() * 5000)::int AS lifetime_value
FROM generate_series(1, 100000) AS i;

-- A segment is a view.
CREATE VIEW vip_customers AS
SELECT email, phone, first_name, last_name, country FROM customers WHERE lifetime_value > 1000;

-- The DBA sets up a destination once: the token comes from a server-side file.
SELECT fb_create_destination('meta_main', '$account', NULL, consent => true,
                             token_file => '$work/meta_main.token') \g /dev/null
SQL
rm -f "$work/meta_main.token"

echo
echo "== the segment, as Meta will receive it (first rows)"
psql -P pager=off -d shop -c "
SELECT email, fb_hash('EMAIL', email) AS email_sha256, fb_normalize_phone(phone, country) AS phone,
       fb_normalize('FN', first_name) AS fn, fb_normalize('COUNTRY', country) AS country
FROM vip_customers LIMIT 5"

echo "== a preview: what an export would send, read as the caller; nothing leaves"
psql -P pager=off -d shop -At -c "SELECT jsonb_pretty(fb_preview_export('vip_customers', sample => 2))"

echo "== exporting vip_customers (mirror mode: the first run adds everyone)"
psql -P pager=off -d shop -c "SELECT fb_export_segment('vip_customers', 'meta_main', wait => true) AS run_id"

echo "== the run"
psql -P pager=off -d shop -x -c "
SELECT run_id, segment, destination, audience_id, mode, status, rows_read, rows_skipped, rows_sent,
       batches, retries, num_received, num_invalid_entries, finished_at - started_at AS took,
       audience_size_lower, audience_size_upper, operation_status, delivery_status
FROM fb_export_runs ORDER BY run_id DESC LIMIT 1"

echo "== a day later: 500 new VIPs, 300 who are not any more; the nightly run sends only that"
psql -q -d shop -c "UPDATE customers SET lifetime_value = 5000 WHERE id IN (SELECT id FROM customers WHERE lifetime_value <= 1000 LIMIT 500);
                    UPDATE customers SET lifetime_value = 0 WHERE id IN (SELECT id FROM customers WHERE lifetime_value BETWEEN 1001 AND 4999 LIMIT 300)"
run_id=$(psql -At -d shop -c "SELECT fb_run_export(export_id) FROM fb_exports WHERE audience_name = 'vip_customers'")
echo "   fb_run_export queued run $run_id for the background worker (what a pg_cron job does); waiting for it"
for _ in $(seq 60); do
  status=$(psql -At -d shop -c "SELECT status FROM fb_export_runs WHERE run_id = $run_id")
  [ "$status" = queued ] || [ "$status" = running ] || break
  sleep 1
done
psql -P pager=off -d shop -c "
SELECT run_id, status, rows_read, rows_sent, rows_removed, batches FROM fb_export_runs ORDER BY run_id"

echo "== what a monitoring system polls"
psql -P pager=off -d shop -c "SELECT export_id, segment, last_success, consecutive_failures, last_error FROM fb_export_health"

forgotten=$(psql -At -d shop -c "SELECT email FROM vip_customers ORDER BY email LIMIT 1")
echo "== $forgotten asks to be forgotten: out of every audience, and not sent again by the nightly runs"
psql -P pager=off -d shop -c "SELECT * FROM fb_forget('meta_main', 'EMAIL', upper('$forgotten'))"
psql -P pager=off -d shop -c "SELECT destination, key, audiences, ledger_entries, requested_by FROM fb_erasures"
psql -P pager=off -d shop -c "SELECT fb_run_export(export_id, wait => true) AS next_nightly_run FROM fb_exports"
psql -P pager=off -d shop -c "SELECT run_id, status, rows_read, rows_unchanged, rows_sent, rows_removed
                              FROM fb_export_runs ORDER BY run_id DESC LIMIT 1"

if [ -n "${GRAPH_SIM_URL:-}" ]; then
  audience=$(psql -At -d shop -c "SELECT audience_id FROM fb_exports LIMIT 1")
  members=$(curl -s "$GRAPH_SIM_URL/_sim/audiences" | python3 -c "
import json, sys
print(next(a['members'] for a in json.load(sys.stdin)['audiences'] if a['id'] == '$audience'))")
  expected=$(psql -At -d shop -c "SELECT count(*) FROM vip_customers
                                  WHERE (fb_hash('EMAIL', email) IS NOT NULL OR fb_hash('PHONE', phone) IS NOT NULL)
                                    AND email <> '$forgotten'")
  echo "== the simulator's audience $audience holds $members members; the segment has $expected exportable customers"
fi

if $keep; then
  echo "== still running: PGHOST=$PGHOST PGPORT=$PGPORT psql -U postgres shop"
fi
