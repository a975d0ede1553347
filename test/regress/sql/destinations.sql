-- Destinations against the Graph API simulator (scripts/test.sh starts it with
-- test/fixtures/regress_graph_sim.json and sets connector.graph_api_url).
CREATE EXTENSION IF NOT EXISTS connector;

-- Errors with their SQLSTATE, message and hint; the detail carries a random
-- fbtrace_id, so it is left out.
CREATE FUNCTION pg_temp.error_of(query text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    message text;
    hint text;
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || message || CASE WHEN hint <> '' THEN E'\nHINT: ' || hint ELSE '' END;
END
$$;

-- The roles exist, and neither can read the internal tables.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'connector\_%' ORDER BY 1;
CREATE ROLE regress_admin LOGIN IN ROLE connector_admin;
CREATE ROLE regress_analyst LOGIN IN ROLE connector_exporter;
CREATE ROLE regress_outsider LOGIN;

-- Consent is required, and says what it means.
SET ROLE regress_admin;
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_1000',
    'EAAregressGoodToken0001', consent => false)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_1000',
    'EAAregressGoodToken0001', consent => NULL)$$);

-- Malformed input, caught before anything is sent.
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta main', 'act_1000',
    'EAAregressGoodToken0001', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'acct_1000',
    'EAAregressGoodToken0001', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_1000',
    E'EAAregress\r\nX-Injected: 1', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_1000',
    NULL, consent => true)$$);

-- Each verification failure is its own error naming the fix.
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_1000',
    'EAAregressWrongToken9999', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_1000',
    'EAAregressExpiredToken0004', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_1000',
    'EAAregressReadOnlyToken0003', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_9999',
    'EAAregressGoodToken0001', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_2000',
    'EAAregressGoodToken0001', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_3000',
    'EAAregressGoodToken0001', consent => true)$$);
SELECT count(*) AS destinations_after_failures FROM fb_destinations;

-- A verified destination; ad account ids with or without act_.
SELECT fb_create_destination('meta_main', 'act_1000', 'EAAregressGoodToken0001', consent => true);
SELECT fb_create_destination('meta_unverified', '1000', 'EAAregressWrongToken9999',
                             consent => true, verify => false);
SELECT pg_temp.error_of($$SELECT fb_create_destination('meta_main', 'act_1000',
    'EAAregressGoodToken0001', consent => true)$$);
SELECT name, ad_account_id, owner, consent_by, consent_at IS NOT NULL AS consent_recorded,
       verified_at IS NOT NULL AS verified, status, has_app_secret, granted_to
FROM fb_destinations ORDER BY name;

-- The view has no secret column, and no column holds the token.
SELECT count(*) AS secret_columns FROM information_schema.columns
WHERE table_name = 'fb_destinations' AND column_name ~ 'token|secret' AND column_name <> 'has_app_secret';
SELECT count(*) AS rows_with_token FROM fb_destinations d
WHERE d::text LIKE '%EAAregress%';

-- Audiences.
SELECT fb_create_audience('meta_main', 'regress: vip customers', 'created by pg_regress') AS audience_id;
SELECT fb_create_audience('meta_main', 'regress: lapsed customers') AS audience_id;
SELECT audience_id, name, subtype, operation_status_code, description
FROM fb_list_audiences('meta_main') ORDER BY audience_id;
SELECT pg_temp.error_of($$SELECT fb_create_audience('meta_main', '')$$);
SELECT pg_temp.error_of($$SELECT * FROM fb_list_audiences('no_such_destination')$$);

-- Rotating the token re-verifies it; a bad one leaves the old one in place.
SELECT pg_temp.error_of($$SELECT fb_alter_destination('meta_main',
    access_token => 'EAAregressExpiredToken0004')$$);
