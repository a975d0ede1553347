"""The background worker (connector in shared_preload_libraries, serving the
database connector_worker): queued runs complete and NOTIFY, a running run
can be cancelled, a worker killed with -9 is recovered after the restart, and
pg_cron schedules an export."""

import json
import os
import signal
import subprocess
import time
import unittest

import support
from support import DATA_DIR, PG_BINDIR, SERVER_LOG, SqlError, add_sim_token, psql, sim, wait_for

DATABASE = "connector_worker"  # connector.database and cron.database_name of the test cluster
TOKEN = "EAAintegrationWorkerToken01"
ACCOUNT = "act_1000"

EXPECTED = """
SELECT json_build_object('schema', json_build_array('EMAIL'),
                         'data', json_agg(json_build_array(fb_hash('EMAIL', email))))
FROM {view} WHERE fb_hash('EMAIL', email) IS NOT NULL
"""


def sql(statement, timeout=120):
    return psql(statement, database=DATABASE, timeout=timeout)


def run(run_id):
    return dict(zip(["status", "rows_sent", "error", "worker_pid"],
                    sql(f"SELECT r.status, r.rows_sent, coalesce(r.error, ''), coalesce(r.worker_pid, 0)"
                        f" FROM connector.runs r WHERE run_id = {run_id}").split("|")))


def wait_for_server():
    support.wait_for_server(DATABASE)


def audience_holds_exactly(test, audience_id, view):
    answer = sim(f"/_sim/audiences/{audience_id}/compare", json.loads(sql(EXPECTED.format(view=view))))
    test.assertTrue(answer["equal"], answer)


def setUpModule():
    add_sim_token(TOKEN)
    sql(f"""
        CREATE EXTENSION IF NOT EXISTS connector;
        SELECT fb_create_destination('meta_worker', '{ACCOUNT}', '{TOKEN}', consent => true);
        CREATE TABLE people AS SELECT format('worker%s@example.com', i) AS email
        FROM generate_series(1, 30000) AS i;
        CREATE VIEW worker_segment AS SELECT email FROM people;
    """)


class QueuedRuns(unittest.TestCase):
    def tearDown(self):
        sim("/_sim/faults", method="DELETE")

    def test_a_queued_run_completes_and_notifies(self):
        listener = subprocess.run(
            ["psql", "-X", "-q", "-At", "-d", DATABASE],
            input="LISTEN connector_export;\n"
                  "SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'replace',"
                  " audience_name => 'queued');\n"
                  + "SELECT pg_sleep(0.5);\n" * 30,
            capture_output=True, text=True, timeout=60)
        run_id = int(listener.stdout.splitlines()[0])
        self.assertIn(f'"run_id": {run_id}, "status": "succeeded"', listener.stdout)
        self.assertEqual(run(run_id)["status"], "succeeded")
        audience = sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {run_id}")
        audience_holds_exactly(self, audience, "worker_segment")

    def test_a_running_run_can_be_cancelled(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 3000,
                                         "endpoint": "/{audience_id}/users"}]})
        run_id = int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
                         " audience_name => 'cancelled')"))
        wait_for(lambda: run(run_id)["status"] == "running", 30, "the run to start")
        self.assertEqual(sql(f"SELECT fb_cancel_export({run_id})"), "t")
        started = time.monotonic()
        wait_for(lambda: run(run_id)["status"] == "cancelled", 15, "the run to be cancelled")
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(sql(f"SELECT fb_cancel_export({run_id})"), "f")

    def test_a_rolled_back_call_queues_nothing(self):
        sql("BEGIN; SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
            " audience_name => 'never'); ROLLBACK;")
        self.assertEqual(sql("SELECT count(*) FROM fb_exports WHERE audience_name = 'never'"), "0")

    def test_a_queued_run_can_be_cancelled_before_it_starts(self):
        # Queued and cancelled in one transaction: the worker never sees it queued.
        run_id = int(sql("BEGIN;\n"
                         "SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
                         " audience_name => 'cancelled early') AS run_id \\gset\n"
                         "SELECT fb_cancel_export(:run_id) AS cancelled \\gset\n"
                         "COMMIT;\n"
                         "SELECT :run_id WHERE :'cancelled';"))
        time.sleep(2)  # room for a worker that should not start
        self.assertEqual(run(run_id)["status"], "cancelled")
        self.assertEqual(sql(f"SELECT rows_sent || '/' || coalesce(started_at::text, 'never')"
                             f" FROM connector.runs WHERE run_id = {run_id}"), "0/never")


