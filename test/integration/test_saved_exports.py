"""Saved exports behave as an operator expects (issue 13): an argument left
out keeps the saved value, fb_run_export runs an export exactly as saved, a
mapping names some keys and the others are still matched by name, two columns
fitting one key are an error, a call of a saved export that fails its checks
is a failed run in fb_export_runs, and a call can refuse or skip when a run of
the export is going. In connector_worker, where the background worker runs
queued runs."""

import json
import subprocess
import unittest

from support import SqlError, add_sim_token, psql, sim, wait_for

DATABASE = "connector_worker"
TOKEN = "EAAintegrationSavedToken01"
ACCOUNT = "act_1000"
ANALYST = "saved_analyst"
OTHER = "saved_other"


def sql(statement, timeout=120, user=None):
    return psql(statement, database=DATABASE, timeout=timeout, user=user)


def export(arguments, user=ANALYST):
    return sql(f"SELECT fb_export_segment({arguments})", user=user)


def run(run_id, columns="status, mode, sqlstate, error"):
    names = [c.strip() for c in columns.split(",")]
    values = sql(f"SELECT {', '.join(f'coalesce({c}::text, {chr(39)}{chr(39)})' for c in names)}"
                 f" FROM connector.runs WHERE run_id = {run_id}").split("|")
    return dict(zip(names, values))


def saved(audience_name, columns="mode, mapping, key_identifier"):
    return sql(f"SELECT {columns} FROM fb_exports WHERE audience_name = '{audience_name}'", user=ANALYST)


def audience_of(run_id):
    return sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {run_id}")


def audience_holds(test, audience_id, keys, view):
    cells = ", ".join(f"coalesce(fb_hash('{key}', {column}), '')" for key, column in keys)
    expected = sql(f"SELECT json_build_object('schema', json_build_array({', '.join(repr(k) for k, _ in keys)}),"
                   f" 'data', json_agg(json_build_array({cells}))) FROM {view}".replace('"', "'"))
    answer = sim(f"/_sim/audiences/{audience_id}/compare", json.loads(expected))
    test.assertTrue(answer["equal"], answer)


def setUpModule():
    add_sim_token(TOKEN)
    sql(f"""
        CREATE EXTENSION IF NOT EXISTS connector;
        SELECT fb_create_destination('meta_saved', '{ACCOUNT}', '{TOKEN}', consent => true);
        DO $$ BEGIN
            CREATE ROLE {ANALYST} LOGIN IN ROLE connector_exporter;
            CREATE ROLE {OTHER} LOGIN IN ROLE connector_exporter;
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;
        SELECT fb_grant_destination('meta_saved', '{ANALYST}');
        SELECT fb_grant_destination('meta_saved', '{OTHER}');
        CREATE SCHEMA saved AUTHORIZATION {ANALYST};
        GRANT USAGE ON SCHEMA saved TO {OTHER};
    """)
    sql("""
        CREATE TABLE saved.people AS
        SELECT format('saved%s@example.com', i) AS mail, format('saved%s@example.com', i) AS email,
               'Ann' || i AS fname, 'Lee' || i AS lname, '9410' || (i % 10) AS zip,
               '+1 650 555 ' || lpad(i::text, 4, '0') AS phone
        FROM generate_series(1, 200) AS i;
        CREATE VIEW saved.by_mail AS SELECT mail FROM saved.people;
        CREATE VIEW saved.names AS SELECT email, fname, lname, zip, phone FROM saved.people;
        CREATE VIEW saved.two_emails AS SELECT email, mail AS email_address FROM saved.people;
        GRANT SELECT ON ALL TABLES IN SCHEMA saved TO saved_other;
    """, user=ANALYST)


def tearDownModule():
    sql(f"SELECT fb_drop_destination('meta_saved');"
        f"DROP SCHEMA saved CASCADE; DROP ROLE {ANALYST}; DROP ROLE {OTHER};")


