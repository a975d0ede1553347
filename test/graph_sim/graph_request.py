"""One HTTP request in Graph terms: version, path template, parameters and token.

Parameters may come from the query string, a JSON body, or a form body whose object
values are JSON text (reference §2, common rules). Where each one came from is kept,
because tests assert that our client never puts a payload or a token in the URL.
"""

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from graph_errors import (GraphError, invalid_parameter, invalid_token, missing_version,
                          unknown_object, unknown_path)

ENDPOINT_TEMPLATES = (
    "/me", "/me/permissions", "/debug_token", "/act_{id}", "/act_{id}/customaudiences",
    "/{audience_id}", "/{audience_id}/users", "/{audience_id}/usersreplace",
    "/{audience_id}/sessions",
)
UNKNOWN_TEMPLATE = "(unknown)"
_VERSIONED_PATH = re.compile(r"/(v\d+\.\d+)(/.*)?")
_NODE_EDGES = {
    "me": ("/me", {"permissions"}),
    "debug_token": ("/debug_token", set()),
    "act": ("/act_{id}", {"customaudiences"}),
    "audience": ("/{audience_id}", {"users", "usersreplace", "sessions"}),
}


@dataclass
class GraphRequest:
    method: str              # effective method (POST with method=DELETE counts as DELETE)
    method_override: bool
    version: str             # "v26.0", or None when the path has none
    template: str            # one of ENDPOINT_TEMPLATES, or UNKNOWN_TEMPLATE
    node: str                # "me", "act_123", "238500...", ...
    extra_path: str          # path components after a known node that match no edge
    params: dict             # query string, then body (the body wins)
    query_params: dict
    token: str
    token_source: str        # "header" | "query" | "body" | None
    scheme: str
    host: str

    @property
    def payload_in_query(self):
        return "payload" in self.query_params

    @property
    def token_in_query(self):
        return "access_token" in self.query_params

    @property
    def node_id(self):
        return self.node[4:] if self.node.startswith("act_") else self.node

    def route_error(self):
        """The refusal Graph gives for a path that names no endpoint (after authentication)."""
        if self.template != UNKNOWN_TEMPLATE:
            return None
        if self.extra_path:
            return unknown_path(self.extra_path)
        return unknown_object(self.node or "/", self.method)


class UnparsedRequest(Exception):
    """A request refused while parsing; carries what was learned, for the request log."""

    def __init__(self, request, error):
        super().__init__(str(error))
        self.request = request
        self.error = error


def parse_graph_request(exchange):
    """Build a GraphRequest; raise UnparsedRequest for one Graph could not even read."""
    path, _, query = exchange.target.partition("?")
    query_params = dict(parse_qsl(query, keep_blank_values=True))
    versioned = _VERSIONED_PATH.fullmatch(path)
    version, rest = (versioned.group(1), versioned.group(2) or "/") if versioned else (None, path)
    template, node, extra_path = _classify(rest)
    request = GraphRequest(exchange.method, False, version, template, node, extra_path, {},
                           query_params, None, None, exchange.scheme,
                           exchange.headers.get("Host", ""))
    try:
        if version is None:
            raise missing_version()
        body_params = _parse_body(exchange.headers.get("Content-Type", ""), exchange.body)
        request.params = {**query_params, **body_params}
        request.token, request.token_source = _find_token(exchange.headers, query_params,
                                                          body_params)
        _apply_method_override(request)
    except GraphError as error:
        raise UnparsedRequest(request, error) from None
    return request


def _classify(path):
    """(template, node, extra path components) for a path without its version prefix."""
    parts = path.strip("/").split("/")
    node = parts[0]
    if node.startswith("act_") and node[4:].isdigit():
        kind = "act"
    elif node.isdigit():
        kind = "audience"
    elif node in ("me", "debug_token"):
        kind = node
    else:
        return UNKNOWN_TEMPLATE, node, ""
    base, edges = _NODE_EDGES[kind]
    if len(parts) == 1:
        return base, node, ""
    if len(parts) == 2 and parts[1] in edges:
        return f"{base}/{parts[1]}", node, ""
    return UNKNOWN_TEMPLATE, node, "/" + "/".join(parts[1:])


def _parse_body(content_type, body):
    if not body:
        return {}
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json":
        try:  # decoding first is much faster than json.loads(bytes) ("surrogatepass")
            params = json.loads(body.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError included
            raise invalid_parameter("The request body is not valid UTF-8 JSON") from None
        if not isinstance(params, dict):
            raise invalid_parameter("The JSON request body must be an object")
        return params
    if media_type == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise invalid_parameter("The form body is not valid UTF-8") from None
    raise invalid_parameter(f"Unsupported Content-Type {media_type!r}: send application/json "
                            "or application/x-www-form-urlencoded")


def _find_token(headers, query_params, body_params):
    authorization = headers.get("Authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not value.strip():
            raise invalid_token()
        return value.strip(), "header"
    if "access_token" in body_params:
        return str(body_params["access_token"]), "body"
    if "access_token" in query_params:
        return query_params["access_token"], "query"
    return None, None


def _apply_method_override(request):
    override = request.params.get("method")
    if override is None:
        return
    if request.method != "POST" or str(override).upper() != "DELETE":
        raise invalid_parameter(f"Unsupported method override {override!r}: only POST with "
                                "method=DELETE is simulated")
    request.method = "DELETE"
    request.method_override = True
