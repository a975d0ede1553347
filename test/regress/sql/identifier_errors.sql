-- Errors raised by the C++ core reach SQL as ordinary errors with the right
-- SQLSTATE, through the shim, and the session goes on working.
CREATE EXTENSION IF NOT EXISTS connector;

CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- An unknown key: the core throws, the shim reports 22023, C raises it.
SELECT fb_hash('SSN', '123-45-6789');
SELECT fb_normalize('', 'x');
SELECT pg_temp.sqlstate_of($$SELECT fb_hash('E-MAIL', 'mary@example.com')$$) AS unknown_key;
-- An unknown date order likewise.
SELECT fb_normalize_dob('04/01/1950', 'YMD');
SELECT pg_temp.sqlstate_of($$SELECT fb_normalize_dob('04/01/1950', 'dd/mm')$$) AS unknown_order;

-- An allocation failure inside the core: std::bad_alloc becomes 53200.
SET connector.debug_inject_fault = 'out_of_memory';
SELECT fb_hash('EMAIL', 'mary@example.com');
SELECT pg_temp.sqlstate_of($$SELECT fb_normalize_phone('020 7946 0958', 'GB')$$) AS out_of_memory;
-- Any other exception becomes an internal error, XX000.
SET connector.debug_inject_fault = 'internal_error';
SELECT fb_normalize('FN', 'Mary');
SELECT pg_temp.sqlstate_of($$SELECT fb_hash_email('mary@example.com')$$) AS internal_error;
RESET connector.debug_inject_fault;

-- The same session goes on working, in and out of transactions.
SELECT fb_hash('EMAIL', 'mary@example.com');
BEGIN;
SAVEPOINT before_error;
SELECT fb_hash('NOPE', 'x');
ROLLBACK TO SAVEPOINT before_error;
SELECT fb_normalize('FN', 'Valéry');
COMMIT;

-- The fault setting is for superusers only.
CREATE ROLE connector_regress_user;
SET ROLE connector_regress_user;
SET connector.debug_inject_fault = 'out_of_memory';
SELECT fb_hash('EMAIL', 'mary@example.com') IS NOT NULL AS works_for_any_role;
RESET ROLE;
DROP ROLE connector_regress_user;
