"""The trust boundary, attacked as a role holding only connector_exporter would
attack it, against the real server (preloaded: queued runs go through the
background worker of connector_worker) and the Graph API simulator.

One class per rule: reading a segment never runs code with the owner's rights;
an exporter never acts through another's export; a run has the requester's
identity and settings; an export reaches only its destination's ad account;
unhashed keys are the admin's decision; no secret reaches the server log;
role references survive dump and restore; dropped roles; keys."""

import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.request

from support import (DATA_DIR, PG_BINDIR, SERVER_LOG, SIM_URL, SqlError, add_sim_token, give_to_postgres,
                     psql, sim, wait_for)

DATABASE = "connector_worker"  # connector.database of the test cluster: queued runs are served
TOKEN = "EAAintegrationAttackToken01"
APP_SECRET = "EAAintegrationAttackSecret01"
ACCOUNT = "act_1000"
OTHER_ACCOUNT = "act_4000"  # reached by the same token, named by no destination
ALICE, BOB, ADMIN = "attack_alice", "attack_bob", "attack_admin"
ROLES = (ALICE, BOB, ADMIN, "attack_carol", "attack_dave")


def sql(statement, user=None, timeout=120):
    return psql(statement, database=DATABASE, user=user, timeout=timeout)


def sql_error(statement, user=None):
    """The SqlError a statement raises; fails the test if it raises none."""
    try:
        sql(statement, user=user)
    except SqlError as error:
        return error
    raise AssertionError(f"no error from: {statement}")


def run_row(run_id):
    columns = ["status", "rows_read", "rows_sent", "error", "sqlstate", "audience_id"]
    values = sql(f"SELECT status, rows_read, rows_sent, coalesce(error, ''), coalesce(sqlstate, ''),"
                 f" coalesce(audience_id, '') FROM connector.runs WHERE run_id = {run_id}").split("|")
    return dict(zip(columns, values))


def finished_run(run_id, seconds=90):
    wait_for(lambda: run_row(run_id)["status"] in ("succeeded", "failed", "cancelled"), seconds,
             f"run {run_id} to end")
    return run_row(run_id)


def export(user, segment, wait=True, **arguments):
    """fb_export_segment as user; returns the run id (a queued run is waited for too)."""
    options = "".join(f", {name} => {value}" for name, value in arguments.items())
    run_id = int(sql(f"SET connector.retry_base_delay = '20ms';"
                     f"SELECT fb_export_segment('{segment}', 'attack_main'{options},"
                     f" wait => {'true' if wait else 'false'});", user=user))
    if not wait:
        finished_run(run_id)
    return run_id


def sweep():
    """Lets the launcher sweep at least once more: a queued run of another export ends."""
    export(ALICE, "attack_alice.segment", wait=False, mode="'add'", audience_name="'sweep'")


def is_superuser(role):
    return sql(f"SELECT rolsuper FROM pg_roles WHERE rolname = '{role}'") == "t"


def session_schemas(audience_id):
    return [session["schema"] for session in sim(f"/_sim/sessions?audience_id={audience_id}")["sessions"]]


def drop_roles():
    for role in ROLES:
        sql(f"""DO $$ BEGIN
                  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    EXECUTE 'ALTER ROLE {role} NOSUPERUSER';
                    EXECUTE 'DROP OWNED BY {role} CASCADE';
                    EXECUTE 'DROP ROLE {role}';
                  END IF;
                END $$;""")


