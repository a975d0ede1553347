"""Destinations as a real server runs them: pg_dump, key files, TLS, the
app secret proof, cancellation, audiences deleted at Meta. Secrets used here
all start with EAAintegration so that scripts/test.sh can search the server
log for them afterwards."""

import os
import re
import subprocess
import tempfile
import textwrap
import time
import unittest

from support import (DATA_DIR, REPO, SERVER_LOG, SIM_URL, SqlError, add_sim_token, give_to_postgres,
                     psql, sim)

GOOD_TOKEN = "EAAintegrationGoodToken01"
APP_SECRET = "EAAintegrationAppSecret01"
ACCOUNT = "act_1000"  # from test/fixtures/regress_graph_sim.json


def setUpModule():
    subprocess.run(["dropdb", "--if-exists", "connector_integration"], check=True)
    subprocess.run(["createdb", "connector_integration"], check=True)
    psql("CREATE EXTENSION connector;")
    add_sim_token(GOOD_TOKEN)


def tearDownModule():
    subprocess.run(["dropdb", "--if-exists", "connector_integration"], check=True)


def create_destination(name, extra="", url=None):
    prefix = f"SET connector.graph_api_url = '{url}';\n" if url else ""
    psql(prefix + f"SELECT fb_create_destination('{name}', '{ACCOUNT}', '{GOOD_TOKEN}', "
                  f"consent => true{extra});")


def token_file_of_the_server(name):
    """A file holding GOOD_TOKEN that only the server's OS user reads; its folder and path."""
    directory = tempfile.mkdtemp(prefix="connector-token-")
    path = os.path.join(directory, name)
    with open(path, "w") as token_file:
        token_file.write(GOOD_TOKEN + "\n")
    give_to_postgres(directory, 0o700)
    give_to_postgres(path, 0o600)
    return directory, path


class PgDump(unittest.TestCase):
    def test_dump_holds_the_destination_but_only_ciphertext(self):
        create_destination("dump_check")
        dump = subprocess.run(["pg_dump", "connector_integration"], capture_output=True, text=True,
                              check=True).stdout
        self.assertIn("dump_check", dump)  # the destination is backed up ...
        self.assertIn("connector.destinations", dump)
        self.assertNotIn(GOOD_TOKEN, dump)  # ... but never its token in clear
        self.assertNotIn(GOOD_TOKEN.encode().hex(), dump)


