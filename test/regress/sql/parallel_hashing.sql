-- fb_hash runs in parallel workers and gives the same result as a serial plan.
CREATE EXTENSION IF NOT EXISTS connector;

CREATE TABLE customers AS
SELECT i AS id, format('Customer.%s@Example.com', i) AS email
FROM generate_series(1, 100000) AS i;
ANALYZE customers;

CREATE FUNCTION pg_temp.gather_workers_launched(query text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || query INTO plan;
    RETURN (plan -> 0 -> 'Plan' -> 'Plans' -> 0 ->> 'Workers Launched')::int;
END
$$;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;

-- The hash is computed below the Gather, in the workers' partial aggregates.
EXPLAIN (COSTS OFF, VERBOSE)
SELECT count(fb_hash('EMAIL', email)),
       sum(('x' || left(fb_hash('EMAIL', email), 8))::bit(32)::int::bigint),
       sum(('x' || right(fb_hash('EMAIL', email), 8))::bit(32)::int::bigint)
FROM customers;

SELECT pg_temp.gather_workers_launched($$
    SELECT count(fb_hash('EMAIL', email)) FROM customers$$) > 0 AS workers_launched;

SELECT count(fb_hash('EMAIL', email)) AS hashed,
       sum(('x' || left(fb_hash('EMAIL', email), 8))::bit(32)::int::bigint) AS head_sum,
       sum(('x' || right(fb_hash('EMAIL', email), 8))::bit(32)::int::bigint) AS tail_sum
FROM customers \gset parallel_

SET max_parallel_workers_per_gather = 0;
SELECT count(fb_hash('EMAIL', email)) = :parallel_hashed AS same_count,
       sum(('x' || left(fb_hash('EMAIL', email), 8))::bit(32)::int::bigint) = :parallel_head_sum
           AS same_head_sum,
       sum(('x' || right(fb_hash('EMAIL', email), 8))::bit(32)::int::bigint) = :parallel_tail_sum
           AS same_tail_sum
FROM customers;

-- And it equals the built-in chain for ASCII addresses.
SELECT count(*) AS mismatches FROM customers
WHERE fb_hash('EMAIL', email) <> encode(sha256(convert_to(lower(btrim(email)), 'UTF8')), 'hex');

DROP TABLE customers;