def setUpModule():
    add_sim_token(TOKEN)
    sim("/_sim/config", {"accounts": [{"id": OTHER_ACCOUNT, "name": "Another account of the token"}]})
    drop_roles()
    sql(f"""
        CREATE EXTENSION IF NOT EXISTS connector;
        DELETE FROM connector.destinations WHERE name LIKE 'attack%';
        CREATE ROLE {ALICE} LOGIN IN ROLE connector_exporter;
        CREATE ROLE {BOB} LOGIN IN ROLE connector_exporter;
        CREATE ROLE {ADMIN} LOGIN IN ROLE connector_admin;
        CREATE SCHEMA {ALICE} AUTHORIZATION {ALICE};
        CREATE SCHEMA {BOB} AUTHORIZATION {BOB};
        SELECT fb_create_destination('attack_main', '{ACCOUNT}', '{TOKEN}', consent => true);
        SELECT fb_grant_destination('attack_main', '{ALICE}'), fb_grant_destination('attack_main', '{BOB}');
    """)
    sql(f"""
        CREATE TABLE {ALICE}.people AS
        SELECT format('alice%s@example.com', i) AS email,
               format('+1 650 555 %s', lpad(i::text, 4, '0')) AS phone,
               'Ann'::text AS first_name, format('ssn-%s', i) AS external_id
        FROM generate_series(1, 50) AS i;
        CREATE VIEW {ALICE}.segment AS SELECT * FROM {ALICE}.people;
        GRANT USAGE ON SCHEMA {ALICE} TO {BOB}, {ADMIN};
        GRANT SELECT ON {ALICE}.segment TO {BOB}, {ADMIN};
    """, user=ALICE)
    sql(f"""
        CREATE TABLE {BOB}.people AS
        SELECT format('bob%s@example.com', i) AS email, format('crm-%s', i) AS external_id
        FROM generate_series(1, 40) AS i;
        CREATE VIEW {BOB}.list AS SELECT email, external_id FROM {BOB}.people;
    """, user=BOB)


def tearDownModule():
    drop_roles()


class ReadingTheSegmentRunsNothingAsTheOwner(unittest.TestCase):
    """Point 1: a view that changes search_path, role or exit_on_error gains nothing."""

    SHADOWED = [("=", "text", "text"), ("=", "bigint", "bigint"), ("=", "bytea", "bytea"),
                ("=", "integer", "integer"), ("=", "oid", "oid"), ("=", "name", "name"),
                ("<>", "text", "text"), ("<", "bigint", "bigint"), ("<=", "bigint", "bigint"),
                (">", "bigint", "bigint"), ("+", "bigint", "bigint"), ("+", "integer", "integer"),
                ("<", "timestamptz", "timestamptz"), ("-", "timestamptz", "interval")]

    @classmethod
    def setUpClass(cls):
        statements = [f"""
            CREATE TABLE {BOB}.calls (who name, is_superuser boolean);
            GRANT INSERT ON {BOB}.calls TO PUBLIC;
            -- Records who runs it and tries to make bob a superuser: only a
            -- superuser caller can.
            CREATE FUNCTION {BOB}.note_call() RETURNS void LANGUAGE plpgsql AS $f$
            BEGIN
              INSERT INTO {BOB}.calls SELECT current_user, rolsuper FROM pg_catalog.pg_roles
                WHERE rolname OPERATOR(pg_catalog.=) current_user;
              BEGIN
                EXECUTE 'ALTER ROLE {BOB} SUPERUSER';
              EXCEPTION WHEN OTHERS THEN NULL;
              END;
            END $f$;
            CREATE VIEW {BOB}.hijack AS SELECT email FROM {BOB}.people
            WHERE pg_catalog.set_config('search_path', '{BOB}, pg_catalog', false) IS NOT NULL
              AND pg_catalog.set_config('search_path', '{BOB}, pg_catalog', true) IS NOT NULL;
            CREATE VIEW {BOB}.become_superuser AS SELECT email FROM {BOB}.people
            WHERE pg_catalog.set_config('role', 'postgres', false) IS NOT NULL;
            CREATE VIEW {BOB}.become_session AS SELECT email FROM {BOB}.people
            WHERE pg_catalog.set_config('session_authorization', 'postgres', false) IS NOT NULL;
            CREATE FUNCTION {BOB}.fail_after_exit_on_error(text) RETURNS text LANGUAGE plpgsql AS $f$
            BEGIN
              PERFORM pg_catalog.set_config('exit_on_error', 'on', false);
              IF $1 OPERATOR(pg_catalog.=) 'bob5@example.com' THEN
                RAISE EXCEPTION 'boom from the segment';
              END IF;
              RETURN $1;
            END $f$;
            CREATE VIEW {BOB}.fatal AS SELECT {BOB}.fail_after_exit_on_error(email) AS email
            FROM {BOB}.people;
        """]
        for number, (operator, left, right) in enumerate(cls.SHADOWED):
            statements.append(f"""
                CREATE FUNCTION {BOB}.shadow_{number}(a {left}, b {right}) RETURNS {left if operator in '+-' else 'boolean'}
                LANGUAGE plpgsql AS $f$
                BEGIN PERFORM {BOB}.note_call(); RETURN a OPERATOR(pg_catalog.{operator}) b; END $f$;
                CREATE OPERATOR {BOB}.{operator} (LEFTARG = {left}, RIGHTARG = {right},
                                                  FUNCTION = {BOB}.shadow_{number});""")
        sql("\n".join(statements), user=BOB)

    def tearDown(self):
        sql(f"ALTER ROLE {BOB} NOSUPERUSER")

    def assert_no_privileged_call(self):
        self.assertFalse(is_superuser(BOB), "the segment's code made its owner a superuser")
        calls = sql(f"SELECT who || ':' || is_superuser FROM {BOB}.calls WHERE who <> '{BOB}'")
        self.assertEqual(calls, "", "an operator of the exporter ran as another role")

    def test_shadowed_operators_never_run_as_the_owner_in_any_mode_or_path(self):
        for mode in ("add", "replace", "mirror"):
            for wait in (True, False):
                with self.subTest(mode=mode, wait=wait):
                    audience = f"'hijack {mode} {wait}'"
                    # Twice: the second mirror run diffs against a ledger, the second
                    # replace run looks for an interrupted session.
                    for _ in range(2):
                        run = run_row(export(BOB, f"{BOB}.hijack", wait=wait, mode=f"'{mode}'",
                                             audience_name=audience))
                        self.assertEqual(run["status"], "succeeded", run)
                        self.assertEqual(run["rows_read"], "40")
                    self.assert_no_privileged_call()

    def test_a_view_cannot_change_role_or_session_authorization(self):
        for view in ("become_superuser", "become_session"):
            with self.subTest(view=view):
                error = sql_error(f"SELECT fb_export_segment('{BOB}.{view}', 'attack_main', wait => true)",
                                  user=BOB)
                self.assertEqual(error.sqlstate, "42501", error.output)
                self.assertRegex(error.message, "cannot set parameter .* within security-")
                self.assertFalse(is_superuser(BOB))

    def test_exit_on_error_set_by_a_view_fails_the_run_once_and_never_loops(self):
        queued = export(BOB, f"{BOB}.fatal", wait=False, mode="'add'", audience_name="'fatal queued'")
        run = run_row(queued)
        self.assertEqual(run["status"], "failed", run)
        self.assertIn("boom from the segment", run["error"])
        error = sql_error(f"SELECT fb_export_segment('{BOB}.fatal', 'attack_main', mode => 'add',"
                          f" audience_name => 'fatal waited', wait => true)", user=BOB)
        self.assertIn("boom from the segment", error.message)
        sweep()
        for audience in ("fatal queued", "fatal waited"):
            runs = sql(f"SELECT string_agg(r.status, ',') FROM connector.runs r JOIN connector.exports e"
                       f" USING (export_id) WHERE e.audience_name = '{audience}'")
            self.assertEqual(runs, "failed", f"{audience}: the run was re-queued: {runs}")
        self.assert_no_privileged_call()