class ArgumentsLeftOut(unittest.TestCase):
    def test_a_call_without_mode_or_mapping_keeps_what_was_saved(self):
        first = int(export("'saved.by_mail', 'meta_saved', audience_name => 'kept', mode => 'add',"
                           " mapping => '{\"EMAIL\": \"mail\"}', wait => true"))
        self.assertEqual(run(first)["status"], "succeeded")
        # The README's nightly line: no mode, no mapping. Before, it switched
        # the export to mirror and dropped the mapping ("no column for the key
        # identifier").
        again = int(export("'saved.by_mail', 'meta_saved', audience_name => 'kept', wait => true"))
        self.assertEqual(run(again, "status, mode, mapping::text"),
                         {"status": "succeeded", "mode": "add", "mapping::text": '{"EMAIL": "mail"}'})
        self.assertEqual(audience_of(again), audience_of(first))
        self.assertEqual(saved("kept"), 'add|{"EMAIL": "mail"}|')
        # One argument changes one thing.
        export("'saved.by_mail', 'meta_saved', audience_name => 'kept', mode => 'mirror', wait => true")
        self.assertEqual(saved("kept"), 'mirror|{"EMAIL": "mail"}|')
        # A new export takes today's defaults.
        new = int(export("'saved.names', 'meta_saved', audience_name => 'fresh', wait => true"))
        self.assertEqual(run(new, "status, mode"), {"status": "succeeded", "mode": "mirror"})

    def test_mapping_empty_object_and_key_identifier_any_go_back_to_the_defaults(self):
        export("'saved.names', 'meta_saved', audience_name => 'reset', mode => 'add',"
               " mapping => '{\"EMAIL\": null}', key_identifier => 'phone', wait => true")
        self.assertEqual(saved("reset"), 'add|{"EMAIL": null}|phone')
        export("'saved.names', 'meta_saved', audience_name => 'reset', mapping => '{}',"
               " key_identifier => 'any', wait => true")
        self.assertEqual(saved("reset"), 'add|{}|')
        self.assertEqual(sorted(json.loads(saved("reset", "resolved_mapping"))),
                         ["EMAIL", "PHONE", "ZIP"])  # fname and lname fit no key by name

    def test_fb_run_export_runs_a_saved_export_exactly_as_saved(self):
        first = int(export("'saved.by_mail', 'meta_saved', audience_name => 'by id', mode => 'add',"
                           " mapping => '{\"EMAIL\": \"mail\"}', wait => true"))
        export_id = sql(f"SELECT export_id FROM connector.runs WHERE run_id = {first}")
        queued = int(sql(f"SELECT fb_run_export({export_id})", user=ANALYST))
        wait_for(lambda: run(queued)["status"] not in ("queued", "running"), 60, "the queued run to end")
        self.assertEqual(run(queued, "status, mode, mapping::text"),
                         {"status": "succeeded", "mode": "add", "mapping::text": '{"EMAIL": "mail"}'})
        self.assertEqual(audience_of(queued), audience_of(first))
        waited = int(sql(f"SELECT fb_run_export({export_id}, wait => true)", user=ANALYST))
        self.assertEqual(run(waited)["status"], "succeeded")
        self.assertEqual(saved("by id"), 'add|{"EMAIL": "mail"}|')

    def test_fb_run_export_of_an_unknown_or_someone_elses_export_is_refused(self):
        first = int(export("'saved.by_mail', 'meta_saved', audience_name => 'not yours',"
                           " mapping => '{\"EMAIL\": \"mail\"}', mode => 'add', wait => true"))
        export_id = sql(f"SELECT export_id FROM connector.runs WHERE run_id = {first}")
        for user, target in ((OTHER, export_id), (ANALYST, "987654321")):
            with self.assertRaises(SqlError) as raised:
                sql(f"SELECT fb_run_export({target})", user=user)
            self.assertEqual(raised.exception.sqlstate, "42704")
            self.assertIn(f"export {target} does not exist", raised.exception.message)
        self.assertEqual(sql(f"SELECT count(*) FROM connector.runs WHERE export_id = {export_id}"), "1")