class OneRunAtATime(unittest.TestCase):
    """Two runs of one export never overlap: a nightly run and a manual one,
    or two waited calls, take turns instead of one failing on a raw
    serialization error."""

    def export_started(self, audience_name, wait):
        """A psql running fb_export_segment in the background; its stdout is
        the run id, its stderr the NOTICEs."""
        return subprocess.Popen(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", DATABASE, "-c",
             "SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
             f" audience_name => '{audience_name}', wait => {str(wait).lower()})"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def times(self, run_id):
        return sql(f"SELECT status, started_at, finished_at FROM connector.runs WHERE run_id = {run_id}").split("|")

    def test_two_waited_runs_of_one_export_take_turns(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 700, "endpoint": "/{audience_id}/users"}]})
        try:
            # The export and its audience exist before the two calls race.
            sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
                " audience_name => 'one at a time', wait => true)")
            calls = [self.export_started("one at a time", True) for _ in range(2)]
            outputs = [call.communicate(timeout=120) for call in calls]
        finally:
            sim("/_sim/faults", method="DELETE")
        for call, (out, err) in zip(calls, outputs):
            self.assertEqual(call.returncode, 0, err)
            self.assertNotIn("serialize", err)
        first, second = sorted(int(out.strip()) for out, _ in outputs)
        (status_a, _, finished_a), (status_b, started_b, _) = self.times(first), self.times(second)
        self.assertEqual((status_a, status_b), ("succeeded", "succeeded"))
        self.assertGreaterEqual(started_b, finished_a)
        notices = "".join(err for _, err in outputs)
        self.assertRegex(notices, rf"export run \d+ waits for run \d+ of the same export or audience")

    def test_two_queued_runs_of_one_export_take_turns(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 700, "endpoint": "/{audience_id}/users"}]})
        try:
            first, second = (int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker',"
                                     " mode => 'add', audience_name => 'queued twice')"))
                             for _ in range(2))
            wait_for(lambda: run(second)["status"] not in ("queued", "running"), 90,
                     "the second run to end")
        finally:
            sim("/_sim/faults", method="DELETE")
        (status_a, _, finished_a), (status_b, started_b, _) = self.times(first), self.times(second)
        self.assertEqual((status_a, status_b), ("succeeded", "succeeded"))
        self.assertGreaterEqual(started_b, finished_a)

    def test_a_waited_run_waits_for_a_queued_run_of_the_same_export(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 700, "endpoint": "/{audience_id}/users"}]})
        try:
            queued = int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
                             " audience_name => 'queued then waited')"))
            wait_for(lambda: run(queued)["status"] == "running", 30, "the queued run to start")
            waited = self.export_started("queued then waited", True)
            out, err = waited.communicate(timeout=120)
        finally:
            sim("/_sim/faults", method="DELETE")
        self.assertEqual(waited.returncode, 0, err)
        self.assertIn(f"waits for run {queued} of the same export or audience", err)
        (status_a, _, finished_a), (status_b, started_b, _) = self.times(queued), self.times(int(out))
        self.assertEqual((status_a, status_b), ("succeeded", "succeeded"))
        self.assertGreaterEqual(started_b, finished_a)