class KeyFile(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="connector-keys-")
        give_to_postgres(self.directory, 0o700)
        create_destination(f"keyed_{self._testMethodName[-20:]}")
        self.name = f"keyed_{self._testMethodName[-20:]}"

    def tearDown(self):
        psql("LOAD 'connector'; ALTER SYSTEM RESET connector.key_file; SELECT pg_reload_conf();")
        time.sleep(0.3)
        subprocess.run(["rm", "-rf", self.directory], check=True)

    def use_key_file(self, path):
        psql(f"LOAD 'connector'; ALTER SYSTEM SET connector.key_file = '{path}'; SELECT pg_reload_conf();")
        time.sleep(0.3)

    def test_the_key_file_is_created_private_and_outside_the_data_directory(self):
        path = psql("LOAD 'connector'; SHOW connector.key_file;")
        self.assertFalse(os.path.realpath(path).startswith(os.path.realpath(DATA_DIR) + "/"))
        self.assertTrue(os.path.exists(path))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(os.path.join(DATA_DIR, "connector.key")))
        with open(SERVER_LOG, errors="replace") as log:
            self.assertIn(f'created the key file "{path}"', log.read())  # never silently

    def test_wrong_key_gives_a_clear_error_not_garbage(self):
        other = os.path.join(self.directory, "other.key")
        with open(other, "w") as key:
            key.write("ab" * 32 + "\n")
        give_to_postgres(other)
        self.use_key_file(other)
        with self.assertRaises(SqlError) as raised:
            psql(f"SELECT * FROM fb_list_audiences('{self.name}');")
        self.assertEqual(raised.exception.sqlstate, "F0000")
        self.assertIn(f'cannot decrypt the access token of destination "{self.name}"',
                      raised.exception.message)

    def test_missing_key_file_is_not_silently_replaced(self):
        missing = os.path.join(self.directory, "missing.key")
        self.use_key_file(missing)
        with self.assertRaises(SqlError) as raised:
            psql(f"SELECT * FROM fb_list_audiences('{self.name}');")
        self.assertEqual(raised.exception.sqlstate, "F0000")
        self.assertIn("does not exist", raised.exception.message)
        self.assertFalse(os.path.exists(missing))

    def test_key_file_readable_by_others_is_refused(self):
        loose = os.path.join(self.directory, "loose.key")
        with open(loose, "w") as key:
            key.write("cd" * 32 + "\n")
        give_to_postgres(loose, 0o644)
        self.use_key_file(loose)
        with self.assertRaises(SqlError) as raised:
            psql(f"SELECT * FROM fb_list_audiences('{self.name}');")
        self.assertEqual(raised.exception.sqlstate, "F0000")
        self.assertIn("chmod", raised.exception.output)


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="connector-tls-")
        subprocess.run([os.path.join(REPO, "test/graph_sim/make_test_ca.sh"), cls.directory],
                       check=True, capture_output=True)
        give_to_postgres(cls.directory, 0o755)
        give_to_postgres(os.path.join(cls.directory, "ca.pem"), 0o644)
        cls.server = subprocess.Popen(
            ["python3", os.path.join(REPO, "test/graph_sim/graph_sim.py"), "--port", "0",
             "--token", GOOD_TOKEN, "--ad-account", ACCOUNT,
             "--tls-cert", os.path.join(cls.directory, "server.pem"),
             "--tls-key", os.path.join(cls.directory, "server.key")],
            stdout=subprocess.PIPE, text=True)
        port = cls.server.stdout.readline().strip().removeprefix("READY port=")
        cls.url = f"https://localhost:{port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=10)
        subprocess.run(["rm", "-rf", cls.directory], check=True)

    def test_untrusted_certificate_fails(self):
        with self.assertRaises(SqlError) as raised:
            create_destination("tls_untrusted", url=self.url)
        self.assertEqual(raised.exception.sqlstate, "08006")
        self.assertIn("TLS certificate verification failed", raised.exception.message)
        self.assertIn("connector.ca_file", raised.exception.output)

    def test_private_ca_makes_it_work(self):
        ca = os.path.join(self.directory, "ca.pem")
        psql(f"SET connector.graph_api_url = '{self.url}'; SET connector.ca_file = '{ca}';"
             f"SELECT fb_create_destination('tls_trusted', '{ACCOUNT}', '{GOOD_TOKEN}', consent => true);"
             f"SELECT count(*) FROM fb_list_audiences('tls_trusted');")

    def test_plain_http_only_to_loopback(self):
        with self.assertRaises(SqlError) as raised:
            create_destination("tls_plain", url="http://graph.example.com")
        self.assertEqual(raised.exception.sqlstate, "22023")
        self.assertIn("is not an https URL", raised.exception.message)


class AppSecretProof(unittest.TestCase):
    def setUp(self):
        sim("/_sim/config", {"settings": {"app_secret": APP_SECRET}})

    def tearDown(self):
        sim("/_sim/config", {"settings": {"app_secret": None}})

    def test_every_request_carries_the_proof(self):
        before = sim("/_sim/stats")["requests"]
        create_destination("with_secret", f", app_secret => '{APP_SECRET}'")
        psql("SELECT fb_create_audience('with_secret', 'proof check');")
        psql("SELECT count(*) FROM fb_list_audiences('with_secret');")
        self.assertGreaterEqual(sim("/_sim/stats")["requests"] - before, 5)
        shown = psql("SELECT has_app_secret FROM fb_destinations WHERE name = 'with_secret';")
        self.assertEqual(shown, "t")

    def test_without_the_secret_the_api_refuses(self):
        with self.assertRaises(SqlError):
            create_destination("without_secret")


class Cancellation(unittest.TestCase):
    def tearDown(self):
        sim("/_sim/faults", method="DELETE")

    def test_statement_timeout_stops_a_slow_request_promptly(self):
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 20000}]})
        started = time.monotonic()
        with self.assertRaises(SqlError) as raised:
            psql("SET statement_timeout = '1s';"
                 f"SELECT fb_create_destination('slow', '{ACCOUNT}', '{GOOD_TOKEN}', consent => true);")
        self.assertEqual(raised.exception.sqlstate, "57014")
        self.assertLess(time.monotonic() - started, 5)


class DropWithAudiences(unittest.TestCase):
    def test_delete_audiences_deletes_them_at_meta(self):
        create_destination("dropping")
        kept = psql("SELECT fb_create_audience('dropping', 'kept elsewhere');")
        self.assertFalse(sim(f"/_sim/audiences/{kept}").get("deleted", False))
        psql("SELECT fb_drop_destination('dropping', delete_audiences => true);")
        self.assertTrue(sim(f"/_sim/audiences/{kept}")["deleted"])

    def test_audiences_stay_by_default(self):
        create_destination("dropping_kept")
        kept = psql("SELECT fb_create_audience('dropping_kept', 'kept at meta');")
        psql("SELECT fb_drop_destination('dropping_kept');")
        self.assertFalse(sim(f"/_sim/audiences/{kept}").get("deleted", False))


