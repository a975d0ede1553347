"""Member uploads and their sessions: POST/DELETE /{id}/users, POST /{id}/usersreplace and
GET /{id}/sessions, with the replace rules R3-R8 and the 2650 subcodes of reference §3.

A request is handled in two locked steps around the payload check: first who may write
to which audience, then (after the CPU-heavy validation, done unlocked) the session rules
and the change itself. Every rule is checked before anything changes, so a refused batch
leaves the audience and its sessions as they were.
"""

from dataclasses import dataclass

from audience import Session
from auth import require_audience
from graph_endpoints import GENERAL_PARAMS
from graph_errors import (invalid_parameter, invalid_replace_batch, missing_parameter,
                          replace_finished, replace_timed_out, update_in_progress)
from membership import MemberStore
from payload import check_payload, decode_json_param

UPLOAD_PARAMS = frozenset(("payload", "session", "customer_consent"))
SESSION_FIELDS = frozenset(("session_id", "batch_seq", "last_batch_flag", "estimated_num_total"))
MAX_SESSION_ID = 2 ** 63 - 1


@dataclass
class SessionParam:
    session_id: int
    batch_seq: int
    last_batch_flag: bool
    estimated_num_total: int

    def log(self):
        return {"session_id": str(self.session_id), "batch_seq": self.batch_seq,
                "last_batch_flag": self.last_batch_flag}


def add_users(sim, ctx):
    return _upload(sim, ctx, "add")


def remove_users(sim, ctx):
    return _upload(sim, ctx, "remove")


def replace_users(sim, ctx):
    return _upload(sim, ctx, "replace")


def sessions(sim, ctx):
    """Reference §2.7: the session named by session_id, or every session of the audience."""
    with sim.lock:
        audience = require_audience(sim, ctx.caller, ctx.request.node_id, False, "GET")
        wanted = ctx.params.get("session_id")
        if wanted is not None:
            wanted = _session_id(str(wanted))
        audience.settle(sim.clock.now(), sim.settings.replace_window_seconds)
        if wanted is None:
            found = reversed(list(audience.sessions.values()))
        else:
            found = [audience.sessions[wanted]] if wanted in audience.sessions else []
        return {"data": [session.edge() for session in found]}


def _upload(sim, ctx, mode):
    request = ctx.request
    with sim.lock:
        audience = require_audience(sim, ctx.caller, request.node_id, True, request.method,
                                    edits_members=True)
    unknown = set(ctx.params) - UPLOAD_PARAMS - GENERAL_PARAMS
    if unknown:
        raise invalid_parameter(f"Unknown parameters for {request.template}: {sorted(unknown)}")
    session = parse_session(ctx.params.get("session"))
    if mode == "replace" and session is None:
        raise missing_parameter("session")
    if session is not None:
        ctx.log["session"] = session.log()
    checked = check_payload(ctx.params.get("payload"))
    ctx.log.update(rows=checked.num_rows, num_invalid_entries=checked.num_invalid_entries,
                   empty_hash_cells=checked.empty_hash_cells)
    _check_value_based(audience, checked.schema)

    with sim.lock:
        audience = require_audience(sim, ctx.caller, request.node_id, True, request.method,
                                    edits_members=True)  # it may have changed meanwhile
        now = sim.clock.now()
        audience.settle(now, sim.settings.replace_window_seconds)
        if mode == "replace":
            tracked = _replace_batch(sim, audience, session, checked, now)
        else:
            tracked = _users_batch(sim, audience, mode, request.method, session, checked, now)
        response = {"audience_id": audience.id}
        if tracked is not None:  # num_received counts the whole session so far (§2.4)
            response["session_id"] = str(tracked.session_id)
        response.update(num_received=tracked.num_received if tracked else checked.num_rows,
                        num_invalid_entries=checked.num_invalid_entries,
                        invalid_entry_samples=checked.invalid_entry_samples)
    ctx.rows_applied = checked.num_rows
    return response


