"""The simulator's state, and the life of one Graph request: parse it, inject the fault a
rule chose, authenticate, route it to its endpoint, answer with Meta's headers, record it.

The HTTP layer hands every request to Simulator.handle as an Exchange and writes back the
Reply; nothing here knows about sockets.
"""

import base64
import copy
import hashlib
import threading
import time

import graph_endpoints
import uploads
from auth import authenticate
from control import Control
from exchange import Reply, json_reply
from faults import FaultPlan
from graph_endpoints import RequestContext
from graph_errors import GraphError, server_error, throttled, unknown_object
from graph_request import UnparsedRequest, parse_graph_request
from model import (Clock, ConfigError, Settings, update_settings, upsert_account,
                   upsert_token)
from recorder import Recorder

ROUTES = {
    ("GET", "/me"): graph_endpoints.me,
    ("GET", "/me/permissions"): graph_endpoints.permissions,
    ("GET", "/debug_token"): graph_endpoints.debug_token,
    ("GET", "/act_{id}"): graph_endpoints.ad_account,
    ("GET", "/act_{id}/customaudiences"): graph_endpoints.list_audiences,
    ("POST", "/act_{id}/customaudiences"): graph_endpoints.create_audience,
    ("GET", "/{audience_id}"): graph_endpoints.read_audience,
    ("DELETE", "/{audience_id}"): graph_endpoints.delete_audience,
    ("POST", "/{audience_id}/users"): uploads.add_users,
    ("DELETE", "/{audience_id}/users"): uploads.remove_users,
    ("POST", "/{audience_id}/usersreplace"): uploads.replace_users,
    ("GET", "/{audience_id}/sessions"): uploads.sessions,
}
CONFIG_SECTIONS = frozenset(("accounts", "tokens", "settings", "faults", "time"))
DEFAULT_VERSION = "v26.0"
HTML_ERROR_PAGE = (b"<!DOCTYPE html><html><head><title>Error</title></head><body>"
                   b"<h1>Sorry, something went wrong.</h1></body></html>")