class PartialMapping(unittest.TestCase):
    def test_a_mapping_adds_to_name_matching(self):
        # email is matched by name beside the mapped FN and LN; PHONE is turned off.
        run_id = int(export("'saved.names', 'meta_saved', audience_name => 'partial', mode => 'add',"
                            " mapping => '{\"FN\": \"fname\", \"LN\": \"lname\", \"PHONE\": null}', wait => true"))
        self.assertEqual(run(run_id)["status"], "succeeded")
        audience_holds(self, audience_of(run_id),
                       [("EMAIL", "email"), ("FN", "fname"), ("LN", "lname"), ("ZIP", "zip")], "saved.names")
        resolved = json.loads(saved("partial", "resolved_mapping"))
        self.assertEqual(resolved, {"EMAIL": {"column": "email", "by": "name"},
                                    "FN": {"column": "fname", "by": "mapping"},
                                    "LN": {"column": "lname", "by": "mapping"},
                                    "ZIP": {"column": "zip", "by": "name"}})
        self.assertEqual(json.loads(sql(f"SELECT resolved_mapping FROM connector.runs WHERE run_id = {run_id}")),
                         resolved)

    def test_two_columns_that_fit_one_key_are_an_error_naming_both(self):
        with self.assertRaises(SqlError) as raised:
            export("'saved.two_emails', 'meta_saved', audience_name => 'two emails', wait => true")
        self.assertEqual(raised.exception.sqlstate, "42702")
        self.assertIn('columns "email" and "email_address" of segment saved.two_emails both fit EMAIL',
                      raised.exception.message)
        run_id = int(export("'saved.two_emails', 'meta_saved', audience_name => 'two emails',"
                            " mapping => '{\"EMAIL\": \"email_address\"}', wait => true"))
        self.assertEqual(json.loads(saved("two emails", "resolved_mapping")),
                         {"EMAIL": {"column": "email_address", "by": "mapping"}})
        self.assertEqual(run(run_id)["status"], "succeeded")


class RefusedCalls(unittest.TestCase):
    """A scheduled call's error otherwise only reaches cron.job_run_details."""

    def setUp(self):
        sql("CREATE VIEW saved.fragile AS SELECT mail, fname FROM saved.people;", user=ANALYST)

    def tearDown(self):
        sql("DROP VIEW IF EXISTS saved.fragile;", user=ANALYST)

    def test_a_call_of_a_saved_export_that_fails_its_checks_is_a_failed_run(self):
        first = int(export("'saved.fragile', 'meta_saved', audience_name => 'fragile',"
                           " mapping => '{\"EMAIL\": \"mail\"}', mode => 'add', wait => true"))
        export_id = sql(f"SELECT export_id FROM connector.runs WHERE run_id = {first}")
        # The view loses the mapped column; the nightly call fails its checks.
        sql("DROP VIEW saved.fragile; CREATE VIEW saved.fragile AS SELECT fname FROM saved.people;", user=ANALYST)
        with self.assertRaises(SqlError) as raised:
            export("'saved.fragile', 'meta_saved', audience_name => 'fragile'")
        self.assertEqual(raised.exception.sqlstate, "42703")
        recorded = sql(f"SELECT status, mode, sqlstate, error, requested_by FROM fb_export_runs"
                       f" WHERE run_id > {first} AND audience_id = '{audience_of(first)}'", user=ANALYST)
        self.assertEqual(recorded, f"failed|add|42703|{raised.exception.message}|{ANALYST}")
        # fb_run_export of an export whose segment is gone.
        sql("DROP VIEW saved.fragile;", user=ANALYST)
        with self.assertRaises(SqlError) as raised:
            sql(f"SELECT fb_run_export({export_id})", user=ANALYST)
        self.assertEqual(raised.exception.sqlstate, "42P01")
        self.assertEqual(sql(f"SELECT sqlstate || ':' || error FROM connector.runs WHERE export_id = {export_id}"
                             " ORDER BY run_id DESC LIMIT 1"),
                         f"42P01:segment saved.fragile of export {export_id} does not exist any more")
        self.assertEqual(sql(f"SELECT count(*) FROM connector.runs WHERE export_id = {export_id}"), "3")

    def test_calls_that_name_no_export_of_the_caller_record_nothing(self):
        first = int(export("'saved.fragile', 'meta_saved', audience_name => 'fragile 2',"
                           " mapping => '{\"EMAIL\": \"mail\"}', mode => 'add', wait => true"))
        export_id = sql(f"SELECT export_id FROM connector.runs WHERE run_id = {first}")
        before = sql("SELECT count(*) FROM connector.runs")
        # Another exporter's call with a bad mapping: not its export, not its record.
        with self.assertRaises(SqlError):
            export("'saved.fragile', 'meta_saved', audience_name => 'fragile 2', mapping => '{\"EMAIL\": \"x\"}'",
                   user=OTHER)
        # A new export that fails its checks has no export to record a run of.
        with self.assertRaises(SqlError):
            export("'saved.fragile', 'meta_saved', audience_name => 'never saved', mapping => '{\"EMAIL\": \"x\"}'")
        self.assertEqual(sql("SELECT count(*) FROM connector.runs"), before)
        self.assertEqual(sql(f"SELECT count(*) FROM connector.runs WHERE export_id = {export_id}"), "1")


