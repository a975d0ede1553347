#!/usr/bin/env bash
# How well fb_normalize_phone reads phone numbers as people write them: the
# corpus of test/bench/phone_corpus.py (20 countries; national and
# international forms; the country as a code, an English name, its own name,
# empty or unknown) against the installed extension, on a throwaway cluster.
# Run by hand, as root, after `make install`:
#   test/bench/phone_accuracy.sh [NUMBERS_PER_COUNTRY] [REPEAT]   # defaults 12 100
# Reports the share normalized correctly (the expected number, or NULL where
# no number can be known), the wrong numbers (a number other than the expected
# one: the worst outcome), the numbers missed, per form; then fb_normalize_phone
# per call, against fb_normalize('EMAIL', ...) on the same rows in the same
# run as the baseline.
set -euo pipefail

per_country=${1:-12}
repeat=${2:-100}
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/scripts/lib/cluster.sh"
throwaway_work_dir phones

python3 "$repo/test/bench/phone_corpus.py" "$per_country" >"$work/corpus.csv"
chmod 644 "$work/corpus.csv"
CLUSTER_PORT=54333 cluster_start "$work/cluster" "jit = off"

psql -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION connector;
CREATE TABLE corpus (value text, country text, expected text, country_iso text, form text);
\copy corpus FROM '$work/corpus.csv' WITH (FORMAT csv, HEADER true)
UPDATE corpus SET expected = NULLIF(expected, '');
CREATE TABLE results AS
SELECT *, fb_normalize_phone(value, country) AS got FROM corpus;
\echo
SELECT count(*) AS numbers,
       round(100.0 * count(*) FILTER (WHERE got IS NOT DISTINCT FROM expected) / count(*), 1)
           AS correct_pct,
       count(*) FILTER (WHERE got IS NOT NULL AND got IS DISTINCT FROM expected) AS wrong_numbers,
       count(*) FILTER (WHERE got IS NULL AND expected IS NOT NULL) AS missed
FROM results;
SELECT form,
       count(*) AS numbers,
       round(100.0 * count(*) FILTER (WHERE got IS NOT DISTINCT FROM expected) / count(*), 1)
           AS correct_pct,
       count(*) FILTER (WHERE got IS NOT NULL AND got IS DISTINCT FROM expected) AS wrong,
       count(*) FILTER (WHERE got IS NULL AND expected IS NOT NULL) AS missed
FROM results GROUP BY form ORDER BY form;
SELECT value, country, expected, got FROM results
WHERE got IS NOT NULL AND got IS DISTINCT FROM expected ORDER BY country_iso, form LIMIT 10;

-- Speed: every row $repeat times, the phone function against the e-mail
-- normalizer on the same text, in one session.
CREATE FUNCTION pg_temp.ns_per_call(query text, calls bigint) RETURNS numeric
LANGUAGE plpgsql AS \$\$
DECLARE started timestamptz;
BEGIN
    EXECUTE query;  -- warm up (the country table is built on first use)
    started := clock_timestamp();
    EXECUTE query;
    RETURN round(extract(epoch FROM clock_timestamp() - started) * 1e9 / calls);
END \$\$;
SELECT pg_temp.ns_per_call(format(\$q\$SELECT count(fb_normalize_phone(value, country))
                                    FROM corpus, generate_series(1, %s)\$q\$, $repeat),
                           (SELECT count(*) * $repeat FROM corpus)) AS phone_ns_per_call,
       pg_temp.ns_per_call(format(\$q\$SELECT count(fb_normalize('EMAIL', value))
                                    FROM corpus, generate_series(1, %s)\$q\$, $repeat),
                           (SELECT count(*) * $repeat FROM corpus)) AS email_ns_per_call;
SQL
