"""The README's pg_cron recipe ("Scheduling with pg_cron"), run as written on
fresh socket-only clusters of the test's own (listen_addresses = '', a
private socket directory), against the Graph API simulator.

The blocks between the README's "<!-- pg_cron recipe: NAME -->" markers are
used verbatim; the test replaces only the job's schedule (every minute instead
of nightly: pg_cron 1.4 knows no schedules in seconds) and the socket
directory. The three clusters are prepared at once and their jobs run at the
same minute boundary, so the module takes at most a little over a minute,
half a minute on average.

  - the recipe (background workers): the job succeeds as the analyst and the
    run it queued succeeds, requested by the analyst, the audience holding
    exactly the segment; the README's checks show both;
  - the prerequisite matters: the same set-up without background workers and
    without cron.host has every run fail to connect, and nothing is queued;
  - the README's alternative (cron.host at the socket directory and a peer
    map) succeeds on a cluster whose local logins use peer authentication, as
    on Debian.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from support import PG_BINDIR, REPO, SIM_URL, add_sim_token, give_to_postgres, sim

README = os.path.join(REPO, "README.md")
DATABASE = "shop"  # the README's placeholders, used as they are: the cluster is new
ANALYST = "analyst"
README_SOCKET_DIR = "/var/run/postgresql"
TOKEN = "EAAintegrationReadmeCron01"
ACCOUNT = "act_1000"  # from test/fixtures/regress_graph_sim.json
EVERY_MINUTE = "* * * * *"
JOB_WAIT_SECONDS = 80  # the next minute boundary, and pg_cron's one-second loop
RUN_WAIT_SECONDS = 75  # connector starts a queued run at once, or at its launcher's one-minute safety net

# What the site has before the recipe starts: the analyst, connector, the
# destination (consent given) and a segment the analyst can read.
SITE = f"""
CREATE ROLE {ANALYST} LOGIN;
CREATE EXTENSION connector;
SELECT fb_create_destination('meta_main', '{ACCOUNT}', '{TOKEN}', consent => true);
CREATE TABLE customers AS
SELECT i AS id, format('cron.customer%s@example.com', i) AS email, i % 3 = 0 AS vip
FROM generate_series(1, 300) AS i;
CREATE VIEW vip_customers AS SELECT email FROM customers WHERE vip;
GRANT SELECT ON vip_customers TO {ANALYST};
"""

EXPECTED_AUDIENCE = """
SELECT json_build_object('schema', json_build_array('EMAIL'),
                         'data', json_agg(json_build_array(fb_hash('EMAIL', email))))
FROM vip_customers
"""


def recipe(name):
    """The one fenced block between the README's markers for name, verbatim."""
    with open(README, encoding="utf-8") as readme:
        text = readme.read()
    start, end = f"<!-- pg_cron recipe: {name} -->", f"<!-- /pg_cron recipe: {name} -->"
    if text.count(start) != 1 or text.count(end) != 1:
        raise AssertionError(f"README.md must hold {start} and {end} exactly once")
    between = text[text.index(start) + len(start):text.index(end)]
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", between, re.S | re.M)
    if len(blocks) != 1:
        raise AssertionError(f"README.md: one fenced block expected between {start} and {end}")
    return blocks[0]


def lines(block):
    return [line for line in block.splitlines() if line.strip()]


def setting_lines(block, name):
    return [line for line in lines(block) if re.match(rf"\s*{re.escape(name)}\s*=", line)]