class ReplaceSessionsLeftOpen(unittest.TestCase):
    """A replace that stops before its last batch leaves its session open at
    Meta, which refuses every other change of the audience (2650/1870145) for
    90 minutes: a cancelled replace closes it at once, and the next run of any
    mode closes one a failed replace could not."""

    def tearDown(self):
        sim("/_sim/faults", method="DELETE")

    def replace_sessions(self, audience):
        return [s for s in sim(f"/_sim/sessions?audience_id={audience}")["sessions"] if s["kind"] == "replace"]

    def ledger_chunks(self, run_id):
        return sql(f"SELECT count(*) FROM connector.ledger WHERE export_id ="
                   f" (SELECT export_id FROM connector.runs WHERE run_id = {run_id})")

    def test_a_cancelled_replace_closes_its_session_and_the_next_add_run_is_not_refused(self):
        first = int(sql("SET connector.batch_size = 2000;"
                        "SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'replace',"
                        " audience_name => 'replace cancelled', wait => true)"))
        audience = sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {first}")
        self.assertNotEqual(self.ledger_chunks(first), "0")
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 1500, "endpoint": "/{audience_id}/usersreplace"}]})
        run_id = int(sql("SET connector.batch_size = 2000; SET connector.max_parallel_requests = 1;"
                         "SELECT fb_export_segment('worker_segment', 'meta_worker', audience_name => 'replace cancelled')"))
        wait_for(lambda: int(sql(f"SELECT batches FROM connector.runs WHERE run_id = {run_id}")) >= 2, 60,
                 "the replace to be past its first batch")
        self.assertEqual(sql(f"SELECT fb_cancel_export({run_id})"), "t")
        wait_for(lambda: run(run_id)["status"] == "cancelled", 30, "the replace to be cancelled")
        sim("/_sim/faults", method="DELETE")
        self.assertIn("its replace session at Meta was closed", run(run_id)["error"])
        self.assertEqual([s["outcome"] for s in self.replace_sessions(audience)], ["finished", "finished"])
        # The audience holds part of the replace: the export's ledger no longer describes it.
        self.assertEqual(self.ledger_chunks(run_id), "0")
        after = int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
                        " audience_name => 'replace cancelled', wait => true)"))
        self.assertEqual(sql(f"SELECT status, retries FROM connector.runs WHERE run_id = {after}"), "succeeded|0")
        audience_holds_exactly(self, audience, "worker_segment")

    def test_the_next_run_of_any_mode_closes_a_session_a_failed_replace_left_open(self):
        first = int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'replace',"
                        " audience_name => 'replace failed', wait => true)"))
        audience = sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {first}")
        # Batch 1 reaches Meta but its answer is lost (never resent: the run
        # fails), and closing the session fails too: it stays open.
        sim("/_sim/config", {"faults": [
            {"kind": "drop_after", "count": 1, "endpoint": "/{audience_id}/usersreplace"},
            {"kind": "server_error", "code": 2, "count": 10, "endpoint": "/{audience_id}/usersreplace"}]})
        with self.assertRaises(SqlError):
            sql("SET connector.retry_base_delay = '20ms';"
                "SELECT fb_export_segment('worker_segment', 'meta_worker', audience_name => 'replace failed',"
                " wait => true)")
        sim("/_sim/faults", method="DELETE")
        failed = sql("SELECT max(r.run_id) FROM connector.runs r JOIN connector.exports e USING (export_id)"
                     " WHERE e.audience_name = 'replace failed'")
        self.assertEqual(sql(f"SELECT status, session_closed FROM connector.runs WHERE run_id = {failed}"),
                         "failed|f")
        self.assertEqual(self.replace_sessions(audience)[-1]["outcome"], "open")
        # An add run would get 2650/1870145 for 90 minutes; it closes the session first.
        after = int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
                        " audience_name => 'replace failed', wait => true)"))
        self.assertEqual(sql(f"SELECT status, retries FROM connector.runs WHERE run_id = {after}"), "succeeded|0")
        self.assertEqual(self.replace_sessions(audience)[-1]["outcome"], "finished")
        self.assertEqual(sql(f"SELECT session_closed FROM connector.runs WHERE run_id = {failed}"), "t")
        self.assertEqual(self.ledger_chunks(failed), "0")
        audience_holds_exactly(self, audience, "worker_segment")