def parse_session(value):
    """The `session` object (reference §3.1), strictly typed; None when absent."""
    if value is None:
        return None
    session = decode_json_param("session", value)
    if not isinstance(session, dict):
        raise invalid_parameter("Invalid session: it must be a JSON object")
    unknown = set(session) - SESSION_FIELDS
    if unknown:
        raise invalid_parameter(f"Invalid session: unknown fields {sorted(unknown)}")
    session_id = session.get("session_id")
    if type(session_id) is not int or not 0 < session_id <= MAX_SESSION_ID:
        raise invalid_parameter("Invalid session: session_id must be a positive 64-bit integer")
    batch_seq = session.get("batch_seq")
    if type(batch_seq) is not int or batch_seq < 1:
        raise invalid_parameter("Invalid session: batch_seq must be an integer >= 1")
    last_batch_flag = session.get("last_batch_flag", False)
    if type(last_batch_flag) is not bool:
        raise invalid_parameter("Invalid session: last_batch_flag must be true or false")
    estimated = session.get("estimated_num_total")
    if estimated is not None and (type(estimated) is not int or estimated < 0):
        raise invalid_parameter("Invalid session: estimated_num_total must be an integer >= 0")
    return SessionParam(session_id, batch_seq, last_batch_flag, estimated)


def _session_id(text):
    if not text.isdigit() or not 0 < int(text) <= MAX_SESSION_ID:
        raise invalid_parameter("session_id must be a positive 64-bit integer")
    return int(text)


def _check_value_based(audience, schema):
    """R2: a value-based audience takes only rows with LOOKALIKE_VALUE, a plain one never."""
    has_value = "LOOKALIKE_VALUE" in schema
    if audience.is_value_based and not has_value:
        raise invalid_parameter("Value-Based Custom Audience requires LOOKALIKE_VALUE attribute.")
    if has_value and not audience.is_value_based:
        raise invalid_parameter("LOOKALIKE_VALUE is only accepted by a value-based audience")


def _users_batch(sim, audience, mode, method, param, checked, now):
    """Add or remove; returns the /users session the batch belongs to, if any."""
    if audience.open_replace is not None:
        raise update_in_progress()  # R8
    session = None
    if param is not None:
        session = audience.sessions.get(param.session_id)
        if session is not None and session.kind != "users":
            raise invalid_parameter("Invalid session: this session_id belongs to a replace")
        if session is None:
            session = Session(audience.id, param.session_id, "users", now, checked.schema,
                              param.estimated_num_total)
            _register(sim, audience, session)
    changed = (audience.members.add(checked) if mode == "add"
               else audience.members.remove(checked))
    if changed:
        audience.touch_content(now)
    if session is not None:
        note = "accepted" if session.outcome == "open" else "accepted after last_batch_flag"
        session.count(checked)
        session.log_batch(method, param.batch_seq, param.last_batch_flag, checked.num_rows, note)
        if param.last_batch_flag and session.outcome == "open":
            session.close("finished", now)
    return session


def _replace_batch(sim, audience, param, checked, now):
    """R3-R7 for one usersreplace batch; returns its session."""
    session = audience.sessions.get(param.session_id)
    if session is not None and session.kind != "replace":
        raise invalid_parameter("Invalid session: this session_id belongs to /users uploads")

    def refuse(error):
        if session is not None:
            session.log_batch("POST", param.batch_seq, param.last_batch_flag, checked.num_rows,
                              f"refused {error.code}/{error.subcode}")
        raise error

    if session is not None and session.outcome == "timed_out":
        refuse(replace_timed_out())                       # R5
    if session is not None and session.outcome == "finished":
        refuse(replace_finished())                        # R6
    if param.batch_seq == 1:                              # R3
        if audience.open_replace is not None and audience.open_replace is not session:
            refuse(update_in_progress())                  # R8
        if session is None:
            session = Session(audience.id, param.session_id, "replace", now)
            _register(sim, audience, session)
            audience.open_replace = session
        else:
            session.restarts += 1                         # batch 1 again: a new replace
            session.start_time = now
            session.num_received = session.num_invalid_entries = session.num_matched = 0
        session.schema = checked.schema
        session.estimated_num_total = param.estimated_num_total
        session.staging = MemberStore(sim.settings.kept_rows_cap)
    elif session is None:
        raise invalid_replace_batch()                     # R4
    elif checked.schema != session.schema:
        refuse(invalid_parameter("payload[schema] differs from the schema of batch_seq 1 of "
                                 "this replace session"))  # R7
    session.staging.add(checked)
    session.count(checked)
    session.log_batch("POST", param.batch_seq, param.last_batch_flag, checked.num_rows, "accepted")
    if param.last_batch_flag:                             # R6: swap atomically
        audience.members = session.staging
        session.close("finished", now)
        audience.open_replace = None
        audience.touch_content(now)
    return session


def _register(sim, audience, session):
    audience.sessions[session.session_id] = session
    sim.session_log.append(session)