class ARunHasTheRequestersIdentity(unittest.TestCase):
    """Point 3: session_user, role settings and row-level policies are the requester's."""

    @classmethod
    def setUpClass(cls):
        sql(f"""
            CREATE TABLE public.attack_rls (email text, visible_to name);
            INSERT INTO public.attack_rls
            SELECT format('rls%s@example.com', i), CASE WHEN i <= 4 THEN '{ALICE}' ELSE 'postgres' END
            FROM generate_series(1, 13) AS i;
            ALTER TABLE public.attack_rls ENABLE ROW LEVEL SECURITY;
            CREATE POLICY by_session ON public.attack_rls USING (visible_to = session_user);
            GRANT SELECT ON public.attack_rls TO {ALICE};
        """)
        sql(f"""
            CREATE VIEW {ALICE}.rls_segment AS SELECT email FROM public.attack_rls;
            CREATE TABLE {ALICE}.seen (session_name name, current_name name, work_mem text,
                                       temp_file_limit text);
            CREATE FUNCTION {ALICE}.note() RETURNS boolean LANGUAGE sql VOLATILE AS $f$
              INSERT INTO {ALICE}.seen SELECT session_user, current_user, current_setting('work_mem'),
                                              current_setting('temp_file_limit')
              RETURNING true $f$;
            CREATE VIEW {ALICE}.observed AS SELECT email FROM {ALICE}.people WHERE {ALICE}.note();
            CREATE VIEW {ALICE}.slow AS SELECT email FROM {ALICE}.people WHERE pg_sleep(0.2) IS NOT NULL;
        """, user=ALICE)

    @classmethod
    def tearDownClass(cls):
        sql(f"DROP TABLE public.attack_rls CASCADE; ALTER ROLE {ALICE} RESET ALL;")

    def test_a_policy_on_session_user_sees_what_the_requester_sees(self):
        self.assertEqual(sql(f"SELECT count(*) FROM {ALICE}.rls_segment", user=ALICE), "4")
        for wait in (True, False):
            run = run_row(export(ALICE, f"{ALICE}.rls_segment", wait=wait, mode="'add'",
                                 audience_name=f"'rls {wait}'"))
            self.assertEqual((run["status"], run["rows_read"]), ("succeeded", "4"), run)

    def test_the_requesters_role_settings_apply_to_a_queued_run(self):
        sql(f"ALTER ROLE {ALICE} SET work_mem = '7MB'; ALTER ROLE {ALICE} SET temp_file_limit = '12MB';")
        try:
            run = run_row(export(ALICE, f"{ALICE}.observed", wait=False, mode="'add'",
                                 audience_name="'observed'"))
        finally:
            sql(f"ALTER ROLE {ALICE} RESET work_mem; ALTER ROLE {ALICE} RESET temp_file_limit;")
        self.assertEqual(run["status"], "succeeded", run)
        seen = sql(f"SELECT DISTINCT session_name, current_name, work_mem, temp_file_limit FROM {ALICE}.seen")
        self.assertEqual(seen, f"{ALICE}|{ALICE}|7MB|12MB")

    def test_the_requesters_statement_timeout_stops_a_queued_read(self):
        sql(f"ALTER ROLE {ALICE} SET statement_timeout = '1s'")
        try:
            started = time.monotonic()
            run = run_row(export(ALICE, f"{ALICE}.slow", wait=False, mode="'add'", audience_name="'slow'"))
        finally:
            sql(f"ALTER ROLE {ALICE} RESET statement_timeout")
        self.assertEqual(run["status"], "failed", run)
        self.assertEqual(run["sqlstate"], "57014")
        self.assertIn("statement timeout", run["error"])
        self.assertLess(time.monotonic() - started, 9)  # 50 rows x 0.2 s would be 10 s
        self.assertEqual(run["rows_sent"], "0")


