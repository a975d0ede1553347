"""What a test sets up: ad accounts, tokens and settings, plus the simulator's clock.

One JSON document shape configures all of it, whether it comes from the command line
(--config and the shortcut flags) or from POST /_sim/config at run time; apply_config
validates it strictly so a typo in a test fails loudly instead of being ignored.
"""

import hashlib
import time
from dataclasses import asdict, dataclass, field


class ConfigError(ValueError):
    """A configuration document the simulator refuses (answered with HTTP 400)."""


DEFAULT_SCOPES = ("ads_management", "ads_read", "business_management")
BUC_HEADER_CHOICES = ("X-Business-Use-Case-Usage", "X-Business-Use-Case", "both")
ACCESS_TIERS = ("standard_access", "advanced_access")


@dataclass
class Account:
    id: str                        # numeric, without "act_"
    name: str = "Simulated ad account"
    account_status: int = 1        # 1 = ACTIVE
    tos_accepted: bool = True      # Custom Audience Terms of Service (reference §2.8)
    users: list = None             # user ids allowed on the account; None = every token's user

    def allows(self, user_id):
        return self.users is None or user_id in self.users


@dataclass
class Token:
    token: str
    user_id: str = "100000000000001"
    user_name: str = "Simulated System User"
    type: str = "SYSTEM_USER"
    scopes: list = field(default_factory=lambda: list(DEFAULT_SCOPES))
    expired: bool = False
    expires_after_requests: int = None  # the first N authenticated requests pass, then 190/463
    expires_at: int = 0                 # what debug_token reports; 0 = never
    requests: int = 0                   # authenticated requests so far

    def describe(self):
        shown = asdict(self)
        shown["token"] = fingerprint(self.token)
        return shown


@dataclass
class Settings:
    app_id: str = "1234567890"
    app_name: str = "connector-graph-sim"
    app_secret: str = None               # set: appsecret_proof required on every request
    replace_window_seconds: float = 5400.0
    kept_rows_cap: int = 200_000         # members whose rows stay listable, per audience
    audience_limit: int = 500            # customer-file audiences per ad account
    list_limit_max: int = 500            # larger `limit` on list calls gives error 1
    request_log_size: int = 10_000
    buc_header: str = "X-Business-Use-Case-Usage"
    access_tier: str = "standard_access"
    seed: int = 0

    def describe(self):
        shown = asdict(self)
        shown["app_secret"] = fingerprint(self.app_secret) if self.app_secret else None
        return shown


def fingerprint(secret):
    """A short, non-reversible name for a secret, safe for logs and inspection output."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


class Clock:
    """Unix time, shiftable by tests (appsecret_time vectors, replace windows)."""

    def __init__(self):
        self.offset = 0.0

    def now(self):
        return time.time() + self.offset

    def set(self, unix_seconds):
        self.offset = unix_seconds - time.time()


def normalize_account_id(value):
    text = str(value)
    digits = text[4:] if text.startswith("act_") else text
    if not digits.isdigit():
        raise ConfigError(f"ad account id must be act_<digits> or <digits>, got {text!r}")
    return digits


# --- strict field converters -------------------------------------------------------

def _string(name, value):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string")
    return value


def _optional_string(name, value):
    return None if value is None else _string(name, value)


def _boolean(name, value):
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false")
    return value


def _integer(name, value, minimum=0):
    if type(value) is not int or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}")
    return value


def _optional_integer(name, value):
    return None if value is None else _integer(name, value)


def _number(name, value):
    if type(value) not in (int, float) or value <= 0:
        raise ConfigError(f"{name} must be a number > 0")
    return float(value)


def _string_list(name, value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{name} must be an array of strings")
    return list(value)


def _optional_string_list(name, value):
    return None if value is None else _string_list(name, value)


def _choice(choices):
    def convert(name, value):
        if value not in choices:
            raise ConfigError(f"{name} must be one of {list(choices)}")
        return value
    return convert


ACCOUNT_FIELDS = {"name": _string, "account_status": _integer, "tos_accepted": _boolean,
                  "users": _optional_string_list}
TOKEN_FIELDS = {"user_id": _string, "user_name": _string, "type": _choice(("USER", "SYSTEM_USER")),
                "scopes": _string_list, "expired": _boolean,
                "expires_after_requests": _optional_integer, "expires_at": _integer}
SETTINGS_FIELDS = {"app_id": _string, "app_name": _string, "app_secret": _optional_string,
                   "replace_window_seconds": _number, "kept_rows_cap": _integer,
                   "audience_limit": _integer, "list_limit_max": lambda n, v: _integer(n, v, 1),
                   "request_log_size": lambda n, v: _integer(n, v, 1),
                   "buc_header": _choice(BUC_HEADER_CHOICES), "access_tier": _choice(ACCESS_TIERS),
                   "seed": _integer}


def _apply_fields(target, document, converters, what):
    if not isinstance(document, dict):
        raise ConfigError(f"{what} must be a JSON object")
    for name, value in document.items():
        if name not in converters:
            raise ConfigError(f"unknown field {name!r} in {what}; known: {sorted(converters)}")
        setattr(target, name, converters[name](f"{what}.{name}", value))


def upsert_account(accounts, document):
    """Create or update an account from {"id": ..., other Account fields}."""
    if not isinstance(document, dict) or "id" not in document:
        raise ConfigError("each account needs an id")
    account_id = normalize_account_id(document["id"])
    fields = {k: v for k, v in document.items() if k != "id"}
    account = accounts.get(account_id) or Account(account_id)
    _apply_fields(account, fields, ACCOUNT_FIELDS, f"account act_{account_id}")
    accounts[account_id] = account


def upsert_token(tokens, document):
    """Create or update a token from {"token": ..., other Token fields}."""
    if not isinstance(document, dict) or not isinstance(document.get("token"), str) \
            or not document["token"]:
        raise ConfigError("each token needs a non-empty token value")
    value = document["token"]
    fields = {k: v for k, v in document.items() if k != "token"}
    token = tokens.get(value) or Token(value)
    _apply_fields(token, fields, TOKEN_FIELDS, f"token {fingerprint(value)}")
    tokens[value] = token


def update_settings(settings, document):
    """Apply {"setting": value, ...}; returns the names that changed."""
    _apply_fields(settings, document, SETTINGS_FIELDS, "settings")
    return set(document)