class Logging(unittest.TestCase):
    def test_token_from_a_file_never_reaches_sql_text(self):
        directory, path = token_file_of_the_server("meta_main.token")
        try:
            psql(f"SELECT fb_create_destination('from_file', '{ACCOUNT}', NULL, consent => true,"
                 f" token_file => '{path}');"
                 "SELECT count(*) FROM fb_list_audiences('from_file');")
        finally:
            subprocess.run(["rm", "-rf", directory], check=True)

    def test_debug_logging_and_failed_literals_keep_secrets_out(self):
        # The most verbose server logging, and an error raised while the token
        # is a literal in the statement: neither may put the token in the log.
        psql("SET log_min_messages = debug5; SET client_min_messages = debug5;"
             "SET log_statement = 'none';"
             f"SELECT fb_create_destination('debug_logged', '{ACCOUNT}', '{GOOD_TOKEN}', consent => true);"
             "SELECT count(*) FROM fb_list_audiences('debug_logged');")
        with self.assertRaises(SqlError) as raised:
            psql(f"SELECT fb_create_destination('debug_logged', '{ACCOUNT}', '{GOOD_TOKEN}', consent => true);")
        self.assertNotIn(GOOD_TOKEN, raised.exception.output)


class TokenFileRecipe(unittest.TestCase):
    """The README's way to give a token without SQL text, run as written."""

    def readme_block(self):
        with open(os.path.join(REPO, "README.md")) as readme:
            blocks = re.findall(r"```sh\n(.*?)```", readme.read(), re.S)
        recipe = [block for block in blocks if "token_file" in block and "install -d" in block]
        self.assertEqual(len(recipe), 1, "the README has one token-file recipe")
        return textwrap.dedent(recipe[0])

    def test_the_readme_recipe_works_as_written_on_a_folder_that_does_not_exist_yet(self):
        root = tempfile.mkdtemp(prefix="connector-recipe-")
        os.chmod(root, 0o755)  # as /etc: anyone may pass through
        folder = os.path.join(root, "etc-connector")  # absent, as /etc/connector on a new server
        script = (self.readme_block().replace("/etc/connector", folder)
                  .replace("'meta_main'", "'readme_recipe'").replace("act_1234567890", ACCOUNT))
        try:
            completed = subprocess.run(["bash", "-euo", "pipefail", "-c", script],
                                       env={**os.environ, "META_TOKEN": GOOD_TOKEN,
                                            "PGDATABASE": "connector_integration"},
                                       capture_output=True, text=True, timeout=60)
            self.assertEqual(completed.returncode, 0, completed.stderr)
            self.assertEqual(os.listdir(folder), [])  # the token file is gone
            self.assertEqual(oct(os.stat(folder).st_mode & 0o777), "0o700")
            self.assertEqual(psql("SELECT status FROM fb_destinations WHERE name = 'readme_recipe'"), "ok")
            psql("SELECT count(*) FROM fb_list_audiences('readme_recipe')")
        finally:
            subprocess.run(["rm", "-rf", root], check=True)

    def test_an_admin_reads_a_token_file_only_with_pg_read_server_files(self):
        directory, path = token_file_of_the_server("admin.token")
        psql("DROP ROLE IF EXISTS recipe_admin; CREATE ROLE recipe_admin LOGIN IN ROLE connector_admin;")
        create = (f"SELECT fb_create_destination('admin_file', '{ACCOUNT}', NULL, consent => true,"
                  f" token_file => '{path}')")
        try:
            with self.assertRaises(SqlError) as raised:
                psql(create, user="recipe_admin")
            self.assertEqual(raised.exception.sqlstate, "42501")
            self.assertIn("pg_read_server_files", raised.exception.output)
            psql("GRANT pg_read_server_files TO recipe_admin;")
            psql(create, user="recipe_admin")
            self.assertEqual(psql("SELECT status FROM fb_destinations WHERE name = 'admin_file'"), "ok")
        finally:
            subprocess.run(["rm", "-rf", directory], check=True)
            psql("SELECT fb_drop_destination(name) FROM fb_destinations WHERE name = 'admin_file';"
                 "DROP OWNED BY recipe_admin; DROP ROLE recipe_admin;")


if __name__ == "__main__":
    unittest.main()
