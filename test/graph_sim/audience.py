"""Custom audiences and their upload sessions, as Meta exposes them (reference §2.3, §2.7, §3).

An audience owns its members, its sessions (replace and /users), and at most one open
replace. The replace window is enforced lazily: whoever touches the audience first after
the window has passed closes the replace, and the audience keeps what arrived in time.
"""

import math
from dataclasses import dataclass, field

from membership import MemberStore

OPERATION_STATUS_DESCRIPTIONS = {
    0: "Not available", 100: "Expiring", 200: "Normal", 400: "Warning", 410: "No upload",
    411: "Low match rate", 412: "High invalid rate", 414: "Replace in progress",
    415: "Replace failed", 450: "Out of date", 470: "Creator ad account inactive",
    471: "Flagged for integrity reasons", 500: "Error",
}
FLAGGED_STATUS = 471
TOO_SMALL_BELOW = 100  # members; Meta advises against smaller lists (delivery_status 300)
FIELD_NAMES = frozenset((  # what Audience.fields() returns, for `fields=` validation
    "id", "account_id", "name", "description", "subtype", "customer_file_source",
    "is_value_based", "retention_days", "approximate_count_lower_bound",
    "approximate_count_upper_bound", "operation_status", "delivery_status", "time_created",
    "time_updated", "time_content_updated", "data_source", "fields_violating_integrity_policy"))


@dataclass
class Session:
    """One caller-chosen session_id on one audience: a replace, or a run of /users calls."""
    audience_id: str
    session_id: int
    kind: str                      # "replace" | "users"
    start_time: float
    schema: tuple = None
    estimated_num_total: int = None
    num_received: int = 0
    num_invalid_entries: int = 0
    num_matched: int = 0
    end_time: float = None
    outcome: str = "open"          # open | finished | timed_out | audience_deleted
    restarts: int = 0              # batch_seq 1 received again while open (R3)
    batches: list = field(default_factory=list)
    staging: MemberStore = None    # the replace's new membership until it is swapped in

    def count(self, checked):
        self.num_received += checked.num_rows
        self.num_invalid_entries += checked.num_invalid_entries
        self.num_matched += checked.num_members

    def log_batch(self, method, batch_seq, last_batch_flag, rows, result):
        self.batches.append({"method": method, "batch_seq": batch_seq,
                             "last_batch_flag": last_batch_flag, "rows": rows, "result": result})

    def close(self, outcome, end_time):
        self.outcome = outcome
        self.end_time = end_time
        self.staging = None

    def edge(self):
        """The CustomAudienceSession node: numbers as strings (reference §2.7)."""
        progress, stage = 100, self.outcome
        if self.outcome == "open":
            total = self.estimated_num_total
            progress = min(99, self.num_received * 100 // total) if total else 0
            stage = "processing"
        return {"session_id": str(self.session_id), "start_time": str(int(self.start_time)),
                "end_time": str(int(self.end_time)) if self.end_time is not None else "0",
                "num_received": str(self.num_received),
                "num_invalid_entries": str(self.num_invalid_entries),
                "num_matched": str(self.num_matched), "progress": str(progress), "stage": stage}

    def log_entry(self):
        return {"audience_id": self.audience_id, "session_id": str(self.session_id),
                "kind": self.kind, "start_time": self.start_time, "end_time": self.end_time,
                "outcome": self.outcome, "restarts": self.restarts,
                "schema": list(self.schema) if self.schema else None,
                "num_received": self.num_received, "num_invalid_entries": self.num_invalid_entries,
                "batches": self.batches}


@dataclass
class Audience:
    id: str
    account_id: str
    name: str
    description: str
    customer_file_source: str
    is_value_based: bool
    retention_days: int
    members: MemberStore
    time_created: int
    subtype: str = "CUSTOM"
    time_updated: int = 0
    time_content_updated: int = 0
    deleted: bool = False
    forced_operation_status: int = None   # set by tests through /_sim/audiences/{id}
    sessions: dict = field(default_factory=dict)
    open_replace: Session = None

    def settle(self, now, window_seconds):
        """Close a replace whose window has passed: its staged rows become the audience."""
        replace = self.open_replace
        if replace is not None and now > replace.start_time + window_seconds:
            self.members = replace.staging
            replace.close("timed_out", replace.start_time + window_seconds)
            self.open_replace = None
            self.touch_content(now)

    def touch_content(self, now):
        self.time_content_updated = self.time_updated = int(now)

    def operation_status(self):
        if self.forced_operation_status is not None:
            code = self.forced_operation_status
        else:
            code = 414 if self.open_replace is not None else 200
        return {"code": code, "description": OPERATION_STATUS_DESCRIPTIONS.get(code, "Unknown")}

    def delivery_status(self):
        if len(self.members) < TOO_SMALL_BELOW:
            return {"code": 300, "description": "This audience is too small to be used."}
        return {"code": 200, "description": "This audience is ready for use."}

    def count_bounds(self):
        """Meta gives a range, never the count: here +-5 % around the member count."""
        count = len(self.members)
        return int(count * 0.95), math.ceil(count * 1.05)

    def fields(self):
        """Every readable field, for `fields=` selection."""
        lower, upper = self.count_bounds()
        return {
            "id": self.id, "account_id": self.account_id, "name": self.name,
            "description": self.description, "subtype": self.subtype,
            "customer_file_source": self.customer_file_source,
            "is_value_based": self.is_value_based, "retention_days": self.retention_days,
            "approximate_count_lower_bound": lower, "approximate_count_upper_bound": upper,
            "operation_status": self.operation_status(), "delivery_status": self.delivery_status(),
            "time_created": self.time_created, "time_updated": self.time_updated,
            "time_content_updated": self.time_content_updated,
            "data_source": {"type": "FILE_IMPORTED", "sub_type": "HASHES_OR_USER_IDS"},
            "fields_violating_integrity_policy": [],
        }

    def summary(self):
        """Inspection view (GET /_sim/audiences)."""
        return {"id": self.id, "account_id": self.account_id, "name": self.name,
                "deleted": self.deleted, "members": len(self.members),
                "rows_kept": self.members.rows_kept,
                "operation_status": self.operation_status(),
                "open_replace_session": (str(self.open_replace.session_id)
                                         if self.open_replace else None),
                "sessions": [str(s) for s in self.sessions]}
