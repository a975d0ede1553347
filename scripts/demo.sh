#!/usr/bin/env bash
# The connector demo, on a fresh Debian 12 machine, as root: installs what is
# needed, builds and installs the extension, starts a throwaway cluster and
# shows sample customers with the identifiers Meta would receive.
#   scripts/demo.sh          run and clean up
#   scripts/demo.sh --keep   leave the cluster running and print how to connect
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
work=$(mktemp -d /tmp/connector-demo.XXXXXX)
chmod 755 "$work"
if ! $keep; then trap 'cluster_stop "$work/cluster"; rm -rf "$work"' EXIT; fi
CLUSTER_PORT=54330 cluster_start "$work/cluster"

echo "== a throwaway cluster is running (socket directory $PGHOST, port $PGPORT)"
psql -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION connector;
CREATE TABLE customers (
    id         int PRIMARY KEY,
    email      text,
    phone      text,
    country    text,
    first_name text,
    last_name  text,
    city       text,
    state      text,
    zip        text,
    birth_date date,
    gender     text
);
INSERT INTO customers VALUES
  (1, ' Mary.Smith@Example.COM ', '+1 (650) 555-1212', 'United States', 'Mary',   'Smith',     'Menlo Park', 'California', '94025-1234', '1997-02-16', 'Female'),
  (2, 'jörg@müller.de',           '030 1234567',       'DE',            'Jörg',   'Müller',    'Berlin',     'Berlin',     '10115',      '1980-07-01', 'm'),
  (3, 'valery@example.fr',        '06 12 34 56 78',    'France',        'VALÉRY', 'Dupont',    'Paris',      NULL,         '75018',      '1975-12-31', 'woman'),
  (4, 'not an email',             '020 7946 0958',     'UK',            'Na''than','O''Brien', 'London',     NULL,         'M1 1AE',     NULL,         'unknown'),
  (5, NULL,                       '+0000000000',       'Atlantis',      '정',     '김',        'Seoul',      NULL,         NULL,         '1899-01-01', NULL);
SQL

echo
echo "== normalized identifiers (NULL: not valid, sent to Meta as an empty cell)"
psql -P pager=off <<'SQL'
SELECT id,
       fb_normalize('EMAIL', email)          AS email,
       fb_normalize_phone(phone, country)    AS phone,
       fb_normalize('COUNTRY', country)      AS country,
       fb_normalize('FN', first_name)        AS fn,
       fb_normalize('LN', last_name)         AS ln,
       fb_normalize('CT', city)              AS ct,
       fb_normalize('ST', state)             AS st,
       fb_normalize('ZIP', zip)              AS zip,
       fb_normalize('DOB', birth_date::text) AS dob,
       fb_normalize('GEN', gender)           AS gen
FROM customers ORDER BY id;
SQL

echo "== what Meta receives: SHA-256 of each normalized value"
psql -P pager=off <<'SQL'
SELECT id,
       left(fb_hash('EMAIL', email), 16) || '…'       AS email_sha256,
       left(fb_hash_phone(phone, country), 16) || '…' AS phone_sha256,
       left(fb_hash('FN', first_name), 16) || '…'     AS fn_sha256,
       left(fb_hash('COUNTRY', country), 16) || '…'   AS country_sha256
FROM customers ORDER BY id;
SQL

if $keep; then
  echo "== the cluster keeps running: PGHOST=$PGHOST PGPORT=$PGPORT psql -U postgres"
  echo "   stop it with: runuser -u postgres -- $PG_BINDIR/pg_ctl -D $work/cluster/data stop"
fi
