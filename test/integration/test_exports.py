"""fb_export_segment against a real server and the Graph API simulator: the
audience ends up holding exactly what the segment should produce (computed in
SQL with fb_hash), batches carry Meta's session fields, errors before sending
send nothing, and throttling, 5xx and expired tokens do what they should."""

import json
import subprocess
import unittest

from support import SqlError, add_sim_token, psql, sim

DATABASE = "connector_exports"
TOKEN = "EAAintegrationExportToken01"
ACCOUNT = "act_1000"  # from test/fixtures/regress_graph_sim.json

# The audience a segment should produce: exactly the rows with a valid key
# identifier, each cell hashed by fb_hash as the export must have done.
EXPECTED = """
SELECT json_build_object(
    'schema', json_build_array('EMAIL', 'PHONE', 'FN'),
    'data', coalesce(json_agg(json_build_array(coalesce(fb_hash('EMAIL', email), ''),
                                               coalesce(fb_hash('PHONE', phone), ''),
                                               coalesce(fb_hash('FN', first_name), ''))), '[]'))
FROM {view}
WHERE fb_hash('EMAIL', email) IS NOT NULL OR fb_hash('PHONE', phone) IS NOT NULL
"""


def sql(statement):
    return psql(statement, database=DATABASE, timeout=300)


def export(view, **arguments):
    options = "".join(f", {name} => {value}" for name, value in arguments.items())
    return int(sql("SET connector.retry_base_delay = '20ms';"
                   f"SELECT fb_export_segment('{view}', 'meta_main'{options}, wait => true);"))


def run_row(run_id):
    columns = "status, rows_read, rows_skipped, rows_sent, batches, retries, audience_id, error, sqlstate"
    values = sql(f"SELECT {columns} FROM fb_export_runs WHERE run_id = {run_id}").split("|")
    return dict(zip([c.strip() for c in columns.split(",")], values))


def audience_holds_exactly(test, audience_id, view):
    expected = sql(EXPECTED.format(view=view))
    import json
    answer = sim(f"/_sim/audiences/{audience_id}/compare", json.loads(expected))
    test.assertTrue(answer["equal"], f"audience {audience_id} differs from {view}: {answer}")
    return answer


def setUpModule():
    subprocess.run(["dropdb", "--if-exists", DATABASE], check=True)
    subprocess.run(["createdb", DATABASE], check=True)
    add_sim_token(TOKEN)
    sql(f"""
        CREATE EXTENSION connector;
        SELECT fb_create_destination('meta_main', '{ACCOUNT}', '{TOKEN}', consent => true);
        CREATE TABLE customers AS
        SELECT i AS id,
               CASE WHEN i % 7 = 0 THEN 'not an address' ELSE format('Customer.%s@Example.com', i) END AS email,
               CASE WHEN i % 5 = 0 THEN NULL ELSE '+1 650 555 ' || lpad((i % 10000)::text, 4, '0') END AS phone,
               (ARRAY['Mary', 'Jörg', 'Valéry', NULL])[i % 4 + 1] AS first_name,
               i % 3 = 0 AS vip
        FROM generate_series(1, 25001) AS i;
        CREATE VIEW everyone AS SELECT email, phone, first_name FROM customers;
        CREATE VIEW vip_customers AS SELECT email, phone, first_name FROM customers WHERE vip;
        CREATE VIEW small_segment AS SELECT email, phone, first_name FROM customers WHERE id <= 300;
    """)


def tearDownModule():
    subprocess.run(["dropdb", "--if-exists", DATABASE], check=True)


class AddMode(unittest.TestCase):
    def test_audience_holds_exactly_the_segment(self):
        run_id = export("vip_customers", mode="'add'", audience_name="'add mode'")
        run = run_row(run_id)
        self.assertEqual(run["status"], "succeeded", run)
        self.assertEqual(int(run["rows_read"]), 8333)
        skipped = sql("SELECT count(*) FROM vip_customers WHERE fb_hash('EMAIL', email) IS NULL"
                      " AND fb_hash('PHONE', phone) IS NULL")
        self.assertEqual(int(run["rows_sent"]), 8333 - int(skipped))
        # Each skipped row has an address that is not one and no phone: the
        # reason says the value was invalid, not missing.
        self.assertEqual(json.loads(run["rows_skipped"]), {"invalid_email": int(skipped)})
        audience_holds_exactly(self, run["audience_id"], "vip_customers")
        # The payload travels in the body, the token in a header: never in a URL.
        stats = sim("/_sim/stats")
        self.assertEqual(stats["payload_in_query_requests"], 0)
        self.assertEqual(stats["token_in_query_requests"], 0)
        self.assertEqual(stats["empty_hash_cells"], 0)

    def test_the_same_audience_is_reused_by_name(self):
        first = run_row(export("small_segment", mode="'add'", audience_name="'reused'"))
        second = run_row(export("small_segment", mode="'add'", audience_name="'reused'"))
        self.assertEqual(first["audience_id"], second["audience_id"])
        saved = sql("SELECT count(*) FROM fb_exports WHERE audience_name = 'reused'")
        self.assertEqual(saved, "1")