class ExportersCannotActThroughEachOthersExports(unittest.TestCase):
    """Point 2: an export belongs to its owner; a run executes what was queued."""

    def export_of_alice(self):
        return sql(f"SELECT audience_id, mapping::text, owner FROM fb_exports"
                   f" WHERE audience_name = 'alice list'", user=ALICE)

    def test_another_exporter_is_refused_and_changes_nothing(self):
        export(ALICE, f"{ALICE}.segment", mode="'add'", audience_name="'alice list'",
               mapping="""'{"EMAIL": "email"}'""")
        before = self.export_of_alice()
        audience_id = before.split("|")[0]
        error = sql_error(f"""SELECT fb_export_segment('{ALICE}.segment', 'attack_main', mode => 'replace',
                              audience_name => 'alice list', wait => true,
                              mapping => '{{"EMAIL": "email", "PHONE": "phone"}}')""", user=BOB)
        self.assertEqual(error.sqlstate, "42501")
        self.assertIn(f"belongs to role {ALICE}", error.message)
        error = sql_error(f"SELECT fb_export_segment('{BOB}.list', 'attack_main', mode => 'replace',"
                          f" audience_id => '{audience_id}', wait => true)", user=BOB)
        self.assertEqual(error.sqlstate, "42501")
        self.assertEqual(self.export_of_alice(), before)
        # The same audience name for bob's own segment is bob's own audience.
        bobs = run_row(export(BOB, f"{BOB}.list", mode="'add'", audience_name="'alice list'"))
        self.assertEqual(bobs["status"], "succeeded", bobs)
        self.assertNotEqual(bobs["audience_id"], audience_id)
        # An admin may change any export; it stays alice's.
        export(ADMIN, f"{ALICE}.segment", mode="'add'", audience_name="'alice list'",
               mapping="""'{"EMAIL": "email", "PHONE": "phone"}'""")
        after = self.export_of_alice().split("|")
        self.assertEqual((after[0], after[2]), (audience_id, ALICE))
        self.assertIn("PHONE", after[1])

    def test_a_run_executes_the_configuration_it_was_queued_with(self):
        run_id = export(ALICE, f"{ALICE}.segment", mode="'add'", audience_name="'pinned'",
                        mapping="""'{"EMAIL": "email"}'""")
        audience_id = run_row(run_id)["audience_id"]
        first, second = sql(f"""
            BEGIN;
            SELECT fb_export_segment('{ALICE}.segment', 'attack_main', audience_name => 'pinned',
                                     mode => 'add', mapping => '{{"EMAIL": "email", "FN": "first_name", "PHONE": null}}');
            SELECT fb_export_segment('{ALICE}.segment', 'attack_main', audience_name => 'pinned',
                                     mode => 'add', mapping => '{{"EMAIL": "email", "PHONE": "phone", "FN": null}}');
            COMMIT;""", user=ALICE).split()
        for run_id in (first, second):
            self.assertEqual(finished_run(run_id)["status"], "succeeded")
        schemas = session_schemas(audience_id)
        self.assertIn(["EMAIL", "FN"], schemas)
        self.assertIn(["EMAIL", "PHONE"], schemas)


