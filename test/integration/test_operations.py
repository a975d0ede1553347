"""The operator's day (issue 14): fb_export_health for monitoring, fb_drop_export,
and a run history that connector.run_history keeps from growing forever. In
connector_worker, where the background worker runs."""

import subprocess
import time
import unittest

from support import DATA_DIR, PG_BINDIR, SERVER_LOG, SqlError, add_sim_token, psql, wait_for

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

    def ready():
        try:
            return sql("SELECT 1", timeout=5) == "1"
        except Exception:
            return False
    wait_for(ready, 60, "the server to accept connections again")


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