class PhonesWithCountries(unittest.TestCase):
    """A national number is read with the row's COUNTRY, never guessed at when
    that country is unknown; what is sent is what fb_hash_phone shows."""

    def test_unknown_country_skips_the_row_and_sql_shows_what_is_sent(self):
        sql("""
            CREATE TABLE phone_rows (phone text, country text);
            INSERT INTO phone_rows VALUES
                ('604 123 456', 'ES'), ('+34 604 123 457', 'Atlantis'), ('020 7946 0958', 'GB'),
                ('604 123 458', 'Atlantis'), (NULL, 'ES'), ('12', 'ES'), ('+1 650 555 1212', NULL);
            CREATE VIEW phone_segment AS SELECT phone, country FROM phone_rows;
        """)
        run = run_row(export("phone_segment", mode="'add'", audience_name="'phones'",
                             key_identifier="'phone'"))
        self.assertEqual(run["status"], "succeeded", run)
        self.assertEqual(int(run["rows_sent"]), 4)
        self.assertEqual(json.loads(run["rows_skipped"]),
                         {"unknown_country": 1, "no_phone": 1, "invalid_phone": 1}, run)
        expected = json.loads(sql("""
            SELECT json_build_object(
                'schema', json_build_array('PHONE', 'COUNTRY'),
                'data', json_agg(json_build_array(fb_hash_phone(phone, country),
                                                  coalesce(fb_hash('COUNTRY', country), ''))))
            FROM phone_rows WHERE fb_hash_phone(phone, country) IS NOT NULL"""))
        self.assertEqual(len(expected["data"]), 4)
        answer = sim(f"/_sim/audiences/{run['audience_id']}/compare", expected)
        self.assertTrue(answer["equal"], answer)


class DatesOfBirth(unittest.TestCase):
    """connector.date_order (captured with the run) and a column's own
    date_order decide how 04/01/1950 is read; what is sent is what
    fb_normalize_dob shows for that order."""

    def sent_birth_days(self, audience_id):
        expected = {}
        for order in ("MDY", "DMY"):
            expected[order] = json.loads(sql(f"""
                SELECT json_build_object(
                    'schema', json_build_array('EMAIL', 'DOBY', 'DOBM', 'DOBD'),
                    'data', json_agg(json_build_array(
                        fb_hash('EMAIL', email),
                        fb_hash('DOBY', substr(fb_normalize_dob(born, '{order}'), 1, 4)),
                        fb_hash('DOBM', substr(fb_normalize_dob(born, '{order}'), 5, 2)),
                        fb_hash('DOBD', substr(fb_normalize_dob(born, '{order}'), 7, 2)))))
                FROM birthdays"""))
        return {order: sim(f"/_sim/audiences/{audience_id}/compare", body)["equal"]
                for order, body in expected.items()}

    def test_the_order_of_the_run_and_of_the_column(self):
        sql("""
            CREATE TABLE birthdays (email text, born text);
            INSERT INTO birthdays VALUES ('anna@example.com', '04/01/1950'),
                                         ('ben@example.com', '11/02/1985'),
                                         ('carl@example.com', '1990-07-03');
            CREATE VIEW birthday_segment AS SELECT email, born AS date_of_birth FROM birthdays;
        """)
        month_first = run_row(export("birthday_segment", mode="'add'", audience_name="'mdy'"))
        self.assertEqual(self.sent_birth_days(month_first["audience_id"]),
                         {"MDY": True, "DMY": False})
        day_first = run_row(int(sql(
            "SET connector.date_order = 'DMY';"
            "SELECT fb_export_segment('birthday_segment', 'meta_main', mode => 'add',"
            " audience_name => 'dmy', wait => true);")))
        self.assertEqual(day_first["status"], "succeeded", day_first)
        self.assertEqual(self.sent_birth_days(day_first["audience_id"]),
                         {"MDY": False, "DMY": True})
        # The column's own order wins over the session's.
        own = run_row(int(sql(
            "SET connector.date_order = 'DMY';"
            "SELECT fb_export_segment('birthday_segment', 'meta_main', mode => 'add',"
            " audience_name => 'own order', wait => true, mapping =>"
            " '{\"EMAIL\": \"email\", \"DOB\": {\"column\": \"date_of_birth\", \"date_order\": \"MDY\"}}');")))
        self.assertEqual(self.sent_birth_days(own["audience_id"]), {"MDY": True, "DMY": False})
        with self.assertRaises(SqlError) as raised:
            sql("SELECT fb_export_segment('birthday_segment', 'meta_main', mapping =>"
                " '{\"EMAIL\": \"email\", \"DOB\": {\"column\": \"date_of_birth\", \"date_order\": \"YMD\"}}');")
        self.assertEqual(raised.exception.sqlstate, "22023")