class AnExportReachesOnlyTheDestinationsAccount(unittest.TestCase):
    """Point 4: an audience id of another ad account the token reaches is refused."""

    def test_an_audience_of_another_account_is_refused_before_anything_is_sent(self):
        request = urllib.request.Request(
            f"{SIM_URL}/v26.0/{OTHER_ACCOUNT}/customaudiences", method="POST",
            data=json.dumps({"name": "not ours", "subtype": "CUSTOM",
                             "customer_file_source": "USER_PROVIDED_ONLY"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            foreign = json.loads(response.read())["id"]
        for mode in ("add", "replace", "mirror"):
            with self.subTest(mode=mode):
                error = sql_error(f"SELECT fb_export_segment('{BOB}.list', 'attack_main', mode => '{mode}',"
                                  f" audience_id => '{foreign}', audience_name => 'foreign {mode}',"
                                  f" wait => true)", user=BOB)
                self.assertEqual(error.sqlstate, "42501", error.output)
                self.assertIn(f"is not in ad account {ACCOUNT}", error.message)
        audience = next(a for a in sim("/_sim/audiences")["audiences"] if a["id"] == foreign)
        self.assertEqual((audience["members"], audience["sessions"]), (0, []))


class UnhashedKeysAreTheAdminsDecision(unittest.TestCase):
    """Point 5: EXTERN_ID and MADID are never matched by name, and mapped only where allowed."""

    def tearDown(self):
        sql("SELECT fb_alter_destination('attack_main', allow_unhashed_keys => false)", user=ADMIN)

    def test_a_column_named_external_id_is_not_sent(self):
        run = run_row(export(BOB, f"{BOB}.list", mode="'add'", audience_name="'by name'"))
        self.assertEqual(run["status"], "succeeded", run)
        self.assertEqual(session_schemas(run["audience_id"]), [["EMAIL"]])

    def test_mapping_an_unhashed_key_needs_the_admins_permission(self):
        mapping = """'{"EMAIL": "email", "EXTERN_ID": "email"}'"""
        error = sql_error(f"SELECT fb_export_segment('{BOB}.list', 'attack_main', mode => 'add',"
                          f" audience_name => 'in clear', mapping => {mapping}, wait => true)", user=BOB)
        self.assertEqual(error.sqlstate, "42501")
        self.assertIn("does not allow unhashed keys", error.message)
        sql("SELECT fb_alter_destination('attack_main', allow_unhashed_keys => true)", user=ADMIN)
        self.assertEqual(sql("SELECT unhashed_keys_allowed_by, unhashed_keys_allowed_at IS NOT NULL"
                             " FROM fb_destinations WHERE name = 'attack_main'"), f"{ADMIN}|t")
        run = run_row(export(BOB, f"{BOB}.list", mode="'add'", audience_name="'in clear'", mapping=mapping))
        self.assertEqual(run["status"], "succeeded", run)
        # Withdrawn after the run was queued: the worker refuses it.
        run_id = sql(f"""
            BEGIN;
            SET ROLE {BOB};
            SELECT fb_export_segment('{BOB}.list', 'attack_main', mode => 'add', audience_name => 'in clear',
                                     mapping => {mapping});
            SET ROLE {ADMIN};
            SELECT fb_alter_destination('attack_main', allow_unhashed_keys => false);
            COMMIT;""").split()[0]
        run = finished_run(run_id)
        self.assertEqual((run["status"], run["sqlstate"], run["rows_sent"]), ("failed", "42501", "0"), run)


class NoSecretReachesTheServerLog(unittest.TestCase):
    """Point 6: every path the extension controls keeps a token out of the log."""

    def test_tokens_given_as_literals_never_reach_the_log(self):
        attempts = {
            "EAAintegrationLeakDoBlock01":
                (None, "DO $$ BEGIN PERFORM fb_create_destination('leak_do', 'act_1000',"
                       " 'EAAintegrationLeakDoBlock01', false); END $$;"),
            "EAAintegrationLeakNoConsent02":
                (None, "SELECT fb_create_destination('leak_consent', 'act_1000', 'EAAintegrationLeakNoConsent02');"),
            "EAAintegrationLeakNotAdmin03":
                (BOB, "SELECT fb_create_destination('leak_admin', 'act_1000', 'EAAintegrationLeakNotAdmin03',"
                      " consent => true);"),
            "EAAintegrationLeakAlterDo04":
                (None, "DO $$ BEGIN PERFORM fb_alter_destination('attack_main',"
                       " access_token => 'EAAintegrationLeakAlterDo04'); END $$;"),
            "EAAintegrationLeakAlterNotAdmin05":
                (BOB, "SELECT fb_alter_destination('attack_main', access_token => 'EAAintegrationLeakAlterNotAdmin05');"),
            "EAAintegrationLeakFunction06":
                (None, "CREATE FUNCTION pg_temp.make() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN"
                       " PERFORM fb_create_destination('leak_function', 'act_1000',"
                       " 'EAAintegrationLeakFunction06'); END $f$; SELECT pg_temp.make();"),
        }
        for token, (user, statement) in attempts.items():
            with self.subTest(token=token):
                sql_error(statement, user=user)
        time.sleep(0.5)  # the logging collector is not used, but let the log settle
        with open(SERVER_LOG, errors="replace") as log:
            text = log.read()
        for token in attempts:
            self.assertNotIn(token, text)


class RoleReferencesSurviveDumpAndRestore(unittest.TestCase):
    """Point 7: grants, owners and requesters restore by name, not by OID."""

    PORT = "54333"

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="connector-restore-")
        give_to_postgres(self.directory, 0o700)
        self.env = dict(os.environ, PGHOST=self.directory, PGPORT=self.PORT)

    def tearDown(self):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BINDIR}/pg_ctl", "-D", f"{self.directory}/data",
                        "-m", "immediate", "stop"], capture_output=True)
        subprocess.run(["rm", "-rf", self.directory])
        subprocess.run(["dropdb", "--if-exists", "connector_dump"], check=True)

    def restored(self, statement):
        completed = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", "connector_dump",
                                    "-c", statement], env=self.env, capture_output=True, text=True)
        self.assertEqual(completed.returncode, 0, completed.stderr)
        return completed.stdout.strip()

    def test_a_restore_into_a_cluster_with_other_role_oids_keeps_every_reference(self):
        subprocess.run(["dropdb", "--if-exists", "connector_dump"], check=True)
        subprocess.run(["createdb", "connector_dump"], check=True)
        psql(f"""CREATE EXTENSION connector;
                 SELECT fb_create_destination('dumped', '{ACCOUNT}', '{TOKEN}', consent => true);
                 SELECT fb_grant_destination('dumped', '{ALICE}'), fb_grant_destination('dumped', '{BOB}');
                 CREATE VIEW dumped_segment AS SELECT 'dump@example.com'::text AS email;
                 GRANT SELECT ON dumped_segment TO {ALICE};""", database="connector_dump")
        psql("SELECT fb_export_segment('dumped_segment', 'dumped', mode => 'add', wait => true)",
             database="connector_dump", user=ALICE)
        dump = subprocess.run(["pg_dump", "connector_dump"], capture_output=True, text=True, check=True).stdout

        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BINDIR}/initdb", "-D", f"{self.directory}/data",
                        "-U", "postgres", "--auth=trust"], check=True, capture_output=True)
        with open(f"{self.directory}/data/postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = ''\nport = {self.PORT}\nunix_socket_directories = '{self.directory}'\n")
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BINDIR}/pg_ctl", "-D", f"{self.directory}/data", "-w",
                        "-l", f"{self.directory}/server.log", "start"], check=True, capture_output=True)
        # Other roles first, and bob before alice: every OID differs from the source cluster's.
        subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c",
                        "CREATE ROLE filler_1; CREATE ROLE filler_2; CREATE ROLE filler_3;"
                        f" CREATE ROLE {BOB} LOGIN; CREATE ROLE {ALICE} LOGIN;"],
                       env=self.env, check=True)
        subprocess.run(["createdb", "connector_dump"], env=self.env, check=True)
        restore = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "connector_dump"],
                                 input=dump, env=self.env, capture_output=True, text=True)
        self.assertEqual(restore.returncode, 0, restore.stderr)

        source_oid = psql(f"SELECT oid FROM pg_roles WHERE rolname = '{ALICE}'", database="connector_dump")
        self.assertNotEqual(self.restored(f"SELECT oid FROM pg_roles WHERE rolname = '{ALICE}'"), source_oid)
        self.assertEqual(self.restored("SELECT owner, consent_by, granted_to FROM fb_destinations"),
                         f"postgres|postgres|{{{ALICE},{BOB}}}")
        self.assertEqual(self.restored("SELECT owner FROM fb_exports"), ALICE)
        self.assertEqual(self.restored("SELECT requested_by FROM fb_export_runs"), ALICE)
        self.assertEqual(self.restored("SELECT created_by::text FROM connector.audiences"), ALICE)


