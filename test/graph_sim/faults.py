"""Injected faults and latency, chosen per request by rules, deterministic with a seed.

A rule matches requests by method and path template. It fires for the next `count`
matching requests, or with `probability` drawn from the seeded generator, or both, or
always. The decision is taken before the request touches any state, so a refused request
changes nothing; `drop_after` is the one kind that lets the request apply, then closes the
connection without answering.
"""

import random
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass

from graph_request import ENDPOINT_TEMPLATES
from graph_errors import THROTTLE_MESSAGES
from model import ConfigError

KINDS = ("latency", "throttle", "server_error", "html_error", "drop_before", "drop_after")
METHODS = ("GET", "POST", "DELETE")
INJECTED_LOG_SIZE = 10_000


@dataclass
class FaultRule:
    kind: str
    method: str = None           # None: any method
    endpoint: str = None         # a path template such as "/{audience_id}/users"; None: any
    count: int = None            # fires this many more times; None: no limit
    probability: float = None    # chance to fire on a matching request; None: always
    code: int = None             # throttle: 4, 17, 613, 800xx; server_error: 1 or 2
    subcode: int = None
    status: int = None           # HTTP status override
    regain_minutes: int = 1      # throttle: estimated_time_to_regain_access
    reset_seconds: int = 60      # throttle: X-Ad-Account-Usage reset_time_duration
    ms: float = 0.0              # latency
    jitter_ms: float = 0.0       # latency: plus uniform [0, jitter_ms)
    id: int = 0
    fired: int = 0

    def matches(self, method, template):
        return ((self.method is None or self.method == method)
                and (self.endpoint is None or self.endpoint == template)
                and (self.count is None or self.count > 0))

    def draw(self, rng):
        return self.probability is None or rng.random() < self.probability

    def fire(self):
        self.fired += 1
        if self.count is not None:
            self.count -= 1

    def http_status(self):
        if self.status is not None:
            return self.status
        if self.kind == "throttle":
            return 429 if self.code >= 80000 else 400
        return {"server_error": 500, "html_error": 502}.get(self.kind, 200)


@dataclass
class FaultDecision:
    delay_seconds: float = 0.0
    rule: FaultRule = None        # the fault to inject, None for a normal request


class FaultPlan:
    def __init__(self, seed=0):
        self._lock = threading.Lock()
        self.reset(seed)

    def reset(self, seed):
        with self._lock:
            self._rules = []
            self._next_id = 1
            self._rng = random.Random(seed)
            self._injected = deque(maxlen=INJECTED_LOG_SIZE)
            self._injected_counts = Counter()

    def reseed(self, seed):
        with self._lock:
            self._rng = random.Random(seed)

    def add(self, documents):
        """Validate every rule first, then add them all; return their ids."""
        if not isinstance(documents, list):
            raise ConfigError("faults must be an array of rules")
        rules = [parse_rule(document) for document in documents]
        with self._lock:
            for rule in rules:
                rule.id = self._next_id
                self._next_id += 1
                self._rules.append(rule)
        return [rule.id for rule in rules]

    def clear(self):
        with self._lock:
            self._rules = []

    def decide(self, method, template, request_seq):
        decision = FaultDecision()
        latency_chosen = False
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, template):
                    continue
                if rule.kind == "latency":
                    if latency_chosen or not rule.draw(self._rng):
                        continue
                    latency_chosen = True
                    jitter = self._rng.uniform(0, rule.jitter_ms) if rule.jitter_ms else 0.0
                    decision.delay_seconds = (rule.ms + jitter) / 1000
                    rule.fire()
                elif decision.rule is None and rule.draw(self._rng):
                    decision.rule = rule
                    rule.fire()
                    self._injected_counts[rule.kind] += 1
                    self._injected.append({"request_seq": request_seq, "rule": rule.id,
                                           "kind": rule.kind, "method": method,
                                           "endpoint": template, "code": rule.code})
        return decision

    def describe(self):
        with self._lock:
            return {"rules": [asdict(rule) for rule in self._rules],
                    "injected_counts": dict(self._injected_counts),
                    "injected": list(self._injected)}

    def injected_counts(self):
        with self._lock:
            return dict(self._injected_counts)


_DEFAULT_CODES = {"throttle": 80003, "server_error": 2}
_ALLOWED_CODES = {"throttle": set(THROTTLE_MESSAGES), "server_error": {1, 2}}
_RULE_FIELDS = set(FaultRule.__dataclass_fields__) - {"id", "fired"}  # those two are ours


def parse_rule(document):
    if not isinstance(document, dict):
        raise ConfigError("a fault rule must be a JSON object")
    unknown = set(document) - _RULE_FIELDS
    if unknown:
        raise ConfigError(f"unknown fault rule fields {sorted(unknown)}")
    rule = FaultRule(**document)
    if rule.kind not in KINDS:
        raise ConfigError(f"fault kind must be one of {list(KINDS)}")
    if rule.method is not None and rule.method not in METHODS:
        raise ConfigError(f"fault method must be one of {list(METHODS)}")
    if rule.endpoint is not None and rule.endpoint not in ENDPOINT_TEMPLATES:
        raise ConfigError(f"fault endpoint must be one of {list(ENDPOINT_TEMPLATES)}")
    if rule.count is not None and (type(rule.count) is not int or rule.count < 1):
        raise ConfigError("fault count must be an integer >= 1")
    if rule.probability is not None and not (type(rule.probability) in (int, float)
                                             and 0 <= rule.probability <= 1):
        raise ConfigError("fault probability must be between 0 and 1")
    for name in ("ms", "jitter_ms", "regain_minutes", "reset_seconds"):
        if type(getattr(rule, name)) not in (int, float) or getattr(rule, name) < 0:
            raise ConfigError(f"fault {name} must be a number >= 0")
    if rule.kind in _ALLOWED_CODES:
        if rule.code is None:
            rule.code = _DEFAULT_CODES[rule.kind]
        if rule.code not in _ALLOWED_CODES[rule.kind]:
            allowed = sorted(_ALLOWED_CODES[rule.kind])
            raise ConfigError(f"{rule.kind} code must be one of {allowed}")
    elif rule.code is not None or rule.subcode is not None:
        raise ConfigError(f"a {rule.kind} rule takes no code")
    if rule.status is not None and (type(rule.status) is not int or not 100 <= rule.status <= 599):
        raise ConfigError("fault status must be an HTTP status code")
    return rule
