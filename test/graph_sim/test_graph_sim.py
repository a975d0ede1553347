"""Tests of the Graph API simulator, black-box: the real program as a subprocess, real HTTP.

Run from the repository root:  python3 -m unittest discover -s test/graph_sim -v

One shared simulator serves most tests (reset before each); tests of start options, HTTPS
and logging start their own. Every process is stopped and every temporary file removed.
"""

import hashlib
import hmac
import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
GRAPH_SIM = os.path.join(HERE, "graph_sim.py")
MAKE_TEST_CA = os.path.join(HERE, "make_test_ca.sh")
TOKEN = "test-token-0123456789"
ACCOUNT = "1000000000000001"
VERSION = "v26.0"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


class SimProcess:
    """The simulator as a subprocess on a free port."""

    def __init__(self, *args, cwd=None):
        self.process = subprocess.Popen(
            [sys.executable, GRAPH_SIM, "--port", "0", "--token", TOKEN,
             "--ad-account", f"act_{ACCOUNT}", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        ready, _, _ = select.select([self.process.stdout], [], [], 10)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("READY port="):
            self.process.kill()
            raise RuntimeError(f"simulator did not start: {line!r} {self.process.stderr.read()}")
        self.ready_line = line
        self.port = int(line.strip().split("=")[1])

    def stop(self):
        """SIGTERM; returns (exit code, rest of stdout, stderr)."""
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, out, err


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.body = json.loads(raw) if raw else None
        except ValueError:
            self.body = None

    @property
    def error(self):
        return (self.body or {}).get("error")

    @property
    def code(self):
        return (self.error or {}).get("code")

    @property
    def subcode(self):
        return (self.error or {}).get("error_subcode")


class Client:
    def __init__(self, port, host="127.0.0.1", ssl_context=None):
        self.port = port
        self.host = host
        self.ssl_context = ssl_context

    def connect(self):
        if self.ssl_context is not None:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ssl_context,
                                               timeout=30)
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def send(self, method, target, body=None, headers=None, connection=None):
        own = connection is None
        connection = connection or self.connect()
        try:
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            if own:
                connection.close()

    def graph(self, method, path, params=None, json_body=None, form=None, token=TOKEN,
              token_in="header", version=VERSION, headers=None, connection=None):
        """A Graph call; object values in params and form are JSON-encoded as Graph expects."""
        headers = dict(headers or {})
        params = dict(params or {})
        if token is not None:
            if token_in == "header":
                headers["Authorization"] = f"Bearer {token}"
            elif token_in == "query":
                params["access_token"] = token
            elif token_in == "body":
                form = {**(form or {}), "access_token": token}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            body = urlencode({k: _encode_value(v) for k, v in form.items()}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        target = (f"/{version}" if version else "") + path
        if params:
            target += "?" + urlencode({k: _encode_value(v) for k, v in params.items()})
        return self.send(method, target, body, headers, connection)

    def control(self, method, path, document=None, expect=200):
        body = json.dumps(document).encode() if document is not None else None
        response = self.send(method, "/_sim/" + path, body,
                             {"Content-Type": "application/json"} if body else {})
        if expect is not None and response.status != expect:
            raise AssertionError(f"{method} /_sim/{path}: {response.status} {response.raw!r}")
        return response.body


def _encode_value(value):
    return value if isinstance(value, str) else json.dumps(value)


def setUpModule():
    global SHARED
    SHARED = SimProcess()


def tearDownModule():
    code, _, _ = SHARED.stop()
    assert code == 0, code


class SimTestCase(unittest.TestCase):
    """Talks to the shared simulator, reset to its start configuration before each test."""

    def setUp(self):
        self.client = Client(SHARED.port)
        self.client.control("POST", "reset")

    # --- helpers ----------------------------------------------------------------------

    def configure(self, **sections):
        return self.client.control("POST", "config", sections)

    def graph(self, *args, **kwargs):
        return self.client.graph(*args, **kwargs)

    def assertGraphError(self, response, code, subcode=None, status=None):
        self.assertIsNotNone(response.error, f"expected error {code}, got {response.raw!r}")
        self.assertEqual(response.code, code, response.raw)
        self.assertEqual(response.subcode, subcode, response.raw)
        if status is not None:
            self.assertEqual(response.status, status, response.raw)
        for key in ("message", "type", "fbtrace_id"):
            self.assertIn(key, response.error)

    def assertOk(self, response):
        self.assertEqual(response.status, 200, response.raw)
        return response.body

    def create_audience(self, name="segment", account=ACCOUNT, **extra):
        body = {"name": name, "subtype": "CUSTOM",
                "customer_file_source": "USER_PROVIDED_ONLY", **extra}
        return self.assertOk(self.graph("POST", f"/act_{account}/customaudiences",
                                        json_body=body))["id"]

    def upload(self, audience, schema, data, method="POST", edge="users", session=None, **kw):
        body = {"payload": {"schema": schema, "is_raw": True, "data": data}}
        if session is not None:
            body["session"] = session
        return self.graph(method, f"/{audience}/{edge}", json_body=body, **kw)

    def members(self, audience):
        return self.client.control("GET", f"audiences/{audience}")["members"]

    def member_rows(self, audience):
        return self.client.control("GET", f"audiences/{audience}/members")["rows"]

    def compare(self, audience, schema, data, **extra):
        return self.client.control("POST", f"audiences/{audience}/compare",
                                   {"schema": schema, "data": data, **extra})

    def stats(self):
        return self.client.control("GET", "stats")

    def requests_log(self):
        return self.client.control("GET", "requests")["requests"]


def emails(*names):
    return [[sha(f"{name}@example.com")] for name in names]


# =====================================================================================
class ProcessTest(unittest.TestCase):
    def test_ready_line_sigterm_and_nothing_left_behind(self):
        workdir = tempfile.mkdtemp()
        try:
            sim = SimProcess(cwd=workdir)
            self.assertRegex(sim.ready_line, r"^READY port=\d+\n$")
            self.assertEqual(Client(sim.port).control("GET", "health"), {"ok": True})
            code, out, _ = sim.stop()
            self.assertEqual(code, 0)
            self.assertEqual(out, "", "only the READY line may reach stdout")
            self.assertEqual(os.listdir(workdir), [])
        finally:
            shutil.rmtree(workdir)

    def test_sigint_stops_cleanly(self):
        sim = SimProcess()
        sim.process.send_signal(signal.SIGINT)
        self.assertEqual(sim.process.wait(timeout=10), 0)
        sim.process.stdout.close()
        sim.process.stderr.close()

    def test_listens_on_loopback_only(self):
        with open("/proc/net/tcp") as table:
            listening = [line.split()[1] for line in table.readlines()[1:]
                         if line.split()[3] == "0A"]
        self.assertIn(f"0100007F:{SHARED.port:04X}", listening)
        self.assertNotIn(f"00000000:{SHARED.port:04X}", listening)

    def test_start_options_configure_account_token_settings_and_faults(self):
        workdir = tempfile.mkdtemp()
        config = os.path.join(workdir, "config.json")
        with open(config, "w") as file:
            json.dump({"accounts": [{"id": "act_77", "name": "second"}],
                       "tokens": [{"token": "reader", "scopes": ["ads_read"]}],
                       "settings": {"audience_limit": 3}}, file)
        sim = SimProcess("--tos-not-accepted", "--replace-window-seconds", "60", "--seed", "5",
                         "--config", config, "--fault",
                         '{"kind": "server_error", "endpoint": "/me", "count": 1}')
        try:
            client = Client(sim.port)
            shown = client.control("GET", "config")
            accounts = {a["id"]: a for a in shown["accounts"]}
            self.assertFalse(accounts[ACCOUNT]["tos_accepted"])
            self.assertEqual(accounts["77"]["name"], "second")
            self.assertEqual(shown["settings"]["replace_window_seconds"], 60)
            self.assertEqual(shown["settings"]["seed"], 5)
            self.assertEqual(shown["settings"]["audience_limit"], 3)
            self.assertEqual(client.graph("GET", "/me").code, 2)          # the --fault rule
            self.assertEqual(client.graph("GET", "/me").status, 200)
            self.assertEqual(client.graph("GET", "/act_77", token="reader").status, 200)
            client.control("POST", "reset")  # back to the start configuration, rule included
            self.assertEqual(client.graph("GET", "/me").code, 2)
        finally:
            sim.stop()
            shutil.rmtree(workdir)

    def test_bad_start_configuration_fails_with_a_message(self):
        result = subprocess.run([sys.executable, GRAPH_SIM, "--fault", '{"kind": "nope"}'],
                                capture_output=True, text=True, timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertIn("fault kind", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_logs_never_show_tokens_or_app_secret(self):
        secret = "very-secret-app-secret"
        sim = SimProcess("--verbose", "--app-secret", secret)
        try:
            client = Client(sim.port)
            proof = _classic_proof(secret, TOKEN)
            client.graph("GET", "/me", params={"appsecret_proof": proof}, token_in="query")
            client.graph("GET", "/me", token="unknown-token-value", token_in="query")
            shown = json.dumps(client.control("GET", "config"))
        finally:
            code, out, err = sim.stop()
        self.assertEqual(code, 0)
        self.assertIn("GET /v26.0/me", err)
        for secret_text in (TOKEN, secret, "unknown-token-value", proof):
            self.assertNotIn(secret_text, err)
            self.assertNotIn(secret_text, shown)


def _classic_proof(secret, token):
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


# =====================================================================================
class HttpsTest(unittest.TestCase):
    def setUp(self):
        self.certs = tempfile.mkdtemp()
        subprocess.run([MAKE_TEST_CA, self.certs], check=True, timeout=60)
        self.sim = SimProcess("--tls-cert", os.path.join(self.certs, "server.pem"),
                              "--tls-key", os.path.join(self.certs, "server.key"))

    def tearDown(self):
        code, _, _ = self.sim.stop()
        shutil.rmtree(self.certs)
        self.assertEqual(code, 0)

    def test_make_test_ca_writes_exactly_three_files(self):
        self.assertEqual(sorted(os.listdir(self.certs)), ["ca.pem", "server.key", "server.pem"])

    def test_serves_https_verified_by_the_test_ca_only(self):
        trusting = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem"))
        for host in ("127.0.0.1", "localhost"):
            response = Client(self.sim.port, host, trusting).graph("GET", "/me")
            self.assertEqual(response.status, 200, host)
        untrusting = ssl.create_default_context()
        with self.assertRaises(ssl.SSLCertVerificationError):
            Client(self.sim.port, "127.0.0.1", untrusting).graph("GET", "/me")
        # the failed handshake did not hurt the server
        self.assertEqual(Client(self.sim.port, "localhost", trusting).graph("GET", "/me").status,
                         200)

    def test_paging_next_uses_https_and_the_client_host(self):
        client = Client(self.sim.port, "localhost",
                        ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem")))
        for name in ("a", "b"):
            client.graph("POST", f"/act_{ACCOUNT}/customaudiences", json_body={
                "name": name, "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"})
        page = client.graph("GET", f"/act_{ACCOUNT}/customaudiences", params={"limit": 1}).body
        self.assertTrue(page["paging"]["next"].startswith(
            f"https://localhost:{self.sim.port}/{VERSION}/act_{ACCOUNT}/customaudiences?"))


# =====================================================================================
class HttpTest(SimTestCase):
    def test_keep_alive_content_length_and_http11(self):
        connection = self.client.connect()
        try:
            sockets = set()
            for path in ("/me", "/nope", "/me/permissions"):
                response = self.graph("GET", path, connection=connection)
                sockets.add(id(connection.sock))
                self.assertEqual(int(response.headers["Content-Length"]), len(response.raw))
                self.assertNotEqual(response.headers.get("Connection"), "close")
            self.assertEqual(len(sockets), 1, "the connection was not reused")
        finally:
            connection.close()

    def test_expect_100_continue_is_answered_at_once(self):
        body = json.dumps({"name": "x", "subtype": "CUSTOM",
                           "customer_file_source": "USER_PROVIDED_ONLY"}).encode()
        with socket.create_connection(("127.0.0.1", SHARED.port), timeout=5) as raw:
            raw.sendall((f"POST /{VERSION}/act_{ACCOUNT}/customaudiences HTTP/1.1\r\n"
                         f"Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n").encode())
            raw.settimeout(0.5)  # curl would wait a whole second before sending anyway
            self.assertTrue(raw.recv(100).startswith(b"HTTP/1.1 100 Continue"))
            raw.settimeout(5)
            raw.sendall(body)
            self.assertIn(b"HTTP/1.1 200 OK", raw.recv(4096))

    def test_chunked_request_body(self):
        body = json.dumps({"name": "chunked", "subtype": "CUSTOM",
                           "customer_file_source": "USER_PROVIDED_ONLY"}).encode()
        connection = self.client.connect()
        try:
            connection.request("POST", f"/{VERSION}/act_{ACCOUNT}/customaudiences",
                               body=iter([body[:10], body[10:]]), encode_chunked=True,
                               headers={"Authorization": f"Bearer {TOKEN}",
                                        "Content-Type": "application/json"})
            response = connection.getresponse()
            self.assertEqual(response.status, 200, response.read())
        finally:
            connection.close()

    def test_version_prefix_required_and_recorded(self):
        self.assertGraphError(self.graph("GET", "/me", version=None), 100, status=400)
        self.graph("GET", "/me", version="v25.0")
        self.graph("GET", "/me", version="v25.0")
        self.graph("GET", "/me", version="v26.0")
        versions = self.stats()["versions"]
        self.assertEqual(versions["last"], "v26.0")
        self.assertEqual(versions["counts"], {"v25.0": 2, "v26.0": 1})
        self.assertEqual(self.graph("GET", "/me", version="v24.0").headers["facebook-api-version"],
                         "v24.0")

    def test_unknown_paths_and_methods(self):
        audience = self.create_audience()
        self.assertGraphError(self.graph("GET", f"/{audience}/nope"), 2500)
        self.assertGraphError(self.graph("GET", "/me/nope"), 2500)
        self.assertGraphError(self.graph("POST", f"/{audience}"), 100, 33)
        self.assertGraphError(self.graph("GET", "/99999"), 100, 33)
        self.assertGraphError(self.graph("GET", "/act_42"), 100, 33)
        self.assertGraphError(self.graph("GET", "/somename"), 100, 33)

    def test_body_must_be_json_or_form(self):
        bad = self.client.send("POST", f"/{VERSION}/act_{ACCOUNT}/customaudiences", b"name=x",
                               {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"})
        self.assertGraphError(bad, 100)
        broken = self.client.send("POST", f"/{VERSION}/act_{ACCOUNT}/customaudiences", b"{oops",
                                  {"Authorization": f"Bearer {TOKEN}",
                                   "Content-Type": "application/json"})
        self.assertGraphError(broken, 100)

    def test_usage_headers_on_every_graph_response(self):
        audience = self.create_audience()
        for response in (self.graph("GET", f"/act_{ACCOUNT}"),
                         self.graph("GET", f"/{audience}"),
                         self.upload(audience, ["EMAIL"], [["not-a-hash"], ["x"]], token="bad")):
            buc = json.loads(response.headers["X-Business-Use-Case-Usage"])
            entry = buc[ACCOUNT][0]
            self.assertEqual(entry["type"], "custom_audience")
            self.assertEqual(entry["estimated_time_to_regain_access"], 0)
            self.assertTrue(0 <= entry["call_count"] <= 100)
            account_usage = json.loads(response.headers["X-Ad-Account-Usage"])
            self.assertTrue(0 <= account_usage["acc_id_util_pct"] <= 100)
            self.assertIn("call_count", json.loads(response.headers["X-App-Usage"]))
        me = self.graph("GET", "/me")
        self.assertIn("X-App-Usage", me.headers)
        self.assertEqual(json.loads(me.headers["X-Business-Use-Case-Usage"]), {})


# =====================================================================================
class AuthTest(SimTestCase):
    def test_missing_wrong_and_expired_tokens(self):
        self.assertGraphError(self.graph("GET", "/me", token=None), 104)
        self.assertGraphError(self.graph("GET", "/me", token="wrong"), 190, 467)
        self.configure(tokens=[{"token": "old", "expired": True}])
        self.assertGraphError(self.graph("GET", "/me", token="old"), 190, 463)
        self.assertGraphError(self.graph("GET", "/me", headers={"Authorization": "Basic x"},
                                         token=None), 190, 467)

    def test_token_expires_after_n_requests(self):
        self.configure(tokens=[{"token": "short", "expires_after_requests": 2}])
        self.assertEqual(self.graph("GET", "/me", token="short").status, 200)
        self.assertEqual(self.graph("GET", f"/act_{ACCOUNT}", token="short").status, 200)
        self.assertGraphError(self.graph("GET", "/me", token="short"), 190, 463)
        debug = self.graph("GET", "/debug_token", params={"input_token": "short"}).body["data"]
        self.assertFalse(debug["is_valid"])
        self.assertEqual(debug["error"]["subcode"], 463)

    def test_token_sources_are_recorded(self):
        self.graph("GET", "/me", token_in="header")
        self.graph("GET", "/me", token_in="query")
        self.graph("POST", f"/act_{ACCOUNT}/customaudiences", token_in="body",
                   form={"name": "f", "subtype": "CUSTOM",
                         "customer_file_source": "USER_PROVIDED_ONLY"})
        log = self.requests_log()
        self.assertEqual([e["token_source"] for e in log], ["header", "query", "body"])
        self.assertEqual([e["token_in_query"] for e in log], [False, True, False])
        self.assertEqual(self.stats()["token_in_query_requests"], 1)

    def test_appsecret_proof_reference_vectors(self):
        """docs/graph-api.md §6.2: all four vectors are accepted, anything else is refused."""
        self.configure(settings={"app_secret": "dummySecret"}, time=1697328000 + 30,
                       tokens=[{"token": "ABC"}])
        stamped = {"appsecret_proof":
                   "d103874f3b5f01f57c4f84edfb96ac94055da8f83c2b45e6f26dafca9188ff4d",
                   "appsecret_time": "1697328000"}
        classic = {"appsecret_proof":
                   "b65114480019ded6a613dfeb8dcc8b3411598ba1405c65c89dc0c360c72a4732"}
        self.assertEqual(self.graph("GET", "/me", token="ABC", params=stamped).status, 200)
        self.assertEqual(self.graph("GET", "/me", token="ABC", params=classic).status, 200)
        self.assertGraphError(self.graph("GET", "/me", token="ABC"), 100)  # proof required
        upper = {**classic, "appsecret_proof": classic["appsecret_proof"].upper()}
        self.assertGraphError(self.graph("GET", "/me", token="ABC", params=upper), 100)
        wrong_time = {**stamped, "appsecret_time": "1697328001"}
        self.assertGraphError(self.graph("GET", "/me", token="ABC", params=wrong_time), 100)
        padded = {**stamped, "appsecret_time": "01697328000"}
        self.assertGraphError(self.graph("GET", "/me", token="ABC", params=padded), 100)
        self.configure(time=1697328000 + 301)  # outside the 5-minute window
        self.assertGraphError(self.graph("GET", "/me", token="ABC", params=stamped), 100)
        self.assertEqual(self.graph("GET", "/me", token="ABC", params=classic).status, 200)

        self.configure(settings={"app_secret": "appsecret-123"}, time=1700000000 - 200,
                       tokens=[{"token": "access-token-234"}])
        self.assertEqual(self.graph("GET", "/me", token="access-token-234", params={
            "appsecret_proof":
                "cdfcbc87edc90f8123cd3797a0d6f6f7eedf63d97038a15d1693d297f653d7f2"}).status, 200)
        self.assertEqual(self.graph("GET", "/me", token="access-token-234", params={
            "appsecret_proof": "24576cd34ef4671d43d4876e233b5fca8c51165f9a6e5187c1cb53e2e365d6d0",
            "appsecret_time": 1700000000}, token_in="body").status, 200)

    def test_appsecret_proof_in_a_json_body(self):
        self.configure(settings={"app_secret": "dummySecret"}, time=1697328000,
                       tokens=[{"token": "ABC"}])
        response = self.graph("POST", f"/act_{ACCOUNT}/customaudiences", token="ABC", json_body={
            "name": "n", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY",
            "appsecret_proof": "d103874f3b5f01f57c4f84edfb96ac94055da8f83c2b45e6f26dafca9188ff4d",
            "appsecret_time": 1697328000})
        self.assertEqual(response.status, 200, response.raw)

    def test_permissions_and_account_access(self):
        self.configure(tokens=[{"token": "reader", "scopes": ["ads_read"]},
                               {"token": "nothing", "scopes": []},
                               {"token": "stranger", "user_id": "999"}],
                       accounts=[{"id": ACCOUNT, "users": ["100000000000001"]}])
        self.assertEqual(self.graph("GET", f"/act_{ACCOUNT}", token="reader").status, 200)
        self.assertGraphError(self.graph("POST", f"/act_{ACCOUNT}/customaudiences", token="reader",
                                         json_body={"name": "x"}), 294, status=403)
        self.assertGraphError(self.graph("GET", f"/act_{ACCOUNT}", token="nothing"), 200,
                              status=403)
        self.assertGraphError(self.graph("GET", f"/act_{ACCOUNT}", token="stranger"), 200)
        audience = self.create_audience()
        self.assertGraphError(self.upload(audience, ["EMAIL"], emails("a"), token="reader"), 294)
        self.assertGraphError(self.graph("GET", f"/{audience}", token="stranger"), 100, 33)
        self.assertEqual(self.members(audience), 0)

    def test_me_permissions_and_debug_token(self):
        me = self.assertOk(self.graph("GET", "/me"))
        self.assertEqual(me, {"name": "Simulated System User", "id": "100000000000001"})
        granted = self.assertOk(self.graph("GET", "/me/permissions"))["data"]
        self.assertIn({"permission": "ads_management", "status": "granted"}, granted)
        data = self.assertOk(self.graph("GET", "/debug_token",
                                        params={"input_token": TOKEN}))["data"]
        self.assertTrue(data["is_valid"])
        self.assertIn("ads_management", data["scopes"])
        self.assertEqual(data["expires_at"], 0)
        unknown = self.graph("GET", "/debug_token", params={"input_token": "nope"}).body["data"]
        self.assertFalse(unknown["is_valid"])
        self.assertEqual(unknown["error"]["code"], 190)
        self.assertGraphError(self.graph("GET", "/debug_token"), 100)

    def test_debug_token_with_the_app_token(self):
        self.configure(settings={"app_id": "555", "app_secret": "s3"})
        app_token = "555|s3"
        data = self.graph("GET", "/debug_token", token=app_token, token_in="query",
                          params={"input_token": TOKEN}).body["data"]
        self.assertTrue(data["is_valid"])
        self.assertEqual(data["app_id"], "555")
        self.assertGraphError(self.graph("GET", "/me", token=app_token), 190, 467)


# =====================================================================================
class AccountAndAudienceTest(SimTestCase):
    def test_ad_account_fields_are_honoured(self):
        body = self.assertOk(self.graph("GET", f"/act_{ACCOUNT}",
                                        params={"fields": "tos_accepted"}))
        self.assertEqual(body, {"tos_accepted": {"custom_audience_tos": 1}, "id": f"act_{ACCOUNT}"})
        body = self.assertOk(self.graph("GET", f"/act_{ACCOUNT}",
                                        params={"fields": "name,account_status,tos_accepted"}))
        self.assertEqual(set(body), {"id", "name", "account_status", "tos_accepted"})
        self.assertEqual(self.graph("GET", f"/act_{ACCOUNT}").body, {"id": f"act_{ACCOUNT}"})
        self.assertGraphError(self.graph("GET", f"/act_{ACCOUNT}", params={"fields": "nope"}), 100)
        self.configure(accounts=[{"id": ACCOUNT, "tos_accepted": False}])
        body = self.graph("GET", f"/act_{ACCOUNT}", params={"fields": "tos_accepted"}).body
        self.assertNotIn("custom_audience_tos", body["tos_accepted"])

    def test_create_audience_is_strict(self):
        path = f"/act_{ACCOUNT}/customaudiences"
        good = {"name": "n", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}
        for broken in ({k: v for k, v in good.items() if k != "name"},
                       {k: v for k, v in good.items() if k != "subtype"},
                       {k: v for k, v in good.items() if k != "customer_file_source"},
                       {**good, "subtype": "LOOKALIKE"},
                       {**good, "customer_file_source": "SOMEWHERE"},
                       {**good, "customer_file_sources": "USER_PROVIDED_ONLY"},
                       {**good, "retention_days": 500}):
            with self.subTest(broken=broken):
                self.assertGraphError(self.graph("POST", path, json_body=broken), 100)
        self.assertEqual(self.client.control("GET", "audiences")["audiences"], [])
        created = self.assertOk(self.graph("POST", path, form={**good, "description": "d"}))
        fields = self.graph("GET", f"/{created['id']}",
                            params={"fields": "name,subtype,description"}).body
        self.assertEqual(fields, {"name": "n", "subtype": "CUSTOM", "description": "d",
                                  "id": created["id"]})

    def test_create_refused_without_tos(self):
        self.configure(accounts=[{"id": ACCOUNT, "tos_accepted": False}])
        response = self.graph("POST", f"/act_{ACCOUNT}/customaudiences", json_body={
            "name": "n", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"})
        self.assertGraphError(response, 200, 1870090, status=403)

    def test_audience_limit_per_account(self):
        self.configure(settings={"audience_limit": 2})
        first = self.create_audience("1")
        self.create_audience("2")
        response = self.graph("POST", f"/act_{ACCOUNT}/customaudiences", json_body={
            "name": "3", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"})
        self.assertGraphError(response, 2654)
        self.assertOk(self.graph("DELETE", f"/{first}"))
        self.create_audience("3")  # a deleted audience frees its place

    def test_default_limit_is_500(self):
        self.assertEqual(self.client.control("GET", "config")["settings"]["audience_limit"], 500)

    def test_list_audiences_pages_with_absolute_next(self):
        created = [self.create_audience(f"a{i}") for i in range(5)]
        seen = []
        page = self.assertOk(self.graph("GET", f"/act_{ACCOUNT}/customaudiences",
                                        params={"limit": 2, "fields": "name"},
                                        headers={"Host": f"localhost:{SHARED.port}"}))
        pages = 1
        while True:
            seen += page["data"]
            self.assertTrue(all(set(item) == {"id", "name"} for item in page["data"]))
            if "next" not in page["paging"]:
                break
            next_url = urlsplit(page["paging"]["next"])
            self.assertEqual((next_url.scheme, next_url.netloc),
                             ("http", f"localhost:{SHARED.port}"))
            self.assertNotIn("access_token", next_url.query)
            response = self.client.send("GET", f"{next_url.path}?{next_url.query}", None,
                                        {"Authorization": f"Bearer {TOKEN}",
                                         "Host": next_url.netloc})
            page = self.assertOk(response)
            pages += 1
        self.assertEqual([item["id"] for item in seen], created)
        self.assertEqual(pages, 3)
        only_ids = self.graph("GET", f"/act_{ACCOUNT}/customaudiences").body["data"]
        self.assertEqual(only_ids, [{"id": i} for i in created])

    def test_list_audiences_refusals(self):
        path = f"/act_{ACCOUNT}/customaudiences"
        self.assertGraphError(self.graph("GET", path, params={"limit": 5000}), 1, status=500)
        self.assertGraphError(self.graph("GET", path, params={"after": "garbage"}), 100)
        self.assertGraphError(self.graph("GET", path, params={"fields": "name,bogus"}), 100)
        self.assertGraphError(self.graph("GET", path, params={"limit": 0}), 100)

    def test_read_audience_fields_and_counts(self):
        audience = self.create_audience("counted")
        self.assertEqual(self.graph("GET", f"/{audience}").body, {"id": audience})
        fields = ("operation_status,approximate_count_lower_bound,approximate_count_upper_bound,"
                  "subtype,name,time_content_updated,delivery_status")
        before = self.graph("GET", f"/{audience}", params={"fields": fields}).body
        self.assertEqual(before["operation_status"], {"code": 200, "description": "Normal"})
        self.assertEqual(before["subtype"], "CUSTOM")
        self.assertEqual(before["delivery_status"]["code"], 300)  # empty: too small
        self.configure(time=time.time() + 100)
        self.assertOk(self.upload(audience, ["EMAIL"], emails(*map(str, range(1000)))))
        after = self.graph("GET", f"/{audience}", params={"fields": fields}).body
        self.assertLessEqual(after["approximate_count_lower_bound"], 1000)
        self.assertGreaterEqual(after["approximate_count_upper_bound"], 1000)
        self.assertLess(after["approximate_count_upper_bound"]
                        - after["approximate_count_lower_bound"], 200)
        self.assertGreaterEqual(after["time_content_updated"], before["time_content_updated"] + 99)
        self.assertEqual(after["delivery_status"]["code"], 200)
        self.assertGraphError(self.graph("GET", f"/{audience}", params={"fields": "nope"}), 100)

    def test_deleted_audience(self):
        audience = self.create_audience()
        self.assertOk(self.upload(audience, ["EMAIL"], emails("a")))
        self.assertEqual(self.assertOk(self.graph("DELETE", f"/{audience}")), {"success": True})
        self.assertGraphError(self.graph("GET", f"/{audience}"), 100, 1487366)
        self.assertGraphError(self.upload(audience, ["EMAIL"], emails("b")), 100, 1487366)
        self.assertGraphError(self.graph("DELETE", f"/{audience}"), 100, 1487366)
        listed = self.graph("GET", f"/act_{ACCOUNT}/customaudiences").body["data"]
        self.assertEqual(listed, [])


# =====================================================================================
class PayloadStrictnessTest(SimTestCase):
    def setUp(self):
        super().setUp()
        self.audience = self.create_audience()

    def test_request_errors_change_nothing(self):
        good_row = [sha("a@x.com"), sha("1555")]
        cases = {
            "unknown key": ({"schema": ["EMAIL", "PHONEY"], "data": [good_row]}, 100, None),
            "repeated key": ({"schema": ["EMAIL", "EMAIL"], "data": [good_row]}, 100, None),
            "key not a string": ({"schema": ["EMAIL", ["PHONE"]], "data": [good_row]}, 100, None),
            "short row": ({"schema": ["EMAIL", "PHONE"], "data": [good_row, good_row[:1]]},
                          100, None),
            "long row": ({"schema": ["EMAIL", "PHONE"], "data": [good_row + [""]]}, 100, None),
            "empty data": ({"schema": ["EMAIL", "PHONE"], "data": []}, 100, None),
            "no schema": ({"data": [good_row]}, 100, None),
            "no data": ({"schema": ["EMAIL", "PHONE"]}, 100, None),
            "row not a list": ({"schema": ["EMAIL", "PHONE"], "data": [good_row, "x"]}, 100, None),
            "single-key schema": ({"schema": "EMAIL_SHA256", "data": [sha("a")]}, 100, None),
            "unknown payload field": ({"schema": ["EMAIL", "PHONE"], "data": [good_row],
                                       "extra": 1}, 100, None),
            "10,001 rows": ({"schema": ["EMAIL", "PHONE"], "data": [good_row] * 10_001}, 1, 99),
        }
        for name, (payload, code, subcode) in cases.items():
            with self.subTest(name):
                response = self.graph("POST", f"/{self.audience}/users",
                                      json_body={"payload": payload})
                self.assertGraphError(response, code, subcode)
        self.assertGraphError(self.graph("POST", f"/{self.audience}/users", json_body={}), 100)
        self.assertGraphError(self.graph("POST", f"/{self.audience}/users",
                                         json_body={"payload": "not json"}), 100)
        self.assertEqual(self.members(self.audience), 0)
        self.assertEqual(self.stats()["endpoints"]["POST /{audience_id}/users"]["rows_received"], 0)

    def test_exactly_10000_rows_are_accepted(self):
        data = [[sha(str(i))] for i in range(10_000)]
        self.assertEqual(self.assertOk(self.upload(self.audience, ["EMAIL"], data))["num_received"],
                         10_000)
        self.assertEqual(self.members(self.audience), 10_000)

    def test_entry_errors_are_counted_not_added(self):
        schema = ["EMAIL", "PHONE", "MADID", "EXTERN_ID"]
        data = [
            [sha("ok1"), "", "", ""],                       # valid
            [sha("ok2").upper(), sha("p2"), "", ""],        # capitals in a hash: 1 entry
            [sha("ok3")[:63], "", "", "id3"],               # 63 characters: 1 entry
            ["plain@example.com", "", "", ""],              # unhashed email: 1 entry (row empty)
            ["", "", sha("device"), ""],                    # MADID looks hashed: 1 entry
            ["", "", "AB12CD-E345", ""],                    # MADID capitals: 1 entry
            ["", "", "ab12cd-e345", ""],                    # valid MADID
            ["", "", "", ""],                               # every value empty: 1 entry
            [EMPTY_SHA256, "", "", "id9"],                  # hash of "": 1 entry
            ["", "", "", ""],                               # another empty row: 1 entry
        ]
        body = self.assertOk(self.upload(self.audience, schema, data))
        self.assertEqual(body["num_received"], 10)
        self.assertEqual(body["num_invalid_entries"], 8)
        samples = body["invalid_entry_samples"]
        self.assertIn(sha("ok2").upper(), samples)
        self.assertIn("AB12CD-E345", samples)
        self.assertIn(EMPTY_SHA256, samples)
        self.assertNotIn("", samples)
        # members: ok1, {PHONE p2}, {EXTERN_ID id3}, valid MADID, {EXTERN_ID id9}
        self.assertEqual(self.members(self.audience), 5)
        stats = self.stats()
        self.assertEqual(stats["empty_hash_cells"], 1)
        self.assertEqual(stats["invalid_entries"], 8)
        self.assertEqual(self.requests_log()[-1]["empty_hash_cells"], 1)

    def test_hash_of_the_empty_string_alone_in_a_column(self):
        body = self.assertOk(self.upload(self.audience, ["EMAIL", "PHONE"],
                                         [[sha("a"), sha("1")], [EMPTY_SHA256, sha("2")]]))
        self.assertEqual(body["num_invalid_entries"], 1)
        self.assertEqual(body["invalid_entry_samples"], {EMPTY_SHA256: "EMAIL: SHA-256 of the "
                                                                      "empty string"})
        self.assertEqual(self.stats()["empty_hash_cells"], 1)

    def test_at_most_100_samples(self):
        data = [[f"bad-{i}"] for i in range(150)]
        body = self.assertOk(self.upload(self.audience, ["EMAIL"], data))
        self.assertEqual(body["num_invalid_entries"], 150)
        self.assertEqual(len(body["invalid_entry_samples"]), 100)
        self.assertEqual(self.members(self.audience), 0)

    def test_empty_cells_are_never_invalid(self):
        data = [[sha("x"), "", "", ""], ["", sha("1555"), "", "crm-1"]]
        schema = ["EMAIL", "PHONE", "FN", "EXTERN_ID"]
        body = self.assertOk(self.upload(self.audience, schema, data))
        self.assertEqual(body["num_invalid_entries"], 0)
        self.assertEqual(body["invalid_entry_samples"], {})

    def test_invalid_session_objects(self):
        for session in ({"session_id": "12", "batch_seq": 1},
                        {"session_id": -3, "batch_seq": 1},
                        {"session_id": 12, "batch_seq": 0},
                        {"session_id": 12},
                        {"session_id": 12, "batch_seq": 1, "last_batch_flag": "true"},
                        {"session_id": 12, "batch_seq": 1, "extra": True},
                        [12, 1]):
            with self.subTest(session=session):
                response = self.upload(self.audience, ["EMAIL"], emails("a"), session=session)
                self.assertGraphError(response, 100)
        self.assertGraphError(self.upload(self.audience, ["EMAIL"], emails("a"),
                                          edge="usersreplace"), 100)  # session required
        self.assertEqual(self.members(self.audience), 0)
        self.assertEqual(self.client.control("GET", "sessions")["sessions"], [])

    def test_parameters_from_form_query_and_method_override(self):
        payload = {"schema": ["EMAIL"], "data": emails("f1", "f2")}
        self.assertOk(self.graph("POST", f"/{self.audience}/users", form={"payload": payload}))
        self.assertEqual(self.members(self.audience), 2)
        self.assertOk(self.graph("POST", f"/{self.audience}/users",
                                 params={"payload": {"schema": ["EMAIL"], "data": emails("q")}}))
        self.assertEqual(self.members(self.audience), 3)
        removed = self.graph("POST", f"/{self.audience}/users", form={
            "method": "DELETE", "payload": {"schema": ["EMAIL"], "data": emails("f1")}})
        self.assertOk(removed)
        self.assertEqual(self.members(self.audience), 2)
        log = self.requests_log()
        self.assertEqual([e["payload_in_query"] for e in log[-3:]], [False, True, False])
        self.assertEqual(log[-1]["method"], "DELETE")
        self.assertTrue(log[-1]["method_override"])
        self.assertEqual(self.stats()["payload_in_query_requests"], 1)
        self.assertGraphError(self.graph("POST", f"/{self.audience}/users",
                                         form={"payload": "{broken"}), 100)
        self.assertGraphError(self.graph("POST", f"/{self.audience}/users", form={
            "method": "PUT", "payload": payload}), 100)
        self.assertGraphError(self.graph("POST", f"/{self.audience}/users", json_body={
            "payload": payload, "surprise": 1}), 100)

    def test_member_writes_need_tos_and_an_unflagged_audience(self):
        self.configure(accounts=[{"id": ACCOUNT, "tos_accepted": False}])
        for method, edge in (("POST", "users"), ("DELETE", "users"), ("POST", "usersreplace")):
            response = self.upload(self.audience, ["EMAIL"], emails("a"), method=method, edge=edge,
                                   session={"session_id": 5, "batch_seq": 1})
            self.assertGraphError(response, 200, 1870090, status=403)
        self.configure(accounts=[{"id": ACCOUNT, "tos_accepted": True}])
        self.client.control("POST", f"audiences/{self.audience}", {"operation_status": 471})
        self.assertGraphError(self.upload(self.audience, ["EMAIL"], emails("a")), 100, 1713230)
        self.assertEqual(self.graph("GET", f"/{self.audience}", params={
            "fields": "operation_status"}).body["operation_status"]["code"], 471)
        self.client.control("POST", f"audiences/{self.audience}", {"operation_status": None})
        self.assertOk(self.upload(self.audience, ["EMAIL"], emails("a")))

    def test_value_based_audiences_need_lookalike_value(self):
        valued = self.create_audience("valued", is_value_based=True)
        self.assertGraphError(self.upload(valued, ["EMAIL"], emails("a")), 100)
        self.assertOk(self.upload(valued, ["EMAIL", "LOOKALIKE_VALUE"], [[sha("a"), 44.5]]))
        bad = self.assertOk(self.upload(valued, ["EMAIL", "LOOKALIKE_VALUE"], [[sha("b"), -1]]))
        self.assertEqual(bad["num_invalid_entries"], 1)
        self.assertGraphError(self.upload(self.audience, ["EMAIL", "LOOKALIKE_VALUE"],
                                          [[sha("a"), 1]]), 100)

    def test_data_processing_options(self):
        schema = ["EMAIL", "DATA_PROCESSING_OPTIONS", "DATA_PROCESSING_OPTIONS_COUNTRY",
                  "DATA_PROCESSING_OPTIONS_STATE"]
        body = self.assertOk(self.upload(self.audience, schema, [
            [sha("a"), [], 0, 0], [sha("b"), ["LDU"], 1, 1000], [sha("c"), ["XYZ"], "1", 0]]))
        self.assertEqual(body["num_invalid_entries"], 2)
        self.assertEqual(self.members(self.audience), 3)


# =====================================================================================
class MembershipTest(SimTestCase):
    def setUp(self):
        super().setUp()
        self.audience = self.create_audience()

    def test_a_member_is_the_set_of_its_keys(self):
        a, p = sha("a@x.com"), sha("15551234")
        self.assertOk(self.upload(self.audience, ["EMAIL", "PHONE", "FN"], [[a, p, ""]]))
        self.assertEqual(self.member_rows(self.audience), [{"EMAIL": a, "PHONE": p}])
        # same set, other order, extra empty key: the same member
        self.assertOk(self.upload(self.audience, ["PHONE", "LN", "EMAIL"], [[p, "", a]]))
        self.assertEqual(self.members(self.audience), 1)
        # a subset is another member; removing it leaves the full one
        self.assertOk(self.upload(self.audience, ["EMAIL"], [[a]], method="DELETE"))
        self.assertEqual(self.members(self.audience), 1)
        self.assertOk(self.upload(self.audience, ["EMAIL", "PHONE"], [[a, p]], method="DELETE"))
        self.assertEqual(self.members(self.audience), 0)

    def test_removal_by_extern_id_alone(self):
        schema = ["EMAIL", "EXTERN_ID"]
        self.assertOk(self.upload(self.audience, schema, [[sha("a"), "crm-1"], [sha("b"), "crm-1"],
                                                          [sha("c"), "crm-2"], ["", "crm-3"]]))
        self.assertEqual(self.members(self.audience), 4)
        body = self.assertOk(self.upload(self.audience, ["EXTERN_ID"], [["crm-1"], ["crm-3"]],
                                         method="DELETE"))
        self.assertEqual(body["num_received"], 2)
        self.assertEqual(self.member_rows(self.audience),
                         [{"EMAIL": sha("c"), "EXTERN_ID": "crm-2"}])
        # EXTERN_ID with another key removes only that exact member
        self.assertOk(self.upload(self.audience, schema, [[sha("z"), "crm-2"]], method="DELETE"))
        self.assertEqual(self.members(self.audience), 1)

    def test_free_text_identities_survive_listing(self):
        odd = "a\x1eb\\s|c"
        self.assertOk(self.upload(self.audience, ["EXTERN_ID", "MADID"], [[odd, "x\x1ey\\"]]))
        self.assertEqual(self.member_rows(self.audience), [{"EXTERN_ID": odd, "MADID": "x\x1ey\\"}])
        self.assertOk(self.upload(self.audience, ["EXTERN_ID"], [[odd]], method="DELETE"))
        self.assertEqual(self.members(self.audience), 0)

    def test_compare_reports_missing_unexpected_and_matched(self):
        self.assertOk(self.upload(self.audience, ["EMAIL", "PHONE"],
                                  [[sha("a"), sha("1")], [sha("b"), ""], [sha("x"), ""]]))
        result = self.compare(self.audience, ["PHONE", "EMAIL", "FN"],
                              [[sha("1"), sha("a"), ""], ["", sha("b"), ""], ["", sha("c"), ""]])
        self.assertEqual((result["matched"], result["missing"], result["unexpected"]), (2, 1, 1))
        self.assertEqual(result["missing_samples"], [{"EMAIL": sha("c")}])
        self.assertEqual(result["unexpected_samples"], [{"EMAIL": sha("x")}])
        self.assertFalse(result["equal"])
        exact = self.compare(self.audience, ["EMAIL", "PHONE"],
                             [[sha("a"), sha("1")], [sha("b"), ""], [sha("x"), ""]])
        self.assertTrue(exact["equal"])
        self.assertEqual(self.compare(self.audience, ["EMAIL"], [])["unexpected"], 3)

    def test_compare_in_chunks(self):
        data = emails(*map(str, range(30)))
        self.assertOk(self.upload(self.audience, ["EMAIL"], data))
        partial = self.compare(self.audience, ["EMAIL"], data[:10], compare_id="c1", final=False)
        self.assertEqual(partial["expected_rows"], 10)
        self.compare(self.audience, ["EMAIL"], data[10:20], compare_id="c1", final=False)
        result = self.compare(self.audience, ["EMAIL"], data[20:], compare_id="c1")
        self.assertTrue(result["equal"])
        self.assertEqual(result["expected_rows"], 30)
        fresh = self.compare(self.audience, ["EMAIL"], data[:5], compare_id="c1")
        self.assertEqual(fresh["unexpected"], 25)  # the finished compare_id was forgotten

    def test_members_listing_pages_and_the_kept_rows_cap(self):
        self.configure(settings={"kept_rows_cap": 50})
        audience = self.create_audience("capped")
        data = emails(*map(str, range(40)))
        self.assertOk(self.upload(audience, ["EMAIL"], data))
        first = self.client.control("GET", f"audiences/{audience}/members?limit=15")
        self.assertEqual((first["count"], len(first["rows"]), first["next_offset"]), (40, 15, 15))
        last = self.client.control("GET", f"audiences/{audience}/members?offset=30&limit=15")
        self.assertEqual(len(last["rows"]), 10)
        self.assertNotIn("next_offset", last)
        self.assertOk(self.upload(audience, ["EMAIL"], emails(*map(str, range(40, 60)))))
        self.assertEqual(self.members(audience), 60)
        self.client.control("GET", f"audiences/{audience}/members", expect=409)
        summary = self.client.control("GET", f"audiences/{audience}")
        self.assertFalse(summary["rows_kept"])
        result = self.compare(audience, ["EMAIL"], emails(*map(str, range(61))))
        self.assertEqual((result["matched"], result["missing"], result["unexpected"]), (60, 1, 0))
        self.assertOk(self.upload(audience, ["EMAIL"], emails("0"), method="DELETE"))
        self.assertEqual(self.members(audience), 59)

    def test_inspection_lists_audiences(self):
        other = self.create_audience("other")
        self.assertOk(self.upload(other, ["EMAIL"], emails("a", "b")))
        listed = {a["id"]: a for a in self.client.control("GET", "audiences")["audiences"]}
        self.assertEqual(listed[other]["members"], 2)
        self.assertEqual(listed[self.audience]["members"], 0)
        self.assertEqual(self.client.control("GET", "audiences/999", expect=404)["error"]["type"],
                         "SimulatorControlError")


# =====================================================================================
class SessionTest(SimTestCase):
    def setUp(self):
        super().setUp()
        self.audience = self.create_audience()
        self.assertOk(self.upload(self.audience, ["EMAIL"], emails("old1", "old2")))

    def replace(self, session_id, batch_seq, names, last=False, schema=("EMAIL",)):
        data = [[sha(f"{n}@example.com")] + [""] * (len(schema) - 1) for n in names]
        return self.upload(self.audience, list(schema), data, edge="usersreplace", session={
            "session_id": session_id, "batch_seq": batch_seq, "last_batch_flag": last,
            "estimated_num_total": 4})

    def status(self):
        return self.graph("GET", f"/{self.audience}",
                          params={"fields": "operation_status"}).body["operation_status"]["code"]

    def test_replace_rules(self):
        self.assertGraphError(self.replace(9, 2, ["a"]), 2650, 1870147)      # R4: no batch 1
        self.assertEqual(self.status(), 200)
        first = self.assertOk(self.replace(9, 1, ["a", "b"]))                # R3
        self.assertEqual((first["session_id"], first["num_received"]), ("9", 2))
        self.assertEqual(self.status(), 414)
        self.assertEqual(self.members(self.audience), 2)                     # not swapped yet
        self.assertGraphError(self.upload(self.audience, ["EMAIL"], emails("x")), 2650, 1870145)
        self.assertGraphError(self.upload(self.audience, ["EMAIL"], emails("old1"),
                                          method="DELETE"), 2650, 1870145)   # R8
        self.assertGraphError(self.replace(10, 1, ["z"]), 2650, 1870145)    # one replace at a time
        self.assertEqual(self.assertOk(self.replace(9, 2, ["c"]))["num_received"], 3)
        self.assertEqual(self.assertOk(self.replace(9, 2, ["c"]))["num_received"], 4)  # dup ok
        self.assertGraphError(self.replace(9, 3, ["d"], schema=("EMAIL", "PHONE")), 100)  # R7
        last = self.assertOk(self.replace(9, 3, ["d"], last=True))
        self.assertEqual(last["num_received"], 5)
        self.assertEqual(self.status(), 200)
        self.assertTrue(self.compare(self.audience, ["EMAIL"], emails("a", "b", "c", "d"))["equal"])
        self.assertGraphError(self.replace(9, 4, ["e"]), 2650, 1870159)      # R6
        self.assertGraphError(self.replace(9, 1, ["e"]), 2650, 1870159)      # never reused
        self.assertEqual(self.members(self.audience), 4)
        edge = self.assertOk(self.graph("GET", f"/{self.audience}/sessions",
                                        params={"session_id": 9}))["data"]
        self.assertEqual(len(edge), 1)
        shown = ("session_id", "num_received", "num_invalid_entries", "num_matched", "stage")
        self.assertEqual({k: edge[0][k] for k in shown},
                         {"session_id": "9", "num_received": "5", "num_invalid_entries": "0",
                          "num_matched": "5", "stage": "finished"})
        self.assertTrue(all(isinstance(value, str) for value in edge[0].values()))
        log = self.client.control("GET", f"sessions?audience_id={self.audience}")["sessions"]
        self.assertEqual(len(log), 1)
        self.assertEqual(log[0]["outcome"], "finished")
        self.assertEqual([b["batch_seq"] for b in log[0]["batches"]], [1, 2, 2, 3, 3, 4, 1])
        self.assertEqual([b["result"] for b in log[0]["batches"]][-4:],
                         ["refused 100/None", "accepted", "refused 2650/1870159",
                          "refused 2650/1870159"])
        self.assertTrue(log[0]["batches"][4]["last_batch_flag"])

    def test_batch_one_again_restarts_the_replace(self):
        self.assertOk(self.replace(21, 1, ["a", "b", "c"]))
        again = self.assertOk(self.replace(21, 1, ["x"]))
        self.assertEqual(again["num_received"], 1)
        self.assertOk(self.replace(21, 2, ["y"], last=True))
        self.assertTrue(self.compare(self.audience, ["EMAIL"], emails("x", "y"))["equal"])
        self.assertEqual(self.client.control("GET", "sessions")["sessions"][0]["restarts"], 1)

    def test_replace_window_times_out_keeping_what_arrived(self):
        self.configure(settings={"replace_window_seconds": 1})
        self.assertOk(self.replace(31, 1, ["a", "b"]))
        self.assertOk(self.replace(31, 2, ["c"]))
        time.sleep(1.2)
        self.assertGraphError(self.replace(31, 3, ["d"], last=True), 2650, 1870158)
        self.assertGraphError(self.replace(31, 1, ["d"]), 2650, 1870158)
        self.assertTrue(self.compare(self.audience, ["EMAIL"], emails("a", "b", "c"))["equal"])
        self.assertEqual(self.status(), 200)
        self.assertEqual(self.client.control("GET", "sessions")["sessions"][0]["outcome"],
                         "timed_out")
        self.assertOk(self.upload(self.audience, ["EMAIL"], emails("late")))  # /users again

    def test_timed_out_replace_settles_when_read(self):
        self.configure(settings={"replace_window_seconds": 1})
        self.assertOk(self.replace(32, 1, ["a"]))
        self.assertEqual(self.status(), 414)
        time.sleep(1.2)
        self.assertEqual(self.status(), 200)
        self.assertEqual(self.members(self.audience), 1)

    def test_users_sessions_are_tracked(self):
        session = {"session_id": 41, "batch_seq": 1, "last_batch_flag": False}
        first = self.assertOk(self.upload(self.audience, ["EMAIL"], emails("a", "b"),
                                          session=session))
        self.assertEqual((first["session_id"], first["num_received"]), ("41", 2))
        second = self.assertOk(self.upload(self.audience, ["EMAIL"], [["bad"]], session={
            **session, "batch_seq": 2, "last_batch_flag": True}))
        self.assertEqual((second["num_received"], second["num_invalid_entries"]), (3, 1))
        edge = self.graph("GET", f"/{self.audience}/sessions", params={"session_id": "41"}).body
        self.assertEqual(edge["data"][0]["num_received"], "3")
        self.assertEqual(edge["data"][0]["num_invalid_entries"], "1")
        self.assertEqual(edge["data"][0]["stage"], "finished")
        removed = self.assertOk(self.upload(self.audience, ["EMAIL"], emails("a"), method="DELETE",
                                            session={"session_id": 42, "batch_seq": 1}))
        self.assertEqual(removed["session_id"], "42")
        everything = self.graph("GET", f"/{self.audience}/sessions").body["data"]
        self.assertEqual([s["session_id"] for s in everything], ["42", "41"])
        self.assertEqual(self.graph("GET", f"/{self.audience}/sessions",
                                    params={"session_id": 777}).body, {"data": []})
        self.assertGraphError(self.replace(41, 1, ["a"]), 100)  # that id is a /users session

    def test_deleting_the_audience_ends_its_replace(self):
        self.assertOk(self.replace(51, 1, ["a"]))
        self.assertOk(self.graph("DELETE", f"/{self.audience}"))
        self.assertEqual(self.client.control("GET", "sessions")["sessions"][0]["outcome"],
                         "audience_deleted")


# =====================================================================================
class FaultTest(SimTestCase):
    def setUp(self):
        super().setUp()
        self.audience = self.create_audience()

    def add_faults(self, *rules):
        self.configure(faults=list(rules))

    def test_throttle_next_n_requests_then_recover(self):
        self.add_faults({"kind": "throttle", "code": 80003, "count": 2, "method": "POST",
                         "endpoint": "/{audience_id}/users", "regain_minutes": 3})
        self.assertOk(self.graph("GET", f"/{self.audience}"))  # other endpoints unaffected
        for _ in range(2):
            response = self.upload(self.audience, ["EMAIL"], emails("a"))
            self.assertGraphError(response, 80003, status=429)
            self.assertTrue(response.error["is_transient"])
            usage = json.loads(response.headers["X-Business-Use-Case-Usage"])[ACCOUNT][0]
            self.assertEqual(usage["estimated_time_to_regain_access"], 3)
            self.assertEqual(usage["call_count"], 100)
        self.assertEqual(self.members(self.audience), 0)
        self.assertOk(self.upload(self.audience, ["EMAIL"], emails("a")))
        self.assertEqual(self.members(self.audience), 1)
        faults = self.client.control("GET", "faults")
        self.assertEqual(faults["injected_counts"], {"throttle": 2})
        self.assertEqual(faults["rules"][0]["count"], 0)
        self.assertEqual(self.stats()["faults_injected"], {"throttle": 2})

    def test_throttle_codes_and_their_headers(self):
        self.add_faults({"kind": "throttle", "code": 17, "subcode": 2446079, "count": 1,
                         "reset_seconds": 120},
                        {"kind": "throttle", "code": 613, "count": 1},
                        {"kind": "throttle", "code": 4, "count": 1})
        seventeen = self.graph("GET", f"/act_{ACCOUNT}")
        self.assertGraphError(seventeen, 17, 2446079, status=400)
        account_usage = json.loads(seventeen.headers["X-Ad-Account-Usage"])
        self.assertEqual((account_usage["acc_id_util_pct"], account_usage["reset_time_duration"]),
                         (100.0, 120))
        self.assertGraphError(self.graph("GET", f"/act_{ACCOUNT}"), 613)
        four = self.graph("GET", f"/act_{ACCOUNT}")
        self.assertGraphError(four, 4)
        self.assertEqual(json.loads(four.headers["X-App-Usage"])["call_count"], 100)

    def test_legacy_buc_header_name(self):
        self.configure(settings={"buc_header": "X-Business-Use-Case"})
        response = self.graph("GET", f"/act_{ACCOUNT}")
        self.assertIn("X-Business-Use-Case", response.headers)
        self.assertNotIn("X-Business-Use-Case-Usage", response.headers)
        self.configure(settings={"buc_header": "both"})
        response = self.graph("GET", f"/act_{ACCOUNT}")
        self.assertEqual(response.headers["X-Business-Use-Case"],
                         response.headers["X-Business-Use-Case-Usage"])

    def test_server_errors_change_nothing(self):
        self.add_faults({"kind": "server_error", "code": 1, "count": 1},
                        {"kind": "server_error", "code": 2, "count": 1})
        one = self.upload(self.audience, ["EMAIL"], emails("a"))
        self.assertGraphError(one, 1, status=500)
        two = self.upload(self.audience, ["EMAIL"], emails("a"))
        self.assertGraphError(two, 2, status=500)
        self.assertTrue(two.error["is_transient"])
        self.assertEqual(self.members(self.audience), 0)

    def test_html_error_page(self):
        self.add_faults({"kind": "html_error", "count": 1})
        response = self.graph("GET", "/me")
        self.assertEqual(response.status, 502)
        self.assertTrue(response.headers["Content-Type"].startswith("text/html"))
        self.assertIsNone(response.body)

    def test_drop_before_changes_nothing(self):
        self.add_faults({"kind": "drop_before", "count": 1,
                         "endpoint": "/{audience_id}/usersreplace"})
        session = {"session_id": 61, "batch_seq": 1}
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.upload(self.audience, ["EMAIL"], emails("a"), edge="usersreplace", session=session)
        self.assertEqual(self.client.control("GET", "sessions")["sessions"], [])
        self.assertEqual(self.graph("GET", f"/{self.audience}/sessions",
                                    params={"session_id": 61}).body, {"data": []})
        later = self.upload(self.audience, ["EMAIL"], emails("a"), edge="usersreplace",
                            session={**session, "batch_seq": 2})
        self.assertGraphError(later, 2650, 1870147)
        entry = [e for e in self.requests_log() if e["fault"]][0]
        self.assertEqual((entry["fault"], entry["status"]), ("drop_before", None))
        self.assertEqual(self.stats()["dropped_connections"], 1)

    def test_drop_after_applies_then_closes(self):
        self.add_faults({"kind": "drop_after", "count": 1,
                         "endpoint": "/{audience_id}/usersreplace"})
        session = {"session_id": 62, "batch_seq": 1}
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.upload(self.audience, ["EMAIL"], emails("a", "b"), edge="usersreplace",
                        session=session)
        edge = self.graph("GET", f"/{self.audience}/sessions", params={"session_id": 62}).body
        self.assertEqual(edge["data"][0]["num_received"], "2")  # batch 1 was applied
        done = self.assertOk(self.upload(
            self.audience, ["EMAIL"], emails("c"), edge="usersreplace",
            session={**session, "batch_seq": 2, "last_batch_flag": True}))
        self.assertEqual(done["num_received"], 3)
        self.assertEqual(self.members(self.audience), 3)
        replace = self.stats()["endpoints"]["POST /{audience_id}/usersreplace"]
        self.assertEqual(replace["rows_received"], 3)

    def test_latency_applies_to_the_selected_endpoint(self):
        self.add_faults({"kind": "latency", "ms": 300, "endpoint": "/me"},
                        {"kind": "latency", "ms": 0})  # only the first matching rule applies
        started = time.monotonic()
        self.assertOk(self.graph("GET", "/me"))
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        started = time.monotonic()
        self.assertOk(self.graph("GET", f"/act_{ACCOUNT}"))
        self.assertLess(time.monotonic() - started, 0.25)

    def test_max_in_flight_is_the_high_water_mark(self):
        self.add_faults({"kind": "latency", "ms": 400, "endpoint": "/me"})
        threads = [threading.Thread(target=self.client.graph, args=("GET", "/me"))
                   for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = self.stats()
        self.assertEqual(stats["max_in_flight"], 5)
        self.assertEqual(stats["in_flight"], 0)

    def _pattern(self, seed=None):
        self.client.control("POST", "reset")
        self.configure(settings={} if seed is None else {"seed": seed}, faults=[
            {"kind": "server_error", "probability": 0.5, "endpoint": "/me"},
            {"kind": "latency", "ms": 1, "jitter_ms": 5, "endpoint": "/me"}])
        return "".join("x" if self.graph("GET", "/me").error else "." for _ in range(24))

    def test_probability_faults_are_deterministic_with_a_seed(self):
        first = self._pattern(7)
        self.assertIn("x", first)
        self.assertIn(".", first)
        self.assertEqual(self._pattern(7), first)
        self.assertNotEqual(self._pattern(8), first)
        self.assertEqual(self._pattern(), self._pattern())  # the default seed, 0, after reset

    def test_fault_rules_are_validated(self):
        for rule in ({"kind": "explode"}, {"kind": "throttle", "code": 99},
                     {"kind": "server_error", "code": 3}, {"kind": "latency", "endpoint": "/users"},
                     {"kind": "drop_after", "count": 0}, {"kind": "throttle", "probability": 2},
                     {"kind": "latency", "code": 4}, {"kind": "throttle", "colour": "red"}):
            with self.subTest(rule=rule):
                self.client.control("POST", "config", {"faults": [rule]}, expect=400)
        self.assertEqual(self.client.control("GET", "faults")["rules"], [])

    def test_clearing_faults(self):
        self.add_faults({"kind": "server_error"})
        self.assertGraphError(self.graph("GET", "/me"), 2)
        self.client.control("DELETE", "faults")
        self.assertOk(self.graph("GET", "/me"))


# =====================================================================================
class ControlTest(SimTestCase):
    def test_reset_clears_state_and_counters(self):
        audience = self.create_audience()
        self.assertOk(self.upload(audience, ["EMAIL"], emails("a")))
        self.configure(faults=[{"kind": "latency", "ms": 1}],
                       accounts=[{"id": "act_5"}], settings={"replace_window_seconds": 2})
        self.client.control("POST", "reset")
        self.assertEqual(self.client.control("GET", "audiences")["audiences"], [])
        stats = self.stats()
        self.assertEqual((stats["requests"], stats["endpoints"], stats["max_in_flight"]),
                         (0, {}, 0))
        self.assertEqual(self.requests_log(), [])
        self.assertEqual(self.client.control("GET", "faults")["rules"], [])
        config = self.client.control("GET", "config")
        self.assertEqual([a["id"] for a in config["accounts"]], [ACCOUNT])
        self.assertEqual(config["settings"]["replace_window_seconds"], 5400)
        self.assertEqual(self.create_audience(), audience)  # ids restart too

    def test_config_is_all_or_nothing(self):
        for document in ({"accounts": [{"id": "act_6"}], "bogus": 1},
                         {"accounts": [{"id": "act_6"}], "settings": {"seed": "x"}},
                         {"accounts": [{"id": "act_6", "colour": 1}]},
                         {"tokens": [{"token": "t6", "scopes": "ads_management"}]},
                         {"accounts": [{"id": "act_6"}], "faults": [{"kind": "nope"}]}):
            with self.subTest(document=document):
                error = self.client.control("POST", "config", document, expect=400)
                self.assertEqual(error["error"]["type"], "SimulatorControlError")
        self.assertEqual([a["id"] for a in self.client.control("GET", "config")["accounts"]],
                         [ACCOUNT])

    def test_config_shows_fingerprints_not_secrets(self):
        self.configure(settings={"app_secret": "hush"}, tokens=[{"token": "t-secret"}])
        shown = self.client.control("GET", "config")
        self.assertNotIn("hush", json.dumps(shown))
        self.assertNotIn("t-secret", json.dumps(shown))
        self.assertTrue(shown["settings"]["app_secret"].startswith("sha256:"))

    def test_request_log_is_bounded_and_counts_per_endpoint(self):
        self.configure(settings={"request_log_size": 5})
        for _ in range(8):
            self.graph("GET", "/me")
        self.graph("GET", "/me", token="bad")
        self.assertEqual(len(self.requests_log()), 5)
        self.assertEqual(len(self.client.control("GET", "requests?limit=2")["requests"]), 2)
        me = self.stats()["endpoints"]["GET /me"]
        self.assertEqual((me["requests"], me["statuses"]), (9, {"200": 8, "400": 1}))
        entry = self.requests_log()[-1]
        self.assertEqual((entry["path"], entry["version"], entry["code"], entry["subcode"]),
                         ("/me", VERSION, 190, 467))

    def test_rows_received_per_endpoint(self):
        audience = self.create_audience()
        self.assertOk(self.upload(audience, ["EMAIL"], emails("a", "b", "c")))
        self.assertOk(self.upload(audience, ["EMAIL"], emails("a"), method="DELETE"))
        self.upload(audience, ["EMAIL"], emails("d"), token="bad")
        endpoints = self.stats()["endpoints"]
        self.assertEqual(endpoints["POST /{audience_id}/users"]["rows_received"], 3)
        self.assertEqual(endpoints["DELETE /{audience_id}/users"]["rows_received"], 1)

    def test_unknown_control_endpoint(self):
        self.assertEqual(self.client.control("GET", "nothing", expect=404)["error"]["type"],
                         "SimulatorControlError")
        self.client.control("POST", "config", None, expect=200)


if __name__ == "__main__":
    unittest.main()