class RolesThatGoAway(unittest.TestCase):
    """Point 8: a dropped requester's run fails once, never runs as a namesake; admins cancel any."""

    def queue_and_drop(self, role, then=""):
        """Queues a run as role and drops the role in the same transaction; returns the run id."""
        return sql(f"""
            CREATE ROLE {role} LOGIN IN ROLE connector_exporter;
            SELECT fb_grant_destination('attack_main', '{role}');
            GRANT USAGE ON SCHEMA {ALICE} TO {role}; GRANT SELECT ON {ALICE}.segment TO {role};
            BEGIN;
            SET ROLE {role};
            SELECT fb_export_segment('{ALICE}.segment', 'attack_main', mode => 'add',
                                     audience_name => '{role}') AS run_id \\gset
            RESET ROLE;
            DROP OWNED BY {role};
            DROP ROLE {role};
            {then}
            COMMIT;
            SELECT :run_id;""").split()[-1]

    def test_a_run_of_a_dropped_role_fails_and_never_runs_as_a_new_role_of_that_name(self):
        impostor = f"CREATE ROLE attack_carol LOGIN IN ROLE connector_exporter;" \
                   f" SELECT fb_grant_destination('attack_main', 'attack_carol');" \
                   f" GRANT USAGE ON SCHEMA {ALICE} TO attack_carol;" \
                   f" GRANT SELECT ON {ALICE}.segment TO attack_carol;"
        run = finished_run(self.queue_and_drop("attack_carol", then=impostor))
        self.assertEqual((run["status"], run["sqlstate"], run["rows_read"]), ("failed", "42704", "0"), run)
        self.assertIn("was dropped", run["error"])
        sweep()
        self.assertEqual(sql("SELECT count(*) FROM connector.runs r JOIN connector.exports e USING (export_id)"
                             " WHERE e.audience_name = 'attack_carol'"), "1")

    def test_an_admin_cancels_the_run_of_a_dropped_role_and_the_views_keep_working(self):
        run_id = self.queue_and_drop("attack_dave", then=f"SET ROLE {ADMIN}; SELECT fb_cancel_export(:run_id);"
                                                        f" RESET ROLE;")
        self.assertEqual(run_row(run_id)["status"], "cancelled")
        for user in (ALICE, BOB, ADMIN):
            with self.subTest(user=user):
                sql("SELECT count(*) FROM fb_export_runs; SELECT count(*) FROM fb_exports;"
                    " SELECT count(*) FROM fb_destinations;", user=user)
        self.assertRegex(sql(f"SELECT requested_by FROM fb_export_runs WHERE run_id = {run_id}", user=ADMIN),
                         r"^\d+$")  # the OID of a role that is gone