SELECT fb_alter_destination('meta_main', access_token => 'EAAregressRotatedToken0002');
SELECT count(*) AS audiences_with_rotated_token FROM fb_list_audiences('meta_main');
SELECT pg_temp.error_of($$SELECT fb_alter_destination('meta_main')$$);
SELECT fb_alter_destination('meta_unverified', new_name => 'meta_renamed');
SELECT pg_temp.error_of($$SELECT fb_alter_destination('meta_renamed', new_name => 'meta_main')$$);

-- A stored token that stops working: fb_verify_destination records it.
SELECT fb_verify_destination('meta_main') AS main_ok;
SELECT fb_verify_destination('meta_renamed') AS renamed_ok;
SELECT name, status, verified_at IS NOT NULL AS verified, status_detail IS NOT NULL AS has_detail
FROM fb_destinations ORDER BY name;

-- Grants: an exporter sees and uses only the destinations granted to it.
SELECT fb_grant_destination('meta_main', 'regress_analyst');
SELECT fb_grant_destination('meta_main', 'regress_analyst');  -- twice is fine
RESET ROLE;

SET ROLE regress_analyst;
SELECT name, ad_account_id, status, granted_to FROM fb_destinations ORDER BY name;
SELECT count(*) AS audiences_seen_by_analyst FROM fb_list_audiences('meta_main');
SELECT pg_temp.error_of($$SELECT * FROM fb_list_audiences('meta_renamed')$$);
-- No way to the secrets: tables, schema, admin functions.
SELECT pg_temp.error_of($$SELECT access_token FROM connector.destinations$$);
SELECT pg_temp.error_of($$SELECT * FROM connector.destination_grants$$);
SELECT pg_temp.error_of($$SELECT fb_create_destination('x', 'act_1000', 'y', consent => true)$$);
SELECT pg_temp.error_of($$SELECT fb_alter_destination('meta_main', new_name => 'mine')$$);
SELECT pg_temp.error_of($$SELECT fb_drop_destination('meta_main')$$);
SELECT pg_temp.error_of($$SELECT fb_grant_destination('meta_renamed', 'regress_analyst')$$);
SELECT pg_temp.error_of($$SELECT fb_verify_destination('meta_main')$$);
-- Settings that decide where a token goes are superuser-only.
SELECT pg_temp.error_of($$SET connector.graph_api_url = 'http://127.0.0.1:1'$$);
SELECT pg_temp.error_of($$SET connector.ca_file = '/tmp/evil.pem'$$);
SELECT pg_temp.error_of($$SHOW connector.key_file$$);
RESET ROLE;

SET ROLE regress_outsider;
SELECT pg_temp.error_of($$SELECT * FROM fb_destinations$$);
SELECT pg_temp.error_of($$SELECT * FROM fb_list_audiences('meta_main')$$);
SELECT fb_hash('EMAIL', 'mary@example.com') IS NOT NULL AS hashing_is_for_everyone;
RESET ROLE;

-- Revoking takes the destination away again.
SET ROLE regress_admin;
SELECT fb_revoke_destination('meta_main', 'regress_analyst');
SELECT fb_revoke_destination('meta_main', 'regress_analyst');
RESET ROLE;
SET ROLE regress_analyst;
SELECT count(*) AS destinations_seen_after_revoke FROM fb_destinations;
SELECT pg_temp.error_of($$SELECT * FROM fb_list_audiences('meta_main')$$);
RESET ROLE;

-- Dropping: audiences stay at Meta unless asked; with delete_audiences the
-- ones connector created are deleted.
SET ROLE regress_admin;
SELECT fb_drop_destination('meta_renamed');
SELECT fb_drop_destination('meta_main', delete_audiences => true);
SELECT pg_temp.error_of($$SELECT fb_drop_destination('meta_main')$$);
SELECT count(*) AS destinations_left FROM fb_destinations;
RESET ROLE;
SELECT count(*) AS rows_left FROM connector.destinations;
SELECT count(*) AS grants_left FROM connector.destination_grants;
SELECT count(*) AS audiences_left FROM connector.audiences;

DROP ROLE regress_admin, regress_analyst, regress_outsider;
