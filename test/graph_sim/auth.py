"""Who is calling and what they may touch: token, appsecret_proof, scopes, ad account access,
Terms of Service, and the audience an id names (reference §2 common rules, §2.8, §6).

Every function here runs under the simulator lock and either returns or raises the
GraphError Meta would answer with.
"""

import hashlib
import hmac
from dataclasses import dataclass

from graph_errors import (app_token_not_allowed, audience_deleted, audience_flagged,
                          expired_token, invalid_appsecret_proof, invalid_token,
                          missing_ads_management, missing_appsecret_proof,
                          missing_read_permission, missing_token, no_account_access,
                          tos_not_accepted, unknown_object)
from audience import FLAGGED_STATUS

APPSECRET_TIME_WINDOW_SECONDS = 300


@dataclass
class Caller:
    token: object        # model.Token, or None when the caller used the app token


def appsecret_proof(app_secret, access_token, appsecret_time=None):
    """hex(HMAC-SHA256(app_secret, token)) or, time-stamped, of token + "|" + unix seconds."""
    message = access_token if appsecret_time is None else f"{access_token}|{appsecret_time}"
    return hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def authenticate(sim, request, allow_app_token=False):
    value = request.token
    if value is None:
        raise missing_token()
    settings = sim.settings
    if settings.app_secret and value == f"{settings.app_id}|{settings.app_secret}":
        if not allow_app_token:
            raise app_token_not_allowed()
        return Caller(None)
    token = sim.tokens.get(value)
    if token is None:
        raise invalid_token()
    if settings.app_secret:
        _check_appsecret_proof(settings.app_secret, value, request.params, sim.clock.now())
    if token_is_expired(token):
        raise expired_token()
    token.requests += 1
    return Caller(token)


def token_is_expired(token):
    limit = token.expires_after_requests
    return token.expired or (limit is not None and token.requests >= limit)


def _check_appsecret_proof(app_secret, access_token, params, now):
    proof = params.get("appsecret_proof")
    if proof is None:
        raise missing_appsecret_proof()
    stamp = params.get("appsecret_time")
    if stamp is not None:
        stamp = str(stamp)
        if not stamp.isdigit() or stamp != str(int(stamp)):
            raise invalid_appsecret_proof("appsecret_time must be decimal Unix seconds")
        if abs(now - int(stamp)) > APPSECRET_TIME_WINDOW_SECONDS:
            raise invalid_appsecret_proof("appsecret_time is more than 5 minutes from now")
    if not hmac.compare_digest(str(proof), appsecret_proof(app_secret, access_token, stamp)):
        raise invalid_appsecret_proof("it does not match the token")


def require_scope(caller, write):
    scopes = caller.token.scopes
    if write and "ads_management" not in scopes:
        raise missing_ads_management()
    if not write and "ads_management" not in scopes and "ads_read" not in scopes:
        raise missing_read_permission()


def require_account(sim, caller, account_id, write, request_method="GET"):
    account = sim.accounts.get(account_id)
    if account is None:
        raise unknown_object(f"act_{account_id}", request_method)
    require_scope(caller, write)
    if not account.allows(caller.token.user_id):
        raise no_account_access(account_id)
    return account


def require_tos(account):
    if not account.tos_accepted:
        raise tos_not_accepted(account.id)


def require_audience(sim, caller, audience_id, write, request_method, edits_members=False):
    """The audience an id names, if the caller may read it (or write it, or edit its members)."""
    audience = sim.audiences.get(audience_id)
    account = sim.accounts.get(audience.account_id) if audience else None
    if account is None or not account.allows(caller.token.user_id):
        raise unknown_object(audience_id, request_method)
    if audience.deleted:
        raise audience_deleted(audience_id)
    require_scope(caller, write)
    if edits_members:
        require_tos(account)
        if audience.forced_operation_status == FLAGGED_STATUS:
            raise audience_flagged()
    return audience
