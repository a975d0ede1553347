"""The operator's day (issue 14): fb_export_health for monitoring, fb_drop_export,
and a run history that connector.run_history keeps from growing forever. In
connector_worker, where the background worker runs."""

import json
import subprocess
import unittest

from support import DATA_DIR, PG_BINDIR, SERVER_LOG, SqlError, add_sim_token, psql, sim, wait_for, wait_for_server

DATABASE = "connector_worker"
TOKEN = "EAAintegrationOperationsToken01"
ACCOUNT = "act_1000"
ANALYST = "ops_analyst"
OTHER = "ops_other"


def sql(statement, timeout=120, user=None):
    return psql(statement, database=DATABASE, timeout=timeout, user=user)


def export(arguments, user=ANALYST):
    return sql(f"SELECT fb_export_segment({arguments})", user=user)


def export_of(run_id):
    return sql(f"SELECT export_id FROM connector.runs WHERE run_id = {run_id}")


def restart_server():
    subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BINDIR}/pg_ctl", "-D", DATA_DIR, "-m", "fast",
                    "-w", "-l", SERVER_LOG, "restart"], check=True, capture_output=True)
    wait_for_server(DATABASE)


def setUpModule():
    add_sim_token(TOKEN)
    sql(f"""
        CREATE EXTENSION IF NOT EXISTS connector;
        SELECT fb_create_destination('meta_ops', '{ACCOUNT}', '{TOKEN}', consent => true);
        DO $$ BEGIN
            CREATE ROLE {ANALYST} LOGIN IN ROLE connector_exporter;
            CREATE ROLE {OTHER} LOGIN IN ROLE connector_exporter;
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;
        SELECT fb_grant_destination('meta_ops', '{ANALYST}');
        SELECT fb_grant_destination('meta_ops', '{OTHER}');
        CREATE SCHEMA ops AUTHORIZATION {ANALYST};
    """)
    sql("""
        CREATE TABLE ops.people AS SELECT format('ops%s@example.com', i) AS email, i AS id
        FROM generate_series(1, 300) AS i;
        CREATE VIEW ops.everyone AS SELECT email FROM ops.people;
        CREATE VIEW ops.fragile AS SELECT email FROM ops.people;
        GRANT USAGE ON SCHEMA ops TO ops_other;
    """, user=ANALYST)


def tearDownModule():
    sql(f"SELECT fb_drop_destination('meta_ops');"
        f"DROP SCHEMA ops CASCADE; DROP ROLE {ANALYST}; DROP ROLE {OTHER};")


class Health(unittest.TestCase):
    def health(self, export_id, user=ANALYST):
        return sql("SELECT last_success IS NOT NULL, consecutive_failures, coalesce(last_sqlstate, ''),"
                   f" coalesce(last_error, ''), runs_going FROM fb_export_health WHERE export_id = {export_id}",
                   user=user)

    def test_one_row_per_export_with_the_failures_since_the_last_success(self):
        first = export("'ops.fragile', 'meta_ops', audience_name => 'health', mode => 'add', wait => true")
        export_id = export_of(first)
        self.assertEqual(self.health(export_id), "t|0|||0")
        # The view loses its column: two nightly calls fail their checks.
        sql("DROP VIEW ops.fragile; CREATE VIEW ops.fragile AS SELECT id FROM ops.people;", user=ANALYST)
        for _ in range(2):
            with self.assertRaises(SqlError):
                sql(f"SELECT fb_run_export({export_id})", user=ANALYST)
        health = self.health(export_id).split("|")
        self.assertEqual(health[:3], ["t", "2", "42703"])
        self.assertIn("no column for the key identifier", health[3])
        # Fixed: the next success clears the count.
        sql("DROP VIEW ops.fragile; CREATE VIEW ops.fragile AS SELECT email FROM ops.people;", user=ANALYST)
        sql(f"SELECT fb_run_export({export_id}, wait => true)", user=ANALYST)
        self.assertEqual(self.health(export_id), "t|0|||0")
        # Another exporter sees no row of it.
        self.assertEqual(self.health(export_id, user=OTHER), "")


