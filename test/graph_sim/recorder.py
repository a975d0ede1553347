"""What tests inspect about the traffic: per-endpoint counts, rows, versions, the in-flight
high-water mark, a bounded request log, and the usage headers derived from recent calls.

Usage numbers follow the reference §4.2 budgets so the client's pacing sees plausible
values: the custom-audience BUC counts calls per ad account over a rolling hour; the
ad-account score counts reads 1 and other writes 3 over 300 s (member uploads are left
out, since Meta does not document that they count); the app usage uses 10,000 calls/hour.
"""

import json
import threading
import time
from collections import Counter, defaultdict, deque

HOUR = 3600.0
SCORE_DECAY_SECONDS = 300.0
APP_CALLS_PER_HOUR = 10_000
BUC_BASE_CALLS = {"standard_access": 5_000, "advanced_access": 190_000}
BUC_CALLS_PER_AUDIENCE = 40
BUC_CAP = 700_000
SCORE_MAX = {"standard_access": 60, "advanced_access": 9_000}
SCORE_BLOCK_SECONDS = {"standard_access": 300, "advanced_access": 60}
TOTALS = ("requests", "payload_in_query_requests", "token_in_query_requests",
          "empty_hash_cells", "invalid_entries", "dropped_connections")
MEMBER_WRITE_TEMPLATES = frozenset(("/{audience_id}/users", "/{audience_id}/usersreplace"))


class Recorder:
    def __init__(self, log_size):
        self._lock = threading.Lock()
        self.reset(log_size)

    def reset(self, log_size):
        with self._lock:
            self._seq = 0
            self._in_flight = 0
            self._max_in_flight = 0
            self._endpoints = defaultdict(lambda: {"requests": 0, "rows_received": 0,
                                                   "statuses": Counter()})
            self._versions = Counter()
            self._last_version = None
            self._totals = Counter(dict.fromkeys(TOTALS, 0))
            self._log = deque(maxlen=log_size)
            self._account_calls = defaultdict(deque)   # account id -> call times (monotonic)
            self._account_points = defaultdict(deque)  # account id -> (time, points)
            self._app_calls = deque()

    def resize_log(self, log_size):
        with self._lock:
            self._log = deque(self._log, maxlen=log_size)

    def enter(self):
        """A Graph request starts; return its sequence number."""
        with self._lock:
            self._seq += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return self._seq

    def leave(self):
        with self._lock:
            self._in_flight -= 1

    def record(self, entry, rows_applied):
        """Count one finished request (entry is its request-log line)."""
        endpoint = f"{entry['method']} {entry['path']}"
        with self._lock:
            stats = self._endpoints[endpoint]
            stats["requests"] += 1
            stats["rows_received"] += rows_applied
            stats["statuses"][str(entry["status"])] += 1
            if entry["version"]:
                self._versions[entry["version"]] += 1
                self._last_version = entry["version"]
            self._totals["requests"] += 1
            self._totals["payload_in_query_requests"] += entry["payload_in_query"]
            self._totals["token_in_query_requests"] += entry["token_in_query"]
            self._totals["empty_hash_cells"] += entry.get("empty_hash_cells", 0)
            self._totals["invalid_entries"] += entry.get("num_invalid_entries", 0)
            self._totals["dropped_connections"] += entry["status"] is None
            self._log.append(entry)

    def note_call(self, account_id, template, method):
        """Count a call against the app and, when it has one, its ad account's budgets."""
        now = time.monotonic()
        with self._lock:
            self._app_calls.append(now)
            if account_id is None:
                return
            self._account_calls[account_id].append(now)
            if template not in MEMBER_WRITE_TEMPLATES:
                self._account_points[account_id].append((now, 1 if method == "GET" else 3))

    def usage_headers(self, account_id, tier, active_audiences, buc_header, throttle_rule=None):
        """The three usage headers (reference §4.3), saturated for the throttle kind injected."""
        now = time.monotonic()
        code = throttle_rule.code if throttle_rule else None
        with self._lock:
            _prune(self._app_calls, now - HOUR)
            app_pct = 100 if code == 4 else _percent(len(self._app_calls), APP_CALLS_PER_HOUR)
            headers = {"X-App-Usage": _compact({"call_count": app_pct,
                                                 "total_cputime": app_pct // 2,
                                                 "total_time": app_pct // 2})}
            if account_id is None:
                headers.update(_buc_headers(buc_header, "{}"))
                return headers
            calls = self._account_calls[account_id]
            _prune(calls, now - HOUR)
            budget = min(BUC_CAP, BUC_BASE_CALLS[tier] + BUC_CALLS_PER_AUDIENCE * active_audiences)
            buc_blocked = code is not None and code >= 80000
            buc_pct = 100 if buc_blocked else _percent(len(calls), budget)
            buc = {account_id: [{"type": "custom_audience", "call_count": buc_pct,
                                 "total_cputime": buc_pct // 2, "total_time": buc_pct // 2,
                                 "estimated_time_to_regain_access":
                                     throttle_rule.regain_minutes if buc_blocked else 0,
                                 "ads_api_access_tier": tier}]}
            headers.update(_buc_headers(buc_header, _compact(buc)))
            points = self._account_points[account_id]
            while points and points[0][0] < now - SCORE_DECAY_SECONDS:
                points.popleft()
            score_blocked = code in (17, 613)
            score_pct = 100.0 if score_blocked else min(
                100.0, round(100.0 * sum(p for _, p in points) / SCORE_MAX[tier], 2))
            headers["X-Ad-Account-Usage"] = _compact({
                "acc_id_util_pct": score_pct,
                "reset_time_duration": (throttle_rule.reset_seconds if score_blocked
                                        else SCORE_BLOCK_SECONDS[tier] if score_pct >= 100 else 0),
                "ads_api_access_tier": tier})
            return headers

    def stats(self):
        with self._lock:
            return {
                **self._totals,
                "endpoints": {key: {**value, "statuses": dict(value["statuses"])}
                              for key, value in sorted(self._endpoints.items())},
                "versions": {"last": self._last_version, "counts": dict(self._versions)},
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }

    def requests(self, limit=None):
        with self._lock:
            entries = list(self._log)
        return entries[-limit:] if limit else entries


def _prune(times, older_than):
    while times and times[0] < older_than:
        times.popleft()


def _percent(used, budget):
    return min(100, used * 100 // budget)


def _compact(value):
    return json.dumps(value, separators=(",", ":"))


def _buc_headers(choice, value):
    if choice == "both":
        return {"X-Business-Use-Case-Usage": value, "X-Business-Use-Case": value}
    return {choice: value}
