"""The Graph endpoints other than member uploads: /me, /me/permissions, /debug_token,
the ad account, and audience create, list, read and delete (reference §2.1-2.3, 2.8, 2.9).

Each handler takes a RequestContext and returns the JSON body of a 200 answer, or raises
the GraphError Meta would answer with.
"""

import base64
from dataclasses import dataclass, field
from urllib.parse import urlencode

from audience import FIELD_NAMES as AUDIENCE_FIELDS
from audience import Audience
from auth import Caller, require_account, require_audience, require_tos, token_is_expired
from graph_errors import (audience_limit_reached, invalid_parameter, missing_parameter,
                          too_much_data, unknown_field, unsupported_by_simulator)
from membership import MemberStore

CUSTOMER_FILE_SOURCES = ("USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY",
                         "BOTH_USER_AND_PARTNER_PROVIDED")
CREATE_PARAMS = frozenset(("name", "subtype", "customer_file_source", "description",
                           "is_value_based", "retention_days", "opt_out_link", "use_in_campaigns",
                           "enable_fetch_or_create", "audience_labels"))
GENERAL_PARAMS = frozenset(("access_token", "appsecret_proof", "appsecret_time", "method"))
ACCOUNT_FIELDS = frozenset(("id", "account_id", "name", "account_status", "tos_accepted"))
DEFAULT_LIST_LIMIT = 25
FIRST_AUDIENCE_ID = 23850000000000001


@dataclass
class RequestContext:
    """One Graph request on its way through an endpoint, and what it did (for the log)."""
    request: object               # graph_request.GraphRequest
    caller: Caller = None
    rows_applied: int = 0
    log: dict = field(default_factory=dict)   # extra request-log fields

    @property
    def params(self):
        return self.request.params


def requested_fields(requested, allowed, node_type):
    """The names in Graph's `fields=`; an unknown name is an error."""
    names = [name.strip() for name in (requested or "").split(",") if name.strip()]
    for name in names:
        if name not in allowed:
            raise unknown_field(name, node_type)
    return names


def select_fields(available, names):
    """Only what was asked for, plus id (Graph always answers with the id)."""
    selected = {name: available[name] for name in names}
    selected.setdefault("id", available["id"])
    return selected


def me(sim, ctx):
    token = ctx.caller.token
    names = requested_fields(ctx.params.get("fields") or "name", {"id", "name"}, "User")
    return select_fields({"id": token.user_id, "name": token.user_name}, names)


def permissions(sim, ctx):
    return {"data": [{"permission": scope, "status": "granted"}
                     for scope in ctx.caller.token.scopes]}


def debug_token(sim, ctx):
    """Reference §2.9; an unknown or expired input token is reported, not refused."""
    input_token = ctx.params.get("input_token")
    if not input_token:
        raise missing_parameter("input_token")
    with sim.lock:
        token = sim.tokens.get(input_token)
        settings = sim.settings
        if token is None:
            return {"data": {"error": {"code": 190, "message": "Invalid OAuth access token."},
                             "is_valid": False, "scopes": []}}
        data = {"app_id": settings.app_id, "type": token.type, "application": settings.app_name,
                "expires_at": token.expires_at, "is_valid": not token_is_expired(token),
                "issued_at": int(sim.started_at), "scopes": list(token.scopes),
                "user_id": token.user_id}
        if not data["is_valid"]:
            data["error"] = {"code": 190, "subcode": 463,
                             "message": "Error validating access token: Session has expired."}
        return {"data": data}


def ad_account(sim, ctx):
    with sim.lock:
        account = require_account(sim, ctx.caller, ctx.request.node_id, write=False)
        available = {"id": f"act_{account.id}", "account_id": account.id, "name": account.name,
                     "account_status": account.account_status,
                     "tos_accepted": {"custom_audience_tos": 1} if account.tos_accepted else {}}
        names = requested_fields(ctx.params.get("fields"), ACCOUNT_FIELDS, "AdAccount")
        return select_fields(available, names)


def list_audiences(sim, ctx):
    """Reference §2.2, with cursor paging; paging.next is built from the Host the client used."""
    params = ctx.params
    with sim.lock:
        account = require_account(sim, ctx.caller, ctx.request.node_id, write=False)
        if "filtering" in params:
            raise unsupported_by_simulator("The filtering parameter")
        limit = _positive_int(params.get("limit", DEFAULT_LIST_LIMIT), "limit")
        if limit > sim.settings.list_limit_max:
            raise too_much_data()
        names = requested_fields(params.get("fields"), AUDIENCE_FIELDS, "CustomAudience")
        listed = [a for a in sim.audiences.values() if a.account_id == account.id and not a.deleted]
        start = 0
        if "after" in params:
            after_id = _decode_cursor(params["after"])
            start = next((i + 1 for i, a in enumerate(listed) if a.id == after_id), None)
            if start is None:
                raise invalid_parameter("The after cursor does not name an audience of this list")
        now = sim.clock.now()
        page = listed[start:start + limit]
        for audience in page:
            audience.settle(now, sim.settings.replace_window_seconds)
        data = [select_fields(audience.fields(), names) for audience in page]
    body = {"data": data}
    if page:
        body["paging"] = {"cursors": {"before": _encode_cursor(page[0].id),
                                      "after": _encode_cursor(page[-1].id)}}
        if start + limit < len(listed):
            body["paging"]["next"] = _next_url(ctx.request, _encode_cursor(page[-1].id))
    return body