class Preview(unittest.TestCase):
    def test_a_preview_reports_what_an_export_would_send_and_sends_nothing(self):
        sql("CREATE VIEW ops.mixed AS SELECT CASE WHEN id % 4 = 0 THEN 'not an address' ELSE email END AS email,"
            " CASE WHEN id % 2 = 0 THEN 'Ann' END AS fname FROM ops.people;", user=ANALYST)
        before = sim("/_sim/stats")["requests"]
        report = json.loads(sql("SELECT fb_preview_export('ops.mixed', mapping => '{\"FN\": \"fname\"}', sample => 3)",
                                user=ANALYST))
        self.assertEqual(sim("/_sim/stats")["requests"], before)
        self.assertEqual((report["rows_read"], report["rows_exportable"], report["rows_skipped"]),
                         (300, 225, {"invalid_email": 75}))
        self.assertEqual(report["keys"], {"EMAIL": {"column": "email", "by": "name", "valid_share": 0.75},
                                          "FN": {"column": "fname", "by": "mapping", "valid_share": 0.5}})
        self.assertEqual(report["sample"], [{"EMAIL": "ops1@example.com", "FN": None},
                                            {"EMAIL": "ops2@example.com", "FN": "ann"},
                                            {"EMAIL": "ops3@example.com", "FN": None}])
        self.assertEqual(report["batches"], 1)
        self.assertGreaterEqual(report["estimated_seconds"], 0)
        self.assertRegex(report["estimate_basis"], r"^(the successful runs of the last 30 days: [0-9.]+ s per batch"
                                                   r"|no recent run: 1 s per request.*)$")

    def test_a_preview_raises_the_errors_an_export_would(self):
        for call, sqlstate in (("'ops.everyone', mapping => '{\"EMAIL\": \"mail\"}'", "42703"),
                               ("'ops.people'", "42809"),
                               ("'ops.everyone', key_identifier => 'phone'", "42703")):
            with self.subTest(call=call):
                with self.assertRaises(SqlError) as raised:
                    sql(f"SELECT fb_preview_export({call})", user=ANALYST)
                self.assertEqual(raised.exception.sqlstate, sqlstate)
        # Read as the caller: another exporter cannot read this role's view.
        with self.assertRaises(SqlError) as raised:
            sql("SELECT fb_preview_export('ops.everyone')", user=OTHER)
        self.assertEqual(raised.exception.sqlstate, "42501")
        self.assertIn("permission denied for segment ops.everyone", raised.exception.message)