class ReplaceMode(unittest.TestCase):
    def test_25001_rows_in_three_batches_with_session_fields(self):
        run_id = export("everyone", mode="'replace'", audience_name="'replace mode'")
        run = run_row(run_id)
        self.assertEqual(run["status"], "succeeded", run)
        self.assertEqual(run["batches"], "3")
        sessions = sim(f"/_sim/sessions?audience_id={run['audience_id']}")["sessions"]
        replace = [s for s in sessions if s["kind"] == "replace"]
        self.assertEqual(len(replace), 1)
        batches = replace[0]["batches"]
        self.assertEqual([b["batch_seq"] for b in batches], [1, 2, 3])
        self.assertEqual([b["last_batch_flag"] for b in batches], [False, False, True])
        self.assertEqual(sum(b["rows"] for b in batches), int(run["rows_sent"]))
        self.assertEqual(max(b["rows"] for b in batches), 10000)
        audience_holds_exactly(self, run["audience_id"], "everyone")

    def test_a_second_replace_leaves_exactly_the_new_segment(self):
        export("everyone", mode="'replace'", audience_name="'shrinking'")
        run = run_row(export("vip_customers", mode="'replace'", audience_name="'shrinking'"))
        self.assertEqual(run["status"], "succeeded", run)
        audience_holds_exactly(self, run["audience_id"], "vip_customers")


def peak_worker_memory_kb(statement):
    """Runs statement (an export with wait => true) and samples the export
    worker's peak private memory (RssAnon: shared buffers it touches are not
    its own) until it ends."""
    import threading
    import time
    done = threading.Event()
    failure = []

    def run():
        try:
            sql(statement)
        except Exception as error:  # reported by the caller
            failure.append(error)
        finally:
            done.set()

    threading.Thread(target=run).start()
    peak = 0
    while not done.is_set():
        pids = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'connector export'").split()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("RssAnon:"):
                            peak = max(peak, int(line.split()[1]))
            except OSError:
                pass
        time.sleep(0.05)
    if failure:
        raise failure[0]
    return peak


class Memory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sql("""CREATE TABLE sized AS SELECT i, format('sized%s@example.com', i) AS email,
                      format('+44 20 7946 %s', lpad((i % 10000)::text, 4, '0')) AS phone,
                      'Ann'::text AS first_name FROM generate_series(1, 200000) AS i;
               CREATE VIEW sized_small AS SELECT email, phone, first_name FROM sized WHERE i <= 20000;
               CREATE VIEW sized_large AS SELECT email, phone, first_name FROM sized;""")

    def test_the_exporting_process_does_not_grow_with_the_segment(self):
        # Latency keeps each run going long enough to be sampled, on a busy machine too.
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 300}]})
        try:
            small = peak_worker_memory_kb("SELECT fb_export_segment('sized_small', 'meta_main', mode => 'add',"
                                          " audience_name => 'memory', wait => true)")
            large = peak_worker_memory_kb("SELECT fb_export_segment('sized_large', 'meta_main', mode => 'add',"
                                          " audience_name => 'memory', wait => true)")
        finally:
            sim("/_sim/faults", method="DELETE")
        self.assertGreater(small, 0)
        # Ten times the rows; the memory is the batches in flight, not the segment.
        self.assertLess(large, small + 30 * 1024, f"20,000 rows: {small} kB, 200,000 rows: {large} kB")

    def test_mirror_and_replace_runs_do_not_grow_with_the_segment_either(self):
        # They sort the segment and write the ledger besides sending.
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 300}]})
        try:
            for mode in ("mirror", "replace"):
                with self.subTest(mode=mode):
                    small, large = (peak_worker_memory_kb(
                        f"SELECT fb_export_segment('{view}', 'meta_main', mode => '{mode}',"
                        f" audience_name => 'memory {mode} {view}', wait => true)")
                        for view in ("sized_small", "sized_large"))
                    self.assertGreater(small, 0)
                    self.assertLess(large, small + 30 * 1024,
                                    f"{mode}: 20,000 rows: {small} kB, 200,000 rows: {large} kB")
        finally:
            sim("/_sim/faults", method="DELETE")


