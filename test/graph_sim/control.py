"""The simulator's own endpoints, under /_sim/: configure it at run time and inspect what it
received. No Graph path can collide with them, since every Graph path starts with a version.

These endpoints take no token and are not counted, logged or faulted like Graph calls.
"""

import json
import time
from urllib.parse import parse_qsl

from exchange import json_reply
from graph_errors import GraphError
from membership import MemberStore
from model import ConfigError
from payload import check_payload

COMPARE_FIELDS = frozenset(("schema", "data", "compare_id", "final"))
DEFAULT_MEMBER_PAGE = 1000


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Control:
    def __init__(self, sim):
        self.sim = sim

    def handle(self, exchange):
        path, _, query = exchange.target.partition("?")
        parts = tuple(path.strip("/").split("/")[1:])
        query = dict(parse_qsl(query))
        try:
            body = json.loads(exchange.body) if exchange.body else {}
            if not isinstance(body, dict):
                raise ConfigError("the request body must be a JSON object")
            status, document = self._route(exchange.method, parts, query, body)
        except (ConfigError, ValueError) as error:
            status, document = 400, _error(str(error))
        except ControlError as error:
            status, document = error.status, _error(str(error))
        return json_reply(status, document)

    def _route(self, method, parts, query, body):
        sim = self.sim
        match (method, parts):
            case ("GET", ("health",)):
                return 200, {"ok": True}
            case ("GET", ("config",)):
                return 200, sim.describe_config()
            case ("POST", ("config",)):
                sim.apply_config(body)
                return 200, sim.describe_config()
            case ("POST", ("reset",)):
                sim.reset()
                return 200, {"reset": True}
            case ("GET", ("faults",)):
                return 200, sim.faults.describe()
            case ("DELETE", ("faults",)):
                sim.faults.clear()
                return 200, {"cleared": True}
            case ("GET", ("stats",)):
                return 200, {**sim.recorder.stats(),
                             "faults_injected": sim.faults.injected_counts(),
                             "process_cpu_seconds": time.process_time()}
            case ("GET", ("requests",)):
                return 200, {"requests": sim.recorder.requests(_int(query, "limit", 0))}
            case ("GET", ("sessions",)):
                return 200, {"sessions": self._sessions(query.get("audience_id"))}
            case ("GET", ("audiences",)):
                with sim.lock:
                    return 200, {"audiences": [self._settled(a).summary()
                                               for a in sim.audiences.values()]}
            case ("GET", ("audiences", audience_id)):
                with sim.lock:
                    audience = self._audience(audience_id)
                    return 200, {**audience.summary(), "fields": audience.fields()}
            case ("POST", ("audiences", audience_id)):
                return 200, self._override_status(audience_id, body)
            case ("GET", ("audiences", audience_id, "members")):
                return 200, self._members(audience_id, query)
            case ("POST", ("audiences", audience_id, "compare")):
                return 200, self._compare(audience_id, body)
        raise ControlError(404, f"no control endpoint {method} /_sim/{'/'.join(parts)}")

    def _audience(self, audience_id):
        audience = self.sim.audiences.get(audience_id)
        if audience is None:
            raise ControlError(404, f"no audience {audience_id}")
        return self._settled(audience)

    def _settled(self, audience):
        audience.settle(self.sim.clock.now(), self.sim.settings.replace_window_seconds)
        return audience

    def _sessions(self, audience_id):
        with self.sim.lock:
            for audience in self.sim.audiences.values():
                self._settled(audience)
            return [s.log_entry() for s in self.sim.session_log
                    if audience_id is None or s.audience_id == audience_id]

    def _override_status(self, audience_id, body):
        """Force an operation_status (e.g. 471 flagged, which blocks member edits), or null."""
        if set(body) != {"operation_status"}:
            raise ConfigError('send {"operation_status": <code or null>}')
        code = body["operation_status"]
        if code is not None and type(code) is not int:
            raise ConfigError("operation_status must be an integer or null")
        with self.sim.lock:
            audience = self._audience(audience_id)
            audience.forced_operation_status = code
            return audience.summary()

    def _members(self, audience_id, query):
        offset = _int(query, "offset", 0)
        limit = _int(query, "limit", DEFAULT_MEMBER_PAGE)
        with self.sim.lock:
            members = self._audience(audience_id).members
            if not members.rows_kept:
                raise ControlError(409, f"audience {audience_id} grew past kept_rows_cap; only "
                                        "its count and compare are available")
            rows = members.rows(offset, limit)
            page = {"count": len(members), "offset": offset, "rows": rows}
            if offset + len(rows) < len(members):
                page["next_offset"] = offset + len(rows)
            return page

    def _compare(self, audience_id, body):
        """Expected rows (hashed, as the extension sends them) against the audience.

        Large expectations may come in chunks with one compare_id and "final": false; the
        answer comes with the chunk that has "final": true (the default).
        """
        unknown = set(body) - COMPARE_FIELDS
        if unknown:
            raise ConfigError(f"unknown compare fields {sorted(unknown)}")
        compare_id = body.get("compare_id")
        checked = None
        if body.get("data") != []:
            try:
                checked = check_payload({"schema": body.get("schema"), "data": body.get("data")},
                                        max_rows=None)
            except GraphError as error:
                raise ConfigError(f"expected rows: {error.message}") from None
        sim = self.sim
        with sim.lock:
            expected = sim.compares.pop(compare_id, None) if compare_id is not None else None
            if expected is None:
                expected = {"members": MemberStore(sim.settings.kept_rows_cap,
                                                   index_extern_ids=False),
                            "rows": 0, "invalid_entries": 0}
            if checked is not None:
                expected["members"].add(checked)
                expected["rows"] += checked.num_rows
                expected["invalid_entries"] += checked.num_invalid_entries
            if body.get("final", True) is not True:
                if compare_id is None:
                    raise ConfigError('"final": false needs a compare_id')
                sim.compares[compare_id] = expected
                return {"compare_id": compare_id, "expected_rows": expected["rows"]}
            audience = self._audience(audience_id)
            result = audience.members.compare(expected["members"])
        return {**result, "expected_rows": expected["rows"],
                "expected_members": len(expected["members"]),
                "expected_invalid_entries": expected["invalid_entries"],
                "audience_members": len(audience.members), "equal": result["missing"] == 0
                and result["unexpected"] == 0}


def _int(query, name, default):
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise ControlError(400, f"{name} must be a non-negative integer")
    return int(value)


def _error(message):
    return {"error": {"message": message, "type": "SimulatorControlError"}}