class Crash(unittest.TestCase):
    def tearDown(self):
        sim("/_sim/faults", method="DELETE")

    def test_a_worker_killed_with_minus_9_is_recovered(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 1500,
                                         "endpoint": "/{audience_id}/usersreplace"}]})
        run_id = int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'replace',"
                         " audience_name => 'crashed')"))
        pid = int(wait_for(lambda: run(run_id)["status"] == "running" and run(run_id)["worker_pid"] != "0"
                           and run(run_id)["worker_pid"], 30, "the run to start"))
        os.kill(pid, signal.SIGKILL)
        time.sleep(2)
        sim("/_sim/faults", method="DELETE")
        wait_for_server()
        wait_for(lambda: run(run_id)["status"] == "failed", 90, "the interrupted run to be failed")
        self.assertIn("interrupted", run(run_id)["error"])
        retry = int(sql(f"SELECT max(run_id) FROM connector.runs WHERE export_id ="
                        f" (SELECT export_id FROM connector.runs WHERE run_id = {run_id})"))
        self.assertGreater(retry, run_id)
        wait_for(lambda: run(retry)["status"] == "succeeded", 90, "the re-queued run to succeed")
        audience = sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {retry}")
        audience_holds_exactly(self, audience, "worker_segment")


    def test_a_run_whose_worker_keeps_dying_is_queued_again_once_and_a_restart_always_requeues(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 2000, "endpoint": "/{audience_id}/users"}]})

        def next_run(after):
            return int(wait_for(lambda: sql(f"SELECT run_id FROM connector.runs WHERE run_id > {after}"
                                            f" AND export_id = (SELECT export_id FROM connector.runs"
                                            f" WHERE run_id = {after})"), 90, "the run to be queued again"))

        def running_pid(run_id):
            return int(wait_for(lambda: run(run_id)["status"] == "running" and run(run_id)["worker_pid"] != "0"
                                and run(run_id)["worker_pid"], 60, f"run {run_id} to start"))

        def ended(run_id, status="failed"):
            wait_for_server()
            wait_for(lambda: run(run_id)["status"] == status, 90, f"run {run_id} to be {status}")
            return run(run_id)["error"]

        first = int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
                        " audience_name => 'crashing')"))
        os.kill(running_pid(first), signal.SIGKILL)
        self.assertIn("its worker died", ended(first))
        second = next_run(first)
        running_pid(second)
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BINDIR}/pg_ctl", "-D", DATA_DIR, "-m",
                        "immediate", "-w", "-l", SERVER_LOG, "restart"], check=True, capture_output=True)
        # A restart is no crash: the run is interrupted, not failed, and queued again.
        self.assertIn("server restart", ended(second, "interrupted"))
        third = next_run(second)
        os.kill(running_pid(third), signal.SIGKILL)
        self.assertIn("not queued again", ended(third))
        time.sleep(3)  # the launcher's first sweep after the restart has run
        self.assertEqual(sql(f"SELECT count(*) FROM connector.runs WHERE run_id > {third}"
                             f" AND export_id = (SELECT export_id FROM connector.runs WHERE run_id = {third})"),
                         "0")


class FairUse(unittest.TestCase):
    """Runs take turns between the roles that queued them; one role's queue is capped."""

    @classmethod
    def setUpClass(cls):
        sql("""DO $$ BEGIN
                 CREATE ROLE worker_alice LOGIN IN ROLE connector_exporter;
                 CREATE ROLE worker_bob LOGIN IN ROLE connector_exporter;
               EXCEPTION WHEN duplicate_object THEN NULL; END $$;
               SELECT fb_grant_destination('meta_worker', 'worker_alice'),
                      fb_grant_destination('meta_worker', 'worker_bob');
               CREATE OR REPLACE VIEW fair_segment AS SELECT 'fair@example.com'::text AS email;
               GRANT SELECT ON fair_segment TO worker_alice, worker_bob;""")

    def tearDown(self):
        sim("/_sim/faults", method="DELETE")
        sql("ALTER SYSTEM RESET connector.max_concurrent_runs; SELECT pg_reload_conf();")

    def queue(self, role, audience):
        return int(psql(f"SELECT fb_export_segment('fair_segment', 'meta_worker', mode => 'add',"
                        f" audience_name => '{audience}')", database=DATABASE, user=role))

    def test_another_roles_run_starts_after_one_run_of_a_long_queue(self):
        sql("ALTER SYSTEM SET connector.max_concurrent_runs = 1; SELECT pg_reload_conf();")
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 1000, "endpoint": "/{audience_id}/users"}]})
        alices = [self.queue("worker_alice", "fair alice") for _ in range(4)]
        wait_for(lambda: run(alices[0])["status"] == "running", 30, "alice's first run to start")
        bobs = self.queue("worker_bob", "fair bob")
        runs = alices + [bobs]
        wait_for(lambda: all(run(r)["status"] == "succeeded" for r in runs), 120, "every run to end")
        order = sql(f"SELECT string_agg(run_id::text, ',' ORDER BY started_at) FROM connector.runs"
                    f" WHERE run_id IN ({','.join(map(str, runs))})")
        self.assertEqual(order.split(",")[:2], [str(alices[0]), str(bobs)])

    def test_one_role_cannot_fill_the_queue(self):
        with self.assertRaises(SqlError) as raised:
            sql("BEGIN; SET connector.max_queued_runs_per_role = 3; SET ROLE worker_alice;"
                + "SELECT fb_export_segment('fair_segment', 'meta_worker', audience_name => 'capped');" * 4)
        self.assertEqual(raised.exception.sqlstate, "53400")
        self.assertIn("already has 3 export runs queued", raised.exception.message)