def free_port():
    """A TCP port nothing listens on, on 127.0.0.1 nor ::1: where pg_cron's
    default 'localhost' would connect, so that only the missing listener makes
    it fail."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6) as probe6:
                probe6.bind(("::1", port))
        except OSError as error:
            if error.errno != 99:  # EADDRNOTAVAIL: no IPv6 loopback, nothing to collide with
                continue
        return port
    raise AssertionError("no free port")


class Cluster:
    """A throwaway cluster as scripts/lib/cluster.sh makes one: initdb and
    pg_ctl as the postgres user, Unix socket only, in a private directory that
    also holds connector's key file (outside the data directory)."""

    def __init__(self, add_cleanup, conf, hba=(), ident=(), local_auth="trust"):
        self.directory = tempfile.mkdtemp(prefix="connector-cron-")
        add_cleanup(shutil.rmtree, self.directory, ignore_errors=True)
        give_to_postgres(self.directory, 0o700)
        keys = os.path.join(self.directory, "keys")
        os.mkdir(keys)
        give_to_postgres(keys, 0o700)
        self.data = os.path.join(self.directory, "data")
        self.log = os.path.join(self.directory, "server.log")
        self.port = free_port()
        # Peer-authenticated clusters are reached as the postgres OS user, as on Debian.
        self.as_postgres = local_auth == "peer"
        self.postgres(["initdb", "-D", self.data, "-U", "postgres", f"--auth-local={local_auth}",
                       "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "-N"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf_file:
            conf_file.write("\n".join([line.replace(README_SOCKET_DIR, self.directory) for line in conf] + [
                # after the README's lines, so that they always win
                "listen_addresses = ''",
                f"port = {self.port}",
                f"unix_socket_directories = '{self.directory}'",
                "fsync = off",
                f"connector.graph_api_url = '{SIM_URL}'",
                f"connector.key_file = '{keys}/connector.key'",
            ]) + "\n")
        if hba:
            path = os.path.join(self.data, "pg_hba.conf")
            with open(path) as hba_file:
                rest = hba_file.read()
            with open(path, "w") as hba_file:  # above every line initdb wrote
                hba_file.write("\n".join(hba) + "\n" + rest)
        if ident:
            with open(os.path.join(self.data, "pg_ident.conf"), "a") as ident_file:
                ident_file.write("\n".join(ident) + "\n")
        add_cleanup(self.stop)
        self.pg_ctl("start")
        self.sql(f"CREATE DATABASE {DATABASE}", database="postgres")

    def postgres(self, command):
        completed = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PG_BINDIR, command[0])]
                                   + command[1:], capture_output=True, text=True, timeout=60, cwd="/")
        if completed.returncode != 0:
            raise AssertionError(f"{command[0]} failed: {completed.stdout}{completed.stderr}\n{self.log_tail()}")

    def pg_ctl(self, action):
        self.postgres(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "-m", "fast", action])

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(PG_BINDIR, "pg_ctl"), "-D", self.data,
                        "-m", "immediate", "-w", "-t", "30", "stop"], capture_output=True, timeout=60, cwd="/")

    def log_tail(self, count=30):
        try:
            with open(self.log) as log:
                return "server log:\n" + "".join(log.readlines()[-count:])
        except OSError:
            return "(no server log)"

    def sql(self, statements, user="postgres", database=DATABASE):
        """Runs statements in one psql session as user; returns its output, fails the test on an error."""
        command = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.directory,
                   "-p", str(self.port), "-U", user, "-d", database]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--"] + command
        completed = subprocess.run(command, input=statements, capture_output=True, text=True, timeout=60, cwd="/")
        if completed.returncode != 0:
            raise AssertionError(f"psql as {user} failed:\n{statements}\n{completed.stderr}\n{self.log_tail()}")
        return completed.stdout.strip()

    def wait_for(self, query, done, what, seconds):
        """Polls query (as the superuser) until done(its output); returns that output."""
        deadline = time.monotonic() + seconds
        output = None
        while time.monotonic() < deadline:
            output = self.sql(query)
            if done(output):
                return output
            time.sleep(0.2)
        raise AssertionError(f"timed out after {seconds} s waiting for {what}; last: {output!r}\n"
                             f"{self.log_tail()}")


def job_name():
    return re.search(r"cron\.schedule\(\s*'([^']*)'", recipe("as the analyst")).group(1)


def as_the_analyst_every_minute(block):
    """The analyst's block with the job's schedule, and nothing else, replaced."""
    scheduled, count = re.subn(r"(cron\.schedule\(\s*'[^']*'\s*,\s*)'[^']*'", rf"\1'{EVERY_MINUTE}'", block)
    if count != 1:
        raise AssertionError("the README's analyst block must call cron.schedule(name, schedule, command) once")
    return scheduled


