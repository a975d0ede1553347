"""What passes between the HTTP layer and the simulator: a request in, a reply out."""

import json
from dataclasses import dataclass, field


@dataclass
class Exchange:
    """One HTTP request as the simulator sees it."""
    method: str
    target: str           # path and query string
    headers: object       # email.message.Message: case-insensitive get()
    body: bytes
    scheme: str           # "http" | "https"


@dataclass
class Reply:
    status: int           # None: close the connection without answering
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    headers: dict = field(default_factory=dict)


def json_reply(status, document, headers=None):
    return Reply(status, json.dumps(document, separators=(",", ":")).encode(),
                 headers=headers or {})
