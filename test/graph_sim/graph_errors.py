"""Meta's error bodies, and every refusal the simulator can answer with.

All refusals go through GraphError so that HTTP status, code and subcode stay as in
the reference's classification table (docs/graph-api.md §5); endpoint code never builds
an error body by hand.
"""


class GraphError(Exception):
    """A refused Graph request: rendered as {"error": {...}} with an HTTP status."""

    def __init__(self, status, code, message, subcode=None, error_type="OAuthException",
                 transient=None, user_title=None, user_msg=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.subcode = subcode
        self.message = message
        self.error_type = error_type
        self.transient = transient
        self.user_title = user_title
        self.user_msg = user_msg

    def body(self, fbtrace_id):
        error = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.transient is not None:
            error["is_transient"] = self.transient
        if self.user_title:
            error["error_user_title"] = self.user_title
        if self.user_msg:
            error["error_user_msg"] = self.user_msg
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}


# --- request shape (code 100 unless noted) -------------------------------------------

def invalid_parameter(message, subcode=None):
    return GraphError(400, 100, f"(#100) {message}", subcode, user_title="Invalid parameter")


def missing_parameter(name):
    return invalid_parameter(f"The parameter {name} is required")


def missing_version():
    return GraphError(400, 100, "(#100) Unsupported request: the path must start with an API "
                      "version, e.g. /v26.0/me", error_type="GraphMethodException")


def unknown_object(object_id, method):
    return GraphError(400, 100, f"Unsupported {method.lower()} request. Object with ID "
                      f"'{object_id}' does not exist, cannot be loaded due to missing "
                      "permissions, or does not support this operation.", 33,
                      error_type="GraphMethodException")


def unknown_path(components):
    return GraphError(400, 2500, f"Unknown path components: {components}")


def unknown_field(field, node_type):
    return invalid_parameter(f"Tried accessing nonexisting field ({field}) on node type "
                             f"({node_type})")


def too_many_rows(count, limit):
    # Reference §4.1: oversized uploads fail as the unknown error 1/99, not as a 100.
    return GraphError(500, 1, f"An unknown error occurred ({count} rows sent, at most {limit} "
                      "per request)", 99, transient=False)


def too_much_data():
    return GraphError(500, 1, "Please reduce the amount of data you're asking for, then retry "
                      "your request", transient=False)


def unsupported_by_simulator(what):
    return invalid_parameter(f"{what} is not simulated (see test/graph_sim/README.md)")


# --- authentication and permission ---------------------------------------------------

def missing_token():
    return GraphError(400, 104, "An access token is required to request this resource.")


def invalid_token():
    return GraphError(400, 190, "Invalid OAuth access token - Cannot parse access token", 467)


def expired_token():
    return GraphError(400, 190, "Error validating access token: Session has expired.", 463)


def app_token_not_allowed():
    return GraphError(400, 190, "An app access token cannot be used for this request; use a "
                      "user or system user token.", 467)


def missing_appsecret_proof():
    return GraphError(400, 100, "API calls from the server require an appsecret_proof argument",
                      error_type="GraphMethodException")


def invalid_appsecret_proof(reason):
    return GraphError(400, 100, f"Invalid appsecret_proof provided in the API argument ({reason})",
                      error_type="GraphMethodException")


def missing_ads_management():
    # Reference §5.2: 294 is the missing-ads_management code; 403 as for the 200 family.
    return GraphError(403, 294, "(#294) Managing advertisements requires an access token with "
                      "the extended permission for ads_management")


def missing_read_permission():
    return GraphError(403, 200, "(#200) Ad account owner has NOT grant ads_management or "
                      "ads_read permission")


def no_account_access(account_id):
    return GraphError(403, 200, f"(#200) The user does not have permission to act on ad account "
                      f"act_{account_id}")


def tos_not_accepted(account_id):
    return GraphError(403, 200, "(#200) Custom Audience Terms Not Accepted: accept the Custom "
                      "Audience Terms of Service at https://business.facebook.com/ads/manage/"
                      f"customaudiences/tos/?act={account_id}", 1870090,
                      user_title="Custom Audience Terms Not Accepted")


# --- audiences -----------------------------------------------------------------------

def audience_deleted(audience_id):
    return GraphError(400, 100, f"(#100) Custom Audience {audience_id} has been deleted", 1487366,
                      user_title="Audience deleted")


def audience_flagged():
    return GraphError(400, 100, "(#100) This audience was flagged for integrity reasons; its "
                      "members cannot be edited", 1713230)


def audience_limit_reached(limit):
    # Not in the reference; Meta's "Failed to create custom audience" code.
    return GraphError(400, 2654, f"(#2654) Failed to create custom audience: the ad account has "
                      f"reached the limit of {limit} customer file custom audiences")


def replace_error(subcode, message):
    """2650 with one of the reference §3.3 subcodes."""
    return GraphError(400, 2650, f"(#2650) Failed to update the custom audience: {message}",
                      subcode)


def update_in_progress():
    return replace_error(1870145, "Audience Update In Progress: a replace is running on this "
                         "audience")


def replace_timed_out():
    return replace_error(1870158, "Replace Session Timed Out")


def invalid_replace_batch():
    return replace_error(1870147, "Invalid Upload Batch for Replace: batch_seq 1 was never "
                         "received for this session")


def replace_finished():
    return replace_error(1870159, "Replace Session Finished: a batch with last_batch_flag was "
                         "already received")


# --- injected faults -----------------------------------------------------------------

THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80000: "(#80000) There have been too many calls from this ad-account.",
    80003: "(#80003) There have been too many calls to this ad-account. Wait a bit and try again.",
    80004: "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
    80014: "(#80014) There have been too many calls to this ad-account. Wait a bit and try again.",
}


def throttled(code, subcode, status):
    return GraphError(status, code, THROTTLE_MESSAGES[code], subcode, transient=True)


def server_error(code):
    if code == 1:
        return GraphError(500, 1, "An unknown error occurred", transient=False)
    return GraphError(500, 2, "An unexpected error has occurred. Please retry your request later.",
                      transient=True)