def conf_without_background_workers(extra=()):
    """The README's postgresql.conf with its cron.use_background_workers = on
    turned off, and extra lines."""
    conf = lines(recipe("postgresql.conf"))
    switch = setting_lines(recipe("postgresql.conf"), "cron.use_background_workers")
    if len(switch) != 1 or not re.match(r"\s*cron\.use_background_workers\s*=\s*on\b", switch[0]):
        raise AssertionError("the README's postgresql.conf must set cron.use_background_workers = on, once")
    return [line for line in conf if line != switch[0]] + ["cron.use_background_workers = off"] + list(extra)


def scenarios():
    host = lines(recipe("cron.host"))
    if len(host) != 1 or len(setting_lines(recipe("cron.host"), "cron.host")) != 1 \
            or f"'{README_SOCKET_DIR}'" not in host[0]:
        raise AssertionError(f"the README's cron.host block must set cron.host = '{README_SOCKET_DIR}', alone")
    without = conf_without_background_workers()
    if setting_lines("\n".join(without), "cron.host"):
        raise AssertionError("the README's postgresql.conf must not set cron.host")
    return {
        "recipe": dict(conf=lines(recipe("postgresql.conf"))),
        "no way in": dict(conf=without),
        "cron.host": dict(conf=conf_without_background_workers(host), hba=lines(recipe("pg_hba.conf")),
                          ident=lines(recipe("pg_ident.conf")), local_auth="peer"),
    }


def prepare(add_cleanup, **cluster):
    """A cluster, the site, then the README's superuser and analyst blocks;
    returns the cluster and the id of the job the analyst scheduled."""
    cluster = Cluster(add_cleanup, **cluster)
    cluster.sql(SITE)
    cluster.sql(recipe("as a superuser"))
    add_cleanup(unschedule, cluster)
    cluster.sql(as_the_analyst_every_minute(recipe("as the analyst")), user=ANALYST)
    # The runs the job queues come after those of the block itself (the first export, by hand).
    cluster.runs_before_the_job = int(cluster.sql("SELECT coalesce(max(run_id), 0) FROM connector.runs"))
    return cluster, cluster.sql("SELECT jobid || '|' || username || '|' || database || '|' || schedule"
                                " FROM cron.job")


def unschedule(cluster):
    """As the README says to remove the job; a no-op once a test did."""
    try:
        cluster.sql(f"SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = '{job_name()}'", user=ANALYST)
    except AssertionError:
        pass  # the cluster may be gone already


class ReadmePgCronRecipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        add_sim_token(TOKEN)
        # Each scenario's failure belongs to its own test (future.result() raises it there).
        with ThreadPoolExecutor(max_workers=3) as pool:
            cls.prepared = {name: pool.submit(prepare, cls.addClassCleanup, **cluster)
                            for name, cluster in scenarios().items()}
            for future in cls.prepared.values():
                future.exception()  # all three ready before any test waits

    def first_run_of_the_job(self, scenario):
        """The scenario's cluster, its job's id, and the status and message of
        the job's first run; the job is unscheduled then, as the README says."""
        cluster, job = self.prepared[scenario].result()
        self.assertEqual(len(job.splitlines()), 1, job)
        job_id, username, database, schedule = job.split("|")
        self.assertEqual((username, database, schedule), (ANALYST, DATABASE, EVERY_MINUTE))
        outcome = cluster.wait_for(
            f"SELECT status || '|' || coalesce(return_message, '') FROM cron.job_run_details"
            f" WHERE jobid = {job_id} ORDER BY runid LIMIT 1",
            lambda output: output.split("|")[0] in ("succeeded", "failed"), "the job's first run",
            JOB_WAIT_SECONDS)
        self.assertEqual(cluster.sql(f"SELECT cron.unschedule('{job_name()}')", user=ANALYST), "t")
        status, message = outcome.split("|", 1)
        return cluster, job_id, status, message

    def assert_the_export_ran(self, cluster, job_id, status, message):
        self.assertEqual(status, "succeeded", f"job {job_id}: {message}\n{cluster.log_tail()}")
        run = cluster.wait_for(
            "SELECT run_id || '|' || status || '|' || rows_sent + rows_unchanged || '|' || requested_by || '|' || segment"
            " || '|' || coalesce(audience_id, '') || '|' || coalesce(error, '') FROM fb_export_runs"
            f" WHERE run_id > {cluster.runs_before_the_job}",
            lambda output: output != "" and output.split("|")[1] not in ("queued", "running"),
            "the queued run to end", RUN_WAIT_SECONDS)
        self.assertEqual(len(run.splitlines()), 1, run)
        # A mirror run after the first export by hand: every row sent or found unchanged.
        run_id, run_status, rows_sent, requested_by, segment, audience_id, error = run.split("|", 6)
        self.assertEqual(run_status, "succeeded", error)
        self.assertEqual(requested_by, ANALYST)
        self.assertIn("vip_customers", segment)
        self.assertEqual(rows_sent, cluster.sql("SELECT count(*) FROM vip_customers"))
        answer = sim(f"/_sim/audiences/{audience_id}/compare", json.loads(cluster.sql(EXPECTED_AUDIENCE)))
        self.assertTrue(answer["equal"], answer)
        # The README's checks, as the analyst, show both.
        checks = cluster.sql(recipe("checking"), user=ANALYST).splitlines()
        self.assertTrue(any(line.startswith(f"{job_id}|") and "|succeeded|" in line for line in checks), checks)
        self.assertTrue(any(line.startswith(f"{run_id}|succeeded|") for line in checks), checks)

    def test_the_recipe_runs_the_export_as_the_analyst_in_a_background_worker(self):
        cluster, job_id, status, message = self.first_run_of_the_job("recipe")
        self.assert_the_export_ran(cluster, job_id, status, message)
        with open(cluster.log) as log:
            self.assertNotIn(TOKEN, log.read())

    def test_without_background_workers_nor_cron_host_every_run_fails_to_connect(self):
        cluster, job_id, status, message = self.first_run_of_the_job("no way in")
        self.assertEqual((status, message), ("failed", "connection failed"), cluster.log_tail())
        self.assertEqual(cluster.sql(f"SELECT count(*) FROM fb_export_runs WHERE run_id > {cluster.runs_before_the_job}"),
                         "0")

    def test_cron_host_at_the_socket_directory_with_the_peer_map_works_too(self):
        cluster, job_id, status, message = self.first_run_of_the_job("cron.host")
        self.assert_the_export_ran(cluster, job_id, status, message)


class QueuedAtStartUp(unittest.TestCase):
    """An @reboot job queues its run while connector's launcher has its first
    sweeper going: the sweeper's end must wake the launcher, or the run waits
    for the launcher's one-minute safety net (it did: 60.1 s every time)."""

    def test_a_run_queued_at_start_up_starts_at_once(self):
        add_sim_token(TOKEN)
        cluster = Cluster(self.addCleanup, conf=lines(recipe("postgresql.conf")))
        cluster.sql(SITE)
        cluster.sql(recipe("as a superuser"))
        self.addCleanup(unschedule, cluster)
        at_reboot, count = re.subn(r"(cron\.schedule\(\s*'[^']*'\s*,\s*)'[^']*'", r"\1'@reboot'",
                                   recipe("as the analyst"))
        self.assertEqual(count, 1)
        cluster.sql(at_reboot, user=ANALYST)
        before = cluster.sql("SELECT max(run_id) FROM connector.runs")
        cluster.pg_ctl("restart")
        waited = cluster.wait_for("SELECT coalesce(extract(epoch FROM started_at - queued_at)::text, '')"
                                  f" FROM connector.runs WHERE run_id > {before}", lambda output: output != "",
                                  "the run queued at start-up to start", RUN_WAIT_SECONDS)
        self.assertLess(float(waited), 20, cluster.log_tail())


if __name__ == "__main__":
    unittest.main()