class HostileValues(unittest.TestCase):
    def test_huge_values_are_skipped_without_ever_being_held(self):
        sql("""CREATE VIEW huge_values AS
               SELECT CASE WHEN i <= 300 THEN repeat('x', 2000000) || i || '@example.com'
                           ELSE format('fine%s@example.com', i) END AS email,
                      NULL::text AS phone, NULL::text AS first_name
               FROM generate_series(1, 1300) AS i;""")
        peak = peak_worker_memory_kb("SELECT fb_export_segment('huge_values', 'meta_main', mode => 'add',"
                                     " audience_name => 'huge values', wait => true)")
        run = run_row(int(sql("SELECT max(run_id) FROM connector.runs")))
        self.assertEqual(run["status"], "succeeded", run)
        self.assertEqual((run["rows_read"], run["rows_sent"]), ("1300", "1000"))
        self.assertEqual(json.loads(run["rows_skipped"]), {"value_too_long": 300})
        # 300 values of 2 MB read 1,000 rows at a time would be 600 MB.
        self.assertLess(peak, 150 * 1024, f"peak private memory {peak} kB")


class Latin1Database(unittest.TestCase):
    """An export from a LATIN1 database sends, for every key, what fb_hash returns there."""

    LATIN1 = "connector_latin1"

    def setUp(self):
        subprocess.run(["dropdb", "--if-exists", self.LATIN1], check=True)
        subprocess.run(["createdb", "-E", "LATIN1", "-T", "template0", "--locale=C", self.LATIN1], check=True)

    def tearDown(self):
        subprocess.run(["dropdb", "--if-exists", self.LATIN1], check=True)

    def test_accented_values_are_sent_as_fb_hash_computes_them(self):
        def latin1(statement):
            return psql("SET client_encoding = 'UTF8';" + statement, database=self.LATIN1, timeout=120)
        latin1(f"""CREATE EXTENSION connector;
                    SELECT fb_create_destination('meta_latin1', '{ACCOUNT}', '{TOKEN}', consent => true);
                    CREATE TABLE people (email text, first_name text, last_name text, city text);
                    INSERT INTO people VALUES
                      ('Jörg.Müller@Exämple.com', 'Jörg', 'Müller', 'Zürich'),
                      ('andre@example.fr', 'André', 'Lefèvre', 'Besançon'),
                      ('noel@example.es', 'Noël', 'Núñez', 'Cádiz');
                    CREATE VIEW accented AS SELECT * FROM people;""")
        run_id = int(latin1("SELECT fb_export_segment('accented', 'meta_latin1', mode => 'add', wait => true)"))
        audience = latin1(f"SELECT audience_id FROM fb_export_runs WHERE run_id = {run_id}")
        expected = latin1("""SELECT json_build_object(
            'schema', json_build_array('EMAIL', 'FN', 'LN', 'CT'),
            'data', json_agg(json_build_array(coalesce(fb_hash('EMAIL', email), ''),
                                              fb_hash('FN', first_name), fb_hash('LN', last_name),
                                              fb_hash('CT', city))))
            FROM people""")
        answer = sim(f"/_sim/audiences/{audience}/compare", json.loads(expected))
        self.assertTrue(answer["equal"], answer)
        self.assertEqual(answer["matched"], 3)
        # And fb_hash agrees across encodings: the same hash as in a UTF-8 database.
        self.assertEqual(latin1("SELECT fb_hash('FN', 'Jörg')"), psql("SELECT fb_hash('FN', 'Jörg')", database=DATABASE))