def running(pid):
    """Alive and not a zombie: an orphan's exit status waits for whoever adopted it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Stopping(unittest.TestCase):
    """Cancel and shutdown stop a run within seconds, even inside the segment's own
    query (a cancel cancels it, a shutdown interrupts it and queues it again);
    a dead postmaster takes every connector process with it."""

    @classmethod
    def setUpClass(cls):
        sql("CREATE OR REPLACE VIEW sleepy_segment AS SELECT email FROM people"
            " WHERE pg_sleep(0.5) IS NOT NULL")

    def tearDown(self):
        sim("/_sim/faults", method="DELETE")

    def start_sleepy_run(self, audience):
        run_id = int(sql(f"SELECT fb_export_segment('sleepy_segment', 'meta_worker', mode => 'add',"
                         f" audience_name => '{audience}')"))
        wait_for(lambda: run(run_id)["status"] == "running", 60, "the run to start reading")
        time.sleep(1)  # well inside the segment's query: 1,000 rows a fetch, 0.5 s a row
        return run_id

    def test_cancel_stops_a_run_inside_the_segments_query_within_5_s(self):
        run_id = self.start_sleepy_run("sleepy cancelled")
        started = time.monotonic()
        self.assertEqual(sql(f"SELECT fb_cancel_export({run_id})"), "t")
        wait_for(lambda: run(run_id)["status"] == "cancelled", 5, "the run to be cancelled")
        self.assertLess(time.monotonic() - started, 5)

    def test_a_fast_shutdown_is_not_held_up_by_a_run(self):
        run_id = self.start_sleepy_run("sleepy shutdown")
        started = time.monotonic()
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BINDIR}/pg_ctl", "-D", DATA_DIR, "-m", "fast",
                        "-w", "-t", "30", "stop"], check=True, capture_output=True)
        stopped = time.monotonic() - started
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BINDIR}/pg_ctl", "-D", DATA_DIR, "-w",
                        "-l", SERVER_LOG, "start"], check=True, capture_output=True)
        wait_for_server()
        self.assertLess(stopped, 5)
        # A shutdown is not a cancel: the run is interrupted and queued again.
        self.assertEqual(run(run_id)["status"], "interrupted")
        again = sql(f"SELECT run_id FROM connector.runs WHERE run_id > {run_id} AND export_id ="
                    f" (SELECT export_id FROM connector.runs WHERE run_id = {run_id})")
        self.assertEqual(run(run_id)["error"], f"interrupted by a server shutdown; queued again as run {again}")
        wait_for(lambda: run(again)["status"] == "running", 60, "the run queued again to start after the restart")
        self.assertEqual(sql(f"SELECT fb_cancel_export({again})"), "t")
        wait_for(lambda: run(again)["status"] == "cancelled", 10, "the run queued again to be cancelled")

    def test_a_waited_call_cancelled_cancels_its_run(self):
        call = subprocess.Popen(
            ["psql", "-X", "-q", "-At", "-d", DATABASE, "-c",
             "SET statement_timeout = '3s'; SELECT fb_export_segment('sleepy_segment', 'meta_worker',"
             " mode => 'add', audience_name => 'sleepy waited', wait => true)"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = call.communicate(timeout=60)
        self.assertIn("statement timeout", err)
        run_id = sql("SELECT max(r.run_id) FROM connector.runs r JOIN connector.exports e USING (export_id)"
                     " WHERE e.audience_name = 'sleepy waited'")
        wait_for(lambda: run(run_id)["status"] == "cancelled", 10, "the waited run to be cancelled")
        self.assertEqual(sql(f"SELECT count(*) FROM connector.runs r JOIN connector.exports e USING (export_id)"
                             f" WHERE e.audience_name = 'sleepy waited' AND r.status = 'queued'"), "0")

    def test_every_connector_process_exits_within_2_s_of_the_postmaster_dying(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 3000, "endpoint": "/{audience_id}/users"}]})
        run_id = int(sql("SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'add',"
                         " audience_name => 'orphaned')"))
        wait_for(lambda: sim("/_sim/stats")["in_flight"] > 0 and run(run_id)["status"] == "running", 60,
                 "an upload in flight")
        pids = [int(pid) for pid in sql("SELECT pid FROM pg_stat_activity"
                                        " WHERE backend_type LIKE 'connector%'").split()]
        self.assertTrue(pids)
        with open(os.path.join(DATA_DIR, "postmaster.pid")) as pid_file:
            postmaster = int(pid_file.readline())
        os.kill(postmaster, signal.SIGKILL)
        started = time.monotonic()
        while any(running(pid) for pid in pids) and time.monotonic() - started < 10:
            time.sleep(0.05)
        gone_after = time.monotonic() - started
        sim("/_sim/faults", method="DELETE")
        # The other children of the dead postmaster leave on their own; then start again.
        wait_for(lambda: subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BINDIR}/pg_ctl", "-D",
                                         DATA_DIR, "-w", "-l", SERVER_LOG, "start"],
                                        capture_output=True).returncode == 0, 30, "the server to start again")
        wait_for_server()
        self.assertLess(gone_after, 2, f"connector processes lived {gone_after:.1f} s past the postmaster")
        wait_for(lambda: run(run_id)["status"] == "interrupted", 60, "the interrupted run to be recovered")
        self.assertIn("server restart", run(run_id)["error"])
        retry = int(wait_for(lambda: sql(f"SELECT max(run_id) FROM connector.runs WHERE run_id > {run_id}"
                                         f" AND export_id = (SELECT export_id FROM connector.runs"
                                         f" WHERE run_id = {run_id})"), 60, "the run to be queued again"))
        wait_for(lambda: run(retry)["status"] == "succeeded", 90, "the queued run to succeed")
        audience_holds_exactly(self, sql(f"SELECT audience_id FROM connector.runs WHERE run_id = {retry}"),
                               "worker_segment")


class DropDatabase(unittest.TestCase):
    def test_connector_never_holds_a_database_open(self):
        subprocess.run(["createdb", "connector_dropped"], check=True)
        psql(f"CREATE EXTENSION connector;"
             f"SELECT fb_create_destination('d', '{ACCOUNT}', '{TOKEN}', consent => true);"
             "CREATE VIEW s AS SELECT 'drop@example.com'::text AS email;"
             "SELECT fb_export_segment('s', 'd', mode => 'add', wait => true);",
             database="connector_dropped")
        started = time.monotonic()
        subprocess.run(["dropdb", "connector_dropped"], check=True)
        self.assertLess(time.monotonic() - started, 4)  # PostgreSQL waits 5 s for others to leave


class PgCron(unittest.TestCase):
    def test_a_scheduled_export_runs(self):
        sql("CREATE EXTENSION IF NOT EXISTS pg_cron;"
            "SELECT cron.schedule('connector-every-minute', '* * * * *',"
            " $$SELECT fb_export_segment('worker_segment', 'meta_worker', mode => 'mirror',"
            " audience_name => 'scheduled')$$);")
        try:
            run_id = wait_for(lambda: sql("SELECT max(r.run_id) FROM connector.runs r JOIN connector.exports e"
                                          " USING (export_id) WHERE e.audience_name = 'scheduled'"),
                              130, "pg_cron to queue the export")
            wait_for(lambda: run(run_id)["status"] == "succeeded", 60, "the scheduled run to succeed")
            self.assertEqual(run(run_id)["rows_sent"], "30000")
        finally:
            sql("SELECT cron.unschedule('connector-every-minute');")


if __name__ == "__main__":
    unittest.main()