class WhatMetaMadeOfIt(unittest.TestCase):
    def tearDown(self):
        sim("/_sim/faults", method="DELETE")

    def test_a_run_shows_its_phase_rate_and_time_left_while_it_goes(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 1000, "endpoint": "/{audience_id}/users"}]})
        # Batches of 50 rows, one in flight, a second each: about 6 s of sending.
        call = subprocess.Popen(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", DATABASE, "-U", ANALYST, "-c",
             "SET connector.batch_size = 50; SET connector.max_parallel_requests = 1;"
             " SELECT fb_export_segment('ops.everyone', 'meta_ops', audience_name => 'progress', mode => 'add',"
             " wait => true)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(call.kill)
        run_id = wait_for(lambda: sql("SELECT max(r.run_id) FROM connector.runs r JOIN connector.exports e"
                                      " USING (export_id) WHERE e.audience_name = 'progress'"), 30, "the run")
        progress = ("SELECT phase, phase_rows_done, phase_rows_total, rows_per_second, time_left"
                    f" FROM fb_export_runs WHERE run_id = {run_id}")
        wait_for(lambda: sql(progress, user=ANALYST).split("|")[0] == "sending"
                 and int(sql(progress, user=ANALYST).split("|")[1]) > 0, 60, "the run to be sending")
        phase, done, total, rate, left = sql(progress, user=ANALYST).split("|")
        self.assertEqual(total, "300")
        self.assertGreater(float(rate), 0)
        self.assertRegex(left, r"^\d\d:\d\d:\d\d$")
        activity = sql(f"SELECT query FROM pg_stat_activity WHERE pid = (SELECT worker_pid FROM connector.runs"
                       f" WHERE run_id = {run_id})")
        self.assertRegex(activity, r"connector: sending audience \d+: \d+ of 300 rows, \d+ rows/s, about \d+ s left")
        # Another exporter sees nothing of it.
        self.assertEqual(sql(f"SELECT count(*) FROM fb_export_runs WHERE run_id = {run_id}", user=OTHER), "0")
        with self.assertRaises(SqlError) as raised:
            sql("SELECT * FROM connector.run_progress()", user=OTHER)
        self.assertEqual(raised.exception.sqlstate, "42501")
        out, err = call.communicate(timeout=60)
        self.assertEqual(call.returncode, 0, err)
        self.assertEqual(sql(f"SELECT status FROM fb_export_runs WHERE run_id = {run_id}"), "succeeded")
        self.assertEqual(sql(progress), "||||")

    def test_after_a_run_the_audience_as_meta_reports_it(self):
        run_id = export("'ops.everyone', 'meta_ops', audience_name => 'as meta sees it', mode => 'add', wait => true")
        audience = sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {run_id}")
        meta = sim(f"/_sim/audiences/{audience}")["fields"]
        recorded = sql("SELECT audience_size_lower, audience_size_upper, operation_status_code, delivery_status_code"
                       f" FROM fb_export_runs WHERE run_id = {run_id}", user=ANALYST)
        self.assertEqual(recorded, "|".join(str(v) for v in (
            meta["approximate_count_lower_bound"], meta["approximate_count_upper_bound"],
            meta["operation_status"]["code"], meta["delivery_status"]["code"])))

    def test_a_failure_to_read_the_audience_never_fails_the_run(self):
        sim("/_sim/config", {"faults": [{"kind": "server_error", "code": 2, "method": "GET",
                                         "endpoint": "/{audience_id}"}]})
        run_id = export("'ops.everyone', 'meta_ops', audience_name => 'unread', mode => 'add', wait => true")
        self.assertEqual(sql(f"SELECT status, operation_status_code IS NULL FROM fb_export_runs WHERE run_id = {run_id}"),
                         "succeeded|t")


class Forget(unittest.TestCase):
    PERSON = "ops5@example.com"

    def holds(self, audience, view, where):
        keys = "'EMAIL', 'PHONE'" if view == "ops.forget_view" else "'EMAIL'"
        cells = ("fb_hash('EMAIL', email), fb_hash('PHONE', phone)" if view == "ops.forget_view"
                 else "fb_hash('EMAIL', email)")
        expected = sql(f"SELECT json_build_object('schema', json_build_array({keys}),"
                       f" 'data', json_agg(json_build_array({cells}))) FROM {view} WHERE {where}")
        return sim(f"/_sim/audiences/{audience}/compare", json.loads(expected))["equal"]

    def test_a_person_leaves_every_audience_and_is_not_sent_again_without_a_new_source_row(self):
        sql("CREATE TABLE ops.forget_people AS SELECT * FROM ops.people;"
            "CREATE VIEW ops.forget_view AS SELECT email, '+1 650 555 ' || lpad(id::text, 4, '0') AS phone"
            " FROM ops.forget_people;"
            "CREATE VIEW ops.forget_emails AS SELECT email FROM ops.forget_people;", user=ANALYST)
        mirror = export("'ops.forget_view', 'meta_ops', audience_name => 'forget mirror', mode => 'mirror', wait => true")
        add = export("'ops.forget_emails', 'meta_ops', audience_name => 'forget add', mode => 'add', wait => true")
        mirror_audience, add_audience = (sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {run}")
                                         for run in (mirror, add))
        with self.assertRaises(SqlError) as raised:
            sql(f"SELECT * FROM fb_forget('meta_ops', 'EMAIL', '{self.PERSON}')", user=ANALYST)
        self.assertEqual(raised.exception.sqlstate, "42501")
        touched = sql(f"SELECT audience_id, outcome FROM fb_forget('meta_ops', 'EMAIL', ' OPS5@Example.com ')")
        for audience in (mirror_audience, add_audience):
            self.assertIn(f"{audience}|removed", touched.splitlines())
        # The mirror audience's rows had EMAIL and PHONE: the very row sent is removed too.
        self.assertTrue(self.holds(mirror_audience, "ops.forget_view", f"email <> '{self.PERSON}'"))
        self.assertTrue(self.holds(add_audience, "ops.forget_emails", f"email <> '{self.PERSON}'"))
        # Recorded, without the identifier.
        self.assertEqual(sql("SELECT destination, key, ledger_entries, requested_by FROM fb_erasures"
                             " ORDER BY erasure_id DESC LIMIT 1"), "meta_ops|EMAIL|1|postgres")
        self.assertEqual(sql("SELECT count(*) FROM fb_erasures e WHERE row_to_json(e)::text ILIKE '%ops5%'"), "0")
        # The next mirror run finds the person's row unchanged: not sent again.
        again = export("'ops.forget_view', 'meta_ops', audience_name => 'forget mirror', wait => true")
        self.assertEqual(sql(f"SELECT status, rows_sent, rows_removed FROM connector.runs WHERE run_id = {again}"),
                         "succeeded|0|0")
        self.assertTrue(self.holds(mirror_audience, "ops.forget_view", f"email <> '{self.PERSON}'"))
        # A new source row (the address written anew) is sent: the person is back.
        sql(f"UPDATE ops.forget_people SET email = upper(email) WHERE email = '{self.PERSON}'", user=ANALYST)
        back = export("'ops.forget_view', 'meta_ops', audience_name => 'forget mirror', wait => true")
        self.assertEqual(sql(f"SELECT rows_sent, rows_removed FROM connector.runs WHERE run_id = {back}"), "1|0")
        self.assertTrue(self.holds(mirror_audience, "ops.forget_view", "true"))

    def test_a_person_is_found_by_phone_as_written_anywhere(self):
        sql("CREATE VIEW ops.phones AS SELECT '+1 650 555 ' || lpad(id::text, 4, '0') AS phone FROM ops.people;",
            user=ANALYST)
        run_id = export("'ops.phones', 'meta_ops', audience_name => 'forget phone', mode => 'add', wait => true")
        audience = sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {run_id}")
        # Written otherwise than in the segment, normalized the same.
        touched = sql(f"SELECT outcome FROM fb_forget('meta_ops', 'phone', '+1 (650) 555-0007 ext. 12')"
                      f" WHERE audience_id = '{audience}'")
        self.assertEqual(touched, "removed")
        expected = sql("SELECT json_build_object('schema', json_build_array('PHONE'),"
                       " 'data', json_agg(json_build_array(fb_hash('PHONE', phone))))"
                       " FROM ops.phones WHERE phone <> '+1 650 555 0007'")
        self.assertTrue(sim(f"/_sim/audiences/{audience}/compare", json.loads(expected))["equal"])

    def test_errors_never_show_the_identifier(self):
        marker = "forgotten-marker-4711"
        with self.assertRaises(SqlError) as raised:
            sql(f"SELECT * FROM fb_forget('meta_ops', 'EMAIL', '{marker}')")
        self.assertEqual(raised.exception.sqlstate, "22023")
        self.assertNotIn(marker, raised.exception.output)
        with self.assertRaises(SqlError) as raised:
            sql(f"SELECT * FROM fb_forget('meta_ops', 'FN', '{marker}')")
        self.assertIn("EMAIL, PHONE, MADID or EXTERN_ID", raised.exception.output)
        with open(SERVER_LOG) as log:
            self.assertNotIn(marker, log.read())


class DropExport(unittest.TestCase):
    def test_an_export_is_forgotten_with_its_runs_and_ledger_and_its_audience_stays(self):
        run_id = export("'ops.everyone', 'meta_ops', audience_name => 'dropped', mode => 'mirror', wait => true")
        export_id = export_of(run_id)
        audience = sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {run_id}")
        self.assertNotEqual(sql(f"SELECT count(*) FROM connector.ledger WHERE export_id = {export_id}"), "0")
        with self.assertRaises(SqlError) as raised:
            sql(f"SELECT fb_drop_export({export_id})", user=OTHER)
        self.assertEqual(raised.exception.sqlstate, "42704")
        completed = subprocess.run(["psql", "-X", "-At", "-d", DATABASE, "-U", ANALYST,
                                    "-c", f"SELECT fb_drop_export({export_id})"],
                                   capture_output=True, text=True, check=True)
        self.assertIn(f"audience {audience} stays at Meta", completed.stderr)
        for table in ("exports", "runs", "ledger"):
            self.assertEqual(sql(f"SELECT count(*) FROM connector.{table} WHERE export_id = {export_id}"), "0")
        self.assertIn(audience, sql("SELECT audience_id FROM fb_list_audiences('meta_ops')", user=ANALYST))

    def test_an_export_with_a_run_going_is_not_dropped(self):
        run_id = export("'ops.everyone', 'meta_ops', audience_name => 'busy drop', mode => 'add', wait => true")
        export_id = export_of(run_id)
        with self.assertRaises(SqlError) as raised:
            sql(f"BEGIN; SELECT fb_run_export({export_id}); SELECT fb_drop_export({export_id});", user=ANALYST)
        self.assertEqual(raised.exception.sqlstate, "55006")
        self.assertIn("fb_cancel_export(", raised.exception.output)
        self.assertEqual(sql(f"SELECT count(*) FROM connector.exports WHERE export_id = {export_id}"), "1")


class RunHistory(unittest.TestCase):
    def test_runs_older_than_connector_run_history_go_but_the_last_of_each_export_stays(self):
        runs = [int(export("'ops.everyone', 'meta_ops', audience_name => 'history', mode => 'add', wait => true"))
                for _ in range(3)]
        export_id = export_of(runs[0])
        sql(f"UPDATE connector.runs SET finished_at = now() - interval '40 days' WHERE run_id IN ({runs[0]}, {runs[1]});"
            f"UPDATE connector.runs SET finished_at = now() - interval '35 days' WHERE run_id = {runs[2]};")
        sql("ALTER SYSTEM SET connector.run_history = '30d'")
        try:
            restart_server()  # the first sweep after a start prunes
            wait_for(lambda: sql(f"SELECT count(*) FROM connector.runs WHERE export_id = {export_id}") == "1",
                     30, "the old runs to be deleted")
            self.assertEqual(sql(f"SELECT run_id FROM connector.runs WHERE export_id = {export_id}"), str(runs[2]))
        finally:
            sql("ALTER SYSTEM RESET connector.run_history")
            restart_server()


if __name__ == "__main__":
    unittest.main()