class Keys(unittest.TestCase):
    """Point 9: no key in the data directory; missing and wrong keys differ; no silent second key."""

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="connector-keys-")
        give_to_postgres(self.directory, 0o700)

    def tearDown(self):
        self.use_key_file(None)
        subprocess.run(["rm", "-rf", self.directory], check=True)

    def use_key_file(self, path):
        setting = "RESET connector.key_file" if path is None else f"SET connector.key_file = '{path}'"
        sql(f"LOAD 'connector'; ALTER SYSTEM {setting}; SELECT pg_reload_conf();")
        time.sleep(0.3)

    def new_key_file(self, name, key="ab" * 32):
        path = os.path.join(self.directory, name)
        with open(path, "w") as file:
            file.write(key + "\n")
        give_to_postgres(path)
        return path

    def create(self, name, extra=""):
        sql(f"SELECT fb_create_destination('{name}', '{ACCOUNT}', '{TOKEN}', consent => true{extra})")

    def test_no_secret_is_stored_without_a_key_file_outside_the_data_directory(self):
        for setting, message in (("", "connector.key_file is not set"),
                                 (os.path.join(DATA_DIR, "connector.key"), "outside the data directory")):
            with self.subTest(setting=setting):
                self.use_key_file(setting)
                error = sql_error(f"SELECT fb_create_destination('attack_keyless', '{ACCOUNT}', '{TOKEN}',"
                                  f" consent => true)")
                self.assertEqual(error.sqlstate, "F0000")
                self.assertIn(message, error.message)
                self.assertIn("connector.key_file", error.output)
        self.assertFalse(os.path.exists(os.path.join(DATA_DIR, "connector.key")))

    def test_a_missing_key_and_a_wrong_key_are_told_apart(self):
        self.create("attack_keyed")
        self.use_key_file(os.path.join(self.directory, "missing.key"))
        missing = sql_error("SELECT * FROM fb_list_audiences('attack_keyed')")
        self.use_key_file(self.new_key_file("other.key"))
        wrong = sql_error("SELECT * FROM fb_list_audiences('attack_keyed')")
        for error in (missing, wrong):
            self.assertEqual(error.sqlstate, "F0000")
            self.assertIn('cannot decrypt the access token of destination "attack_keyed"', error.message)
        self.assertIn("does not exist; the secret was sealed with key", missing.message)
        self.assertRegex(wrong.message, r"sealed with key [0-9a-f]{16}, but the key file holds key [0-9a-f]{16}")

    def test_no_second_key_is_created_while_secrets_under_another_exist(self):
        self.create("attack_first")
        missing = os.path.join(self.directory, "new.key")
        self.use_key_file(missing)
        error = sql_error(f"SELECT fb_create_destination('attack_second', '{ACCOUNT}', '{TOKEN}', consent => true)")
        self.assertEqual(error.sqlstate, "F0000")
        self.assertIn("no new key is created automatically", error.message)
        self.assertFalse(os.path.exists(missing))

    def test_setting_the_token_again_recovers_a_destination_after_its_key_is_lost(self):
        self.create("attack_plain")
        self.create("attack_with_secret", f", app_secret => '{APP_SECRET}'")
        self.create("attack_secret_removed", f", app_secret => '{APP_SECRET}'")
        self.use_key_file(self.new_key_file("replacement.key", "cd" * 32))  # the old key is lost
        sql(f"SELECT fb_alter_destination('attack_plain', access_token => '{TOKEN}')", user=ADMIN)
        error = sql_error(f"SELECT fb_alter_destination('attack_with_secret', access_token => '{TOKEN}')",
                          user=ADMIN)
        self.assertIn("cannot decrypt the app secret", error.message)
        sql(f"SELECT fb_alter_destination('attack_with_secret', access_token => '{TOKEN}',"
            f" app_secret => '{APP_SECRET}')", user=ADMIN)
        sql(f"SELECT fb_alter_destination('attack_secret_removed', access_token => '{TOKEN}',"
            f" remove_app_secret => true)", user=ADMIN)
        for name in ("attack_plain", "attack_with_secret", "attack_secret_removed"):
            with self.subTest(name=name):
                self.assertEqual(sql(f"SELECT fb_verify_destination('{name}')", user=ADMIN), "t")


if __name__ == "__main__":
    unittest.main()