class MirrorMode(unittest.TestCase):
    def endpoint_rows(self, endpoint):
        stats = sim("/_sim/stats")["endpoints"]
        return stats.get(endpoint, {}).get("rows_received", 0)

    def test_the_next_run_sends_only_the_difference(self):
        sql("""CREATE TABLE mirror_customers AS
               SELECT i AS id, format('mirror%s@example.com', i) AS email, NULL::text AS phone,
                      'Ann'::text AS first_name
               FROM generate_series(1, 2500) AS i;
               CREATE VIEW mirrored AS SELECT email, phone, first_name FROM mirror_customers;""")
        first = run_row(export("mirrored", audience_name="'mirror mode'"))  # mirror is the default
        self.assertEqual(first["status"], "succeeded", first)
        self.assertEqual(int(first["rows_sent"]), 2500)
        audience_holds_exactly(self, first["audience_id"], "mirrored")

        # 100 new customers, 50 changed addresses, 30 gone.
        sql("""INSERT INTO mirror_customers
               SELECT i, format('mirror%s@example.com', i), NULL, 'Ann' FROM generate_series(2501, 2600) AS i;
               UPDATE mirror_customers SET email = 'changed.' || email WHERE id BETWEEN 1 AND 50;
               DELETE FROM mirror_customers WHERE id BETWEEN 101 AND 130;""")
        added_before = self.endpoint_rows("POST /{audience_id}/users")
        removed_before = self.endpoint_rows("DELETE /{audience_id}/users")
        second_id = export("mirrored", audience_name="'mirror mode'")
        second = run_row(second_id)
        self.assertEqual(second["status"], "succeeded", second)
        self.assertEqual(int(second["rows_sent"]), 150)
        # Neither normalized nor sent again: the 2,500 first rows less the 50 changed and 30 gone.
        self.assertEqual(self.rows_unchanged(second_id), 2420)
        self.assertEqual(sql(f"SELECT rows_removed FROM fb_export_runs WHERE run_id = "
                             f"(SELECT max(run_id) FROM fb_export_runs)"), "80")
        self.assertEqual(self.endpoint_rows("POST /{audience_id}/users") - added_before, 150)
        self.assertEqual(self.endpoint_rows("DELETE /{audience_id}/users") - removed_before, 80)
        audience_holds_exactly(self, second["audience_id"], "mirrored")

        third_id = export("mirrored", audience_name="'mirror mode'")
        third = run_row(third_id)
        self.assertEqual((third["status"], third["rows_sent"], third["batches"]), ("succeeded", "0", "0"))
        self.assertEqual(self.rows_unchanged(third_id), 2570)

    def rows_unchanged(self, run_id):
        return int(sql(f"SELECT rows_unchanged FROM fb_export_runs WHERE run_id = {run_id}"))

    def removed(self, run_id):
        return int(sql(f"SELECT rows_removed FROM fb_export_runs WHERE run_id = {run_id}"))

    def test_rows_that_make_one_member_are_removed_only_with_the_last_of_them(self):
        # Two rows, one member: the same address written two ways.
        sql("""CREATE TABLE twins (id int, email text);
               INSERT INTO twins VALUES (1, 'Twin@Example.com'), (2, ' twin@example.com'),
                                        (3, 'solo@example.com');
               CREATE VIEW twins_segment AS
               SELECT email, NULL::text AS phone, NULL::text AS first_name FROM twins;""")
        first = run_row(export("twins_segment", audience_name="'twins'"))
        self.assertEqual(first["status"], "succeeded", first)
        removed_before = self.endpoint_rows("DELETE /{audience_id}/users")
        sql("DELETE FROM twins WHERE id = 1")
        second = export("twins_segment", audience_name="'twins'")
        self.assertEqual((run_row(second)["status"], self.removed(second)), ("succeeded", 0))
        self.assertEqual(self.endpoint_rows("DELETE /{audience_id}/users"), removed_before)
        audience_holds_exactly(self, first["audience_id"], "twins_segment")
        sql("DELETE FROM twins WHERE id = 2")
        third = export("twins_segment", audience_name="'twins'")
        self.assertEqual((run_row(third)["status"], self.removed(third)), ("succeeded", 1))
        audience_holds_exactly(self, first["audience_id"], "twins_segment")

    def test_identical_rows_are_sent_once_and_counted_as_duplicates(self):
        sql("""CREATE TABLE repeated (email text);
               INSERT INTO repeated SELECT 'again@example.com' FROM generate_series(1, 5);
               INSERT INTO repeated VALUES ('once@example.com'), ('Once@Example.com');
               CREATE VIEW repeated_segment AS
               SELECT email, NULL::text AS phone, NULL::text AS first_name FROM repeated;""")
        for mode in ("mirror", "replace"):
            run = run_row(export("repeated_segment", mode=f"'{mode}'",
                                 audience_name=f"'repeated {mode}'"))
            self.assertEqual(run["status"], "succeeded", run)
            # Five identical rows are one; two spellings of one address are two
            # rows that make one member (Meta keeps one).
            self.assertEqual((int(run["rows_read"]), int(run["rows_sent"])), (7, 3), run)
            self.assertEqual(json.loads(run["rows_skipped"]), {"duplicate": 4}, run)

    def test_a_failed_run_leaves_a_ledger_the_next_run_corrects(self):
        sql("""CREATE TABLE flaky_mirror (id int, email text);
               INSERT INTO flaky_mirror SELECT i, format('flaky%s@example.com', i) FROM generate_series(1, 300) i;
               CREATE VIEW flaky_mirror_segment AS
               SELECT email, NULL::text AS phone, NULL::text AS first_name FROM flaky_mirror;""")
        first = run_row(export("flaky_mirror_segment", audience_name="'flaky mirror'"))
        self.assertEqual(first["status"], "succeeded", first)
        sql("""DELETE FROM flaky_mirror WHERE id <= 20;
               INSERT INTO flaky_mirror SELECT i, format('flaky%s@example.com', i) FROM generate_series(301, 330) i;""")
        # The additions go through; every removal fails.
        sim("/_sim/config", {"faults": [{"kind": "server_error", "code": 2, "method": "DELETE",
                                         "endpoint": "/{audience_id}/users"}]})
        try:
            with self.assertRaises(SqlError):
                sql("SET connector.max_retries = 1;" + "SET connector.retry_base_delay = '20ms';"
                    "SELECT fb_export_segment('flaky_mirror_segment', 'meta_main',"
                    " audience_name => 'flaky mirror', wait => true)")
        finally:
            sim("/_sim/faults", method="DELETE")
        failed = run_row(sql("SELECT max(run_id) FROM fb_export_runs"))
        self.assertEqual((failed["status"], failed["rows_sent"]), ("failed", "30"), failed)
        # The ledger is still the first run's: the next run adds the 30 again
        # (Meta takes them as no change) and removes the 20.
        third_id = export("flaky_mirror_segment", audience_name="'flaky mirror'")
        third = run_row(third_id)
        self.assertEqual((third["status"], third["rows_sent"], self.removed(third_id)),
                         ("succeeded", "30", 20), third)
        audience_holds_exactly(self, first["audience_id"], "flaky_mirror_segment")
        fourth_id = export("flaky_mirror_segment", audience_name="'flaky mirror'")
        self.assertEqual((run_row(fourth_id)["rows_sent"], self.removed(fourth_id),
                          self.rows_unchanged(fourth_id)), ("0", 0, 310))

    def test_a_stricter_key_identifier_removes_the_rows_it_no_longer_allows(self):
        sql("""CREATE TABLE contacts (id int, email text, phone text);
               INSERT INTO contacts SELECT i, CASE WHEN i <= 100 THEN format('contact%s@example.com', i) END,
                                           format('+1 650 555 %s', lpad(i::text, 4, '0'))
               FROM generate_series(1, 140) i;
               CREATE VIEW contacts_segment AS SELECT email, phone, NULL::text AS first_name FROM contacts;
               CREATE VIEW contacts_with_email AS SELECT * FROM contacts_segment WHERE email IS NOT NULL;""")
        first = run_row(export("contacts_segment", audience_name="'contacts'"))
        self.assertEqual((first["status"], first["rows_sent"]), ("succeeded", "140"), first)
        strict_id = export("contacts_segment", audience_name="'contacts'", key_identifier="'email'")
        strict = run_row(strict_id)
        # The 40 rows without an e-mail go; the others are sent once more, as the
        # configuration changed, and none of them is removed.
        self.assertEqual((strict["status"], strict["rows_sent"], self.removed(strict_id)),
                         ("succeeded", "100", 40), strict)
        audience_holds_exactly(self, first["audience_id"], "contacts_with_email")


    def test_a_run_that_would_empty_the_audience_fails_until_allowed(self):
        sql("""CREATE TABLE shrinking (id int, email text, kept boolean);
               INSERT INTO shrinking SELECT i, format('shrink%s@example.com', i), true
               FROM generate_series(1, 300) i;
               CREATE VIEW shrinking_segment AS
               SELECT email, NULL::text AS phone, NULL::text AS first_name FROM shrinking WHERE kept;""")
        first = run_row(export("shrinking_segment", audience_name="'shrinking'"))
        self.assertEqual(first["status"], "succeeded", first)
        sql("UPDATE shrinking SET kept = false")  # a broken view: it returns nothing
        removed_before = self.endpoint_rows("DELETE /{audience_id}/users")
        with self.assertRaises(SqlError) as raised:
            export("shrinking_segment", audience_name="'shrinking'")
        self.assertEqual(raised.exception.sqlstate, "UC001")
        self.assertIn("would remove 300 of the 300 members", raised.exception.message)
        self.assertEqual(self.endpoint_rows("DELETE /{audience_id}/users"), removed_before)
        # Half may go; all of it only when the caller says so, and the setting goes with the run.
        sql("UPDATE shrinking SET kept = (id % 2 = 0)")
        half = run_row(export("shrinking_segment", audience_name="'shrinking'"))
        self.assertEqual((half["status"], sql("SELECT max(rows_removed) FROM connector.runs r JOIN"
                                              " connector.exports e USING (export_id)"
                                              " WHERE e.audience_name = 'shrinking'")), ("succeeded", "150"))
        sql("UPDATE shrinking SET kept = false")
        allowed = run_row(int(sql("SET connector.mirror_max_removal = 1; SET connector.retry_base_delay = '20ms';"
                                  "SELECT fb_export_segment('shrinking_segment', 'meta_main',"
                                  " audience_name => 'shrinking', wait => true)")))
        self.assertEqual(allowed["status"], "succeeded", allowed)
        audience_holds_exactly(self, allowed["audience_id"], "shrinking_segment")

    def test_a_mirror_run_after_a_replace_starts_from_what_the_replace_made(self):
        sql("""CREATE TABLE replaced (id int, email text);
               INSERT INTO replaced SELECT i, format('replaced%s@example.com', i) FROM generate_series(1, 200) i;
               CREATE VIEW replaced_segment AS
               SELECT email, NULL::text AS phone, NULL::text AS first_name FROM replaced;""")
        self.assertEqual(run_row(export("replaced_segment", audience_name="'replaced'"))["status"], "succeeded")
        sql("DELETE FROM replaced WHERE id = 7")
        replace = run_row(export("replaced_segment", audience_name="'replaced'", mode="'replace'"))
        self.assertEqual(replace["status"], "succeeded", replace)
        sql("INSERT INTO replaced VALUES (7, 'replaced7@example.com')")
        mirror = run_row(export("replaced_segment", audience_name="'replaced'", mode="'mirror'"))
        self.assertEqual((mirror["status"], mirror["rows_sent"]), ("succeeded", "1"), mirror)
        audience_holds_exactly(self, mirror["audience_id"], "replaced_segment")