class IfRunning(unittest.TestCase):
    def tearDown(self):
        sim("/_sim/faults", method="DELETE")

    def test_a_call_can_refuse_or_skip_while_a_run_of_the_export_is_going(self):
        export("'saved.names', 'meta_saved', audience_name => 'busy', mode => 'add', wait => true")
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 3000, "endpoint": "/{audience_id}/users"}]})
        going = int(export("'saved.names', 'meta_saved', audience_name => 'busy'"))
        wait_for(lambda: run(going)["status"] == "running", 30, "the run to start")
        before = sql("SELECT count(*) FROM connector.runs")
        with self.assertRaises(SqlError) as raised:
            export("'saved.names', 'meta_saved', audience_name => 'busy', if_running => 'error'")
        self.assertEqual(raised.exception.sqlstate, "55006")
        self.assertIn(f"run {going} of segment saved.names or of its audience is already running",
                      raised.exception.message)
        # Another exporter learns nothing of this role's runs: naming the audience is refused as ever.
        with self.assertRaises(SqlError) as raised:
            export(f"'saved.names', 'meta_saved', audience_name => 'not busy for me',"
                   f" audience_id => '{audience_of(going)}', if_running => 'error'", user=OTHER)
        self.assertEqual(raised.exception.sqlstate, "42501")
        self.assertNotIn(f"run {going}", raised.exception.output)
        self.assertEqual(export("'saved.names', 'meta_saved', audience_name => 'busy', if_running => 'skip'"), "")
        export_id = sql(f"SELECT export_id FROM connector.runs WHERE run_id = {going}")
        self.assertEqual(sql(f"SELECT fb_run_export({export_id}, if_running => 'skip')", user=ANALYST), "")
        self.assertEqual(sql("SELECT count(*) FROM connector.runs"), before)
        # The default takes turns.
        waiting = int(export("'saved.names', 'meta_saved', audience_name => 'busy'"))
        self.assertEqual(run(waiting)["status"], "queued")
        sql(f"SELECT fb_cancel_export({going}), fb_cancel_export({waiting})", user=ANALYST)
        with self.assertRaises(SqlError) as raised:
            export("'saved.names', 'meta_saved', if_running => 'later'")
        self.assertEqual(raised.exception.sqlstate, "22023")


if __name__ == "__main__":
    unittest.main()