def create_audience(sim, ctx):
    """Reference §2.1: a customer-list audience (subtype CUSTOM) with its file source."""
    params = ctx.params
    with sim.lock:
        account = require_account(sim, ctx.caller, ctx.request.node_id, write=True,
                                  request_method="POST")
        require_tos(account)
        unknown = set(params) - CREATE_PARAMS - GENERAL_PARAMS
        if unknown:
            raise invalid_parameter(f"Unknown parameters for customaudiences: {sorted(unknown)}")
        name = _required_string(params, "name")
        if _required_string(params, "subtype") != "CUSTOM":
            raise invalid_parameter("subtype must be CUSTOM for a customer list audience "
                                    "(the simulator creates customer lists only)")
        source = _required_string(params, "customer_file_source")
        if source not in CUSTOMER_FILE_SOURCES:
            raise invalid_parameter("customer_file_source must be one of "
                                    f"{list(CUSTOMER_FILE_SOURCES)}")
        description = params.get("description", "")
        if not isinstance(description, str):
            raise invalid_parameter("description must be a string")
        is_value_based = _boolean(params.get("is_value_based", False), "is_value_based")
        retention_days = params.get("retention_days")
        if retention_days is not None:
            retention_days = _positive_int(retention_days, "retention_days")
            if retention_days > 180:
                raise invalid_parameter("retention_days must be between 1 and 180")
        owned = sum(1 for a in sim.audiences.values()
                    if a.account_id == account.id and not a.deleted)
        if owned >= sim.settings.audience_limit:
            raise audience_limit_reached(sim.settings.audience_limit)
        audience_id = str(FIRST_AUDIENCE_ID + len(sim.audiences))
        now = int(sim.clock.now())
        sim.audiences[audience_id] = Audience(
            audience_id, account.id, name, description, source, is_value_based, retention_days,
            MemberStore(sim.settings.kept_rows_cap), time_created=now, time_updated=now)
    return {"id": audience_id}


def read_audience(sim, ctx):
    with sim.lock:
        audience = require_audience(sim, ctx.caller, ctx.request.node_id, False, "GET")
        names = requested_fields(ctx.params.get("fields"), AUDIENCE_FIELDS, "CustomAudience")
        audience.settle(sim.clock.now(), sim.settings.replace_window_seconds)
        return select_fields(audience.fields(), names)


def delete_audience(sim, ctx):
    with sim.lock:
        audience = require_audience(sim, ctx.caller, ctx.request.node_id, True, "DELETE")
        now = sim.clock.now()
        if audience.open_replace is not None:
            audience.open_replace.close("audience_deleted", now)
            audience.open_replace = None
        audience.deleted = True
        audience.members = MemberStore(0)
        audience.time_updated = int(now)
    return {"success": True}


# --- parameter helpers ---------------------------------------------------------------

def _required_string(params, name):
    value = params.get(name)
    if value is None or value == "":
        raise missing_parameter(name)
    if not isinstance(value, str):
        raise invalid_parameter(f"{name} must be a string")
    return value


def _positive_int(value, name):
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if type(value) is not int or value < 1:
        raise invalid_parameter(f"{name} must be a positive integer")
    return value


def _boolean(value, name):
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise invalid_parameter(f"{name} must be true or false")


def _encode_cursor(audience_id):
    return base64.urlsafe_b64encode(f"audience:{audience_id}".encode()).decode()


def _decode_cursor(cursor):
    try:
        text = base64.urlsafe_b64decode(str(cursor).encode()).decode()
    except ValueError:
        text = ""
    if not text.startswith("audience:"):
        raise invalid_parameter("The after cursor is not valid")
    return text[len("audience:"):]


def _next_url(request, after):
    """Absolute, as Meta sends it: the client's own query parameters with a new `after`."""
    query = {k: v for k, v in request.query_params.items() if k != "after"}
    query["after"] = after
    host = request.host or "127.0.0.1"
    return (f"{request.scheme}://{host}/{request.version}/{request.node}/customaudiences?"
            f"{urlencode(query)}")