class ErrorsBeforeSending(unittest.TestCase):
    def assert_nothing_sent(self, statement, sqlstate, text):
        before = sim("/_sim/stats")["requests"]
        with self.assertRaises(SqlError) as raised:
            sql(statement)
        self.assertEqual(raised.exception.sqlstate, sqlstate, raised.exception.output)
        self.assertIn(text, raised.exception.message)
        self.assertEqual(sim("/_sim/stats")["requests"], before)

    def test_a_table_is_not_a_segment(self):
        self.assert_nothing_sent("SELECT fb_export_segment('customers', 'meta_main', mode => 'add')",
                                 "42809", "is not a view")

    def test_a_mapped_column_that_does_not_exist(self):
        self.assert_nothing_sent(
            "SELECT fb_export_segment('everyone', 'meta_main', mapping => '{\"EMAIL\": \"mail\"}',"
            " mode => 'add')", "42703", 'column "mail" mapped to EMAIL does not exist')

    def test_an_unknown_destination(self):
        self.assert_nothing_sent("SELECT fb_export_segment('everyone', 'nowhere', mode => 'add')",
                                 "42704", 'destination "nowhere" does not exist')

    def test_a_role_without_a_grant(self):
        sql("DROP ROLE IF EXISTS export_outsider; CREATE ROLE export_outsider IN ROLE connector_exporter;"
            "GRANT SELECT ON everyone TO export_outsider;")
        self.assert_nothing_sent("SET ROLE export_outsider;"
                                 "SELECT fb_export_segment('everyone', 'meta_main', mode => 'add')",
                                 "42501", 'permission denied for destination "meta_main"')

    def test_a_segment_over_the_limit_stops_the_read_and_sends_nothing(self):
        sql("CREATE SEQUENCE rows_read_counter;"
            "CREATE VIEW counted AS SELECT email, phone, first_name FROM customers"
            " WHERE nextval('rows_read_counter') > 0;")
        before = sim("/_sim/stats")["requests"]
        with self.assertRaises(SqlError) as raised:
            sql("SET connector.max_profiles_per_export = 100;"
                "SELECT fb_export_segment('counted', 'meta_main', mode => 'add',"
                " audience_name => 'over the limit', wait => true)")
        self.assertEqual(raised.exception.sqlstate, "54000")
        self.assertIn("than connector.max_profiles_per_export (100)", raised.exception.message)
        self.assertEqual(sim("/_sim/stats")["requests"], before)
        # 25,001 rows: the read stopped within the fetch that held the 101st profile.
        self.assertLessEqual(int(sql("SELECT last_value FROM rows_read_counter")), 2000)