class Simulator:
    def __init__(self, start_config):
        self.lock = threading.RLock()
        self.started_at = time.time()
        self.faults = FaultPlan()
        self.recorder = Recorder(Settings().request_log_size)
        self.control = Control(self)
        self._start_config = copy.deepcopy(start_config)
        self.reset()

    def reset(self):
        """Back to the start configuration: no audiences, sessions, counters or faults."""
        with self.lock:
            self.clock = Clock()
            self.settings = Settings()
            self.accounts = {}
            self.tokens = {}
            self.audiences = {}
            self.session_log = []
            self.compares = {}
            self.faults.reset(self.settings.seed)
            self.recorder.reset(self.settings.request_log_size)
            self.apply_config(self._start_config)

    def apply_config(self, document):
        """Apply a configuration document (see README); all of it or, on error, none of it."""
        if not isinstance(document, dict):
            raise ConfigError("the configuration must be a JSON object")
        unknown = set(document) - CONFIG_SECTIONS
        if unknown:
            raise ConfigError(f"unknown configuration sections {sorted(unknown)}; "
                              f"known: {sorted(CONFIG_SECTIONS)}")
        with self.lock:
            accounts = copy.deepcopy(self.accounts)
            tokens = copy.deepcopy(self.tokens)
            settings = copy.copy(self.settings)
            for account in _section_list(document, "accounts"):
                upsert_account(accounts, account)
            for token in _section_list(document, "tokens"):
                upsert_token(tokens, token)
            changed = update_settings(settings, document.get("settings", {}))
            moment = document.get("time")
            if moment is not None and type(moment) not in (int, float):
                raise ConfigError("time must be Unix seconds, or null for the real time")
            self.faults.add(document.get("faults", []))  # validates all rules before adding
            self.accounts, self.tokens, self.settings = accounts, tokens, settings
            if moment is not None:
                self.clock.set(moment)
            elif "time" in document:
                self.clock.offset = 0.0
            if "seed" in changed:
                self.faults.reseed(settings.seed)
            if "request_log_size" in changed:
                self.recorder.resize_log(settings.request_log_size)

    def describe_config(self):
        with self.lock:
            return {"accounts": [vars(a).copy() for a in self.accounts.values()],
                    "tokens": [t.describe() for t in self.tokens.values()],
                    "settings": self.settings.describe(),
                    "time": self.clock.now()}

    def handle(self, exchange):
        if exchange.target == "/_sim" or exchange.target.startswith("/_sim/"):
            return self.control.handle(exchange)
        return self._handle_graph(exchange)

    # --- one Graph request ------------------------------------------------------------

    def _handle_graph(self, exchange):
        seq = self.recorder.enter()
        started = time.perf_counter()
        try:
            try:
                request, parse_error = parse_graph_request(exchange), None
            except UnparsedRequest as unparsed:
                request, parse_error = unparsed.request, unparsed.error
            ctx = RequestContext(request)
            decision = self.faults.decide(request.method, request.template, seq)
            if decision.delay_seconds:
                time.sleep(decision.delay_seconds)
            fault = decision.rule
            reply, error = self._answer(ctx, fault, parse_error, seq)
        finally:
            self.recorder.leave()
        self._record(ctx, seq, reply, error, fault, started)
        return reply

    def _answer(self, ctx, fault, parse_error, seq):
        """(reply, GraphError or None) for the request, with the chosen fault applied."""
        kind = fault.kind if fault else None
        if kind == "drop_before":
            return Reply(None), None
        if kind == "html_error":
            return Reply(fault.http_status(), HTML_ERROR_PAGE, "text/html; charset=utf-8",
                         self._usage_headers(ctx.request, fault, seq)), None
        error = None
        if kind == "throttle":
            error = throttled(fault.code, fault.subcode, fault.http_status())
        elif kind == "server_error":
            error = server_error(fault.code)
            error.status = fault.http_status()
        else:
            try:
                if parse_error is not None:
                    raise parse_error
                body = self._execute(ctx)
            except GraphError as refused:
                error = refused
        if error is not None:
            return json_reply(error.status, error.body(_fbtrace_id(seq)),
                              self._usage_headers(ctx.request, fault, seq)), error
        if kind == "drop_after":
            return Reply(None), None
        return json_reply(200, body, self._usage_headers(ctx.request, None, seq)), None

    def _execute(self, ctx):
        request = ctx.request
        with self.lock:
            ctx.caller = authenticate(self, request,
                                      allow_app_token=request.template == "/debug_token")
        route_error = request.route_error()
        if route_error is not None:
            raise route_error
        handler = ROUTES.get((request.method, request.template))
        if handler is None:
            raise unknown_object(request.node, request.method)
        return handler(self, ctx)

    def _usage_headers(self, request, fault, seq):
        with self.lock:
            account_id = self._account_of(request)
            active = sum(1 for a in self.audiences.values()
                         if a.account_id == account_id and not a.deleted)
            settings = self.settings
        self.recorder.note_call(account_id, request.template, request.method)
        throttle = fault if fault is not None and fault.kind == "throttle" else None
        headers = self.recorder.usage_headers(account_id, settings.access_tier, active,
                                              settings.buc_header, throttle)
        headers["x-fb-trace-id"] = _fbtrace_id(seq)
        headers["facebook-api-version"] = request.version or DEFAULT_VERSION
        return headers

    def _account_of(self, request):
        """The ad account a request counts against, if it names one that exists."""
        if request.node.startswith("act_"):
            account_id = request.node_id
        else:
            audience = self.audiences.get(request.node)
            account_id = audience.account_id if audience else None
        return account_id if account_id in self.accounts else None

    def _record(self, ctx, seq, reply, error, fault, started):
        request = ctx.request
        applied = reply.status == 200 or (reply.status is None and fault is not None
                                          and fault.kind == "drop_after")
        entry = {"seq": seq, "time": round(time.time(), 3), "method": request.method,
                 "path": request.template, "node": request.node, "version": request.version,
                 "status": reply.status, "code": error.code if error else None,
                 "subcode": error.subcode if error else None,
                 "token_source": request.token_source, "token_in_query": request.token_in_query,
                 "payload_in_query": request.payload_in_query,
                 "method_override": request.method_override,
                 "fault": fault.kind if fault else None,
                 "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                 **ctx.log}
        self.recorder.record(entry, ctx.rows_applied if applied else 0)


def _section_list(document, name):
    value = document.get(name, [])
    if not isinstance(value, list):
        raise ConfigError(f"{name} must be an array")
    return value


def _fbtrace_id(seq):
    digest = hashlib.blake2b(seq.to_bytes(8, "big"), digest_size=15).digest()
    return "A" + base64.urlsafe_b64encode(digest).decode()