class RunsThatSendNothing(unittest.TestCase):
    """Rows read of which none can be sent fail before any audience exists;
    an empty segment in add mode succeeds without asking Meta anything."""

    def test_every_row_skipped_is_a_failure_that_creates_no_audience(self):
        sql("""CREATE VIEW unsendable AS
               SELECT 'not an address'::text AS email, NULL::text AS phone, NULL::text AS first_name
               FROM generate_series(1, 258);""")
        before = sim("/_sim/stats")["requests"]
        with self.assertRaises(SqlError) as raised:
            export("unsendable", mode="'add'", audience_name="'never created'")
        self.assertEqual(raised.exception.sqlstate, "22000", raised.exception.output)
        self.assertIn("none of the 258 rows read from segment public.unsendable can be sent"
                      " (skipped: invalid_email 258)", raised.exception.message)
        self.assertEqual(sim("/_sim/stats")["requests"], before)
        run = run_row(int(sql("SELECT max(run_id) FROM connector.runs")))
        self.assertEqual((run["status"], run["audience_id"], run["sqlstate"]), ("failed", "", "22000"))
        self.assertEqual(json.loads(run["rows_skipped"]), {"invalid_email": 258})

    def test_an_empty_segment_adds_nothing_and_asks_meta_nothing(self):
        sql("CREATE VIEW nobody AS SELECT email, phone, first_name FROM customers WHERE false;")
        before = sim("/_sim/stats")["requests"]
        run = run_row(export("nobody", mode="'add'", audience_name="'nobody'"))
        self.assertEqual((run["status"], run["rows_read"], run["rows_sent"], run["audience_id"]),
                         ("succeeded", "0", "0", ""))
        self.assertEqual(sim("/_sim/stats")["requests"], before)


class ErrorsWhileSending(unittest.TestCase):
    def tearDown(self):
        sim("/_sim/faults", method="DELETE")

    def test_throttling_and_server_errors_are_retried_to_success(self):
        sim("/_sim/config", {"faults": [
            {"kind": "throttle", "code": 80003, "count": 2, "method": "POST",
             "endpoint": "/{audience_id}/users", "regain_minutes": 0},
            {"kind": "server_error", "code": 2, "count": 2, "method": "POST",
             "endpoint": "/{audience_id}/users"}]})
        run = run_row(export("everyone", mode="'add'", audience_name="'flaky'"))
        self.assertEqual(run["status"], "succeeded", run)
        self.assertGreaterEqual(int(run["retries"]), 4)
        audience_holds_exactly(self, run["audience_id"], "everyone")

    def test_cancelling_the_waiting_call_stops_the_run_promptly(self):
        import time
        sim("/_sim/config", {"faults": [{"kind": "latency", "ms": 5000,
                                         "endpoint": "/{audience_id}/users"}]})
        started = time.monotonic()
        with self.assertRaises(SqlError) as raised:
            sql("SET statement_timeout = '1s';"
                "SELECT fb_export_segment('small_segment', 'meta_main', mode => 'add',"
                " audience_name => 'interrupted', wait => true)")
        self.assertEqual(raised.exception.sqlstate, "57014")
        self.assertLess(time.monotonic() - started, 4)
        last = "SELECT status FROM fb_export_runs ORDER BY run_id DESC LIMIT 1"
        deadline = time.monotonic() + 10
        while sql(last) == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(sql(last), "cancelled")

    def test_an_expired_token_fails_the_run_and_marks_the_destination(self):
        sql(f"SELECT fb_create_destination('expiring', '{ACCOUNT}', 'EAAintegrationExpiring02',"
            " consent => true, verify => false)")
        sim("/_sim/config", {"tokens": [{"token": "EAAintegrationExpiring02", "user_id": "400",
                                         "scopes": ["ads_management"], "expired": True}]})
        with self.assertRaises(SqlError) as raised:
            sql("SELECT fb_export_segment('small_segment', 'expiring', mode => 'add', wait => true)")
        self.assertEqual(raised.exception.sqlstate, "28000")
        # The fix named is the token file, never a token written into SQL text.
        self.assertIn("fb_alter_destination('expiring', token_file => '/path/to/new.token')",
                      raised.exception.output)
        self.assertNotIn("access_token =>", raised.exception.output)
        self.assertEqual(sql("SELECT status FROM fb_destinations WHERE name = 'expiring'"), "needs_reauth")
        self.assertEqual(sql("SELECT status FROM fb_export_runs ORDER BY run_id DESC LIMIT 1"), "failed")


if __name__ == "__main__":
    unittest.main()
