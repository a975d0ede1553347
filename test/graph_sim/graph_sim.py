#!/usr/bin/env python3
"""A strict local simulator of the Meta Marketing (Graph) API, for connector's tests, demo
and benchmarks. Start it, read `READY port=N` from stdout, stop it with SIGTERM.

Options, control endpoints and the fault model are described in README.md next to this
file; `graph_sim.py --help` lists the options.
"""

import sys

sys.dont_write_bytecode = True  # leave nothing behind, not even __pycache__

import argparse  # noqa: E402  (after the line above, so that it covers our modules)
import json  # noqa: E402
import signal  # noqa: E402
import ssl  # noqa: E402
import threading  # noqa: E402

from http_server import GraphSimServer  # noqa: E402
from model import ConfigError  # noqa: E402
from simulator import Simulator  # noqa: E402

DEFAULT_TOKEN = "sim-token"
DEFAULT_AD_ACCOUNT = "act_1000000000000001"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Strict local simulator of the Meta Marketing (Graph) API. Binds "
                    "127.0.0.1 only and prints 'READY port=N' when it accepts connections.")
    add = parser.add_argument
    add("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one (default 0)")
    add("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate (chain)")
    add("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    add("--token", default=DEFAULT_TOKEN,
        help=f"access token of the default system user (default {DEFAULT_TOKEN!r})")
    add("--scopes", default="ads_management,ads_read,business_management",
        help="comma-separated scopes of --token "
             "(default ads_management,ads_read,business_management)")
    add("--ad-account", default=DEFAULT_AD_ACCOUNT,
        help=f"the default ad account, act_<digits> or <digits> (default {DEFAULT_AD_ACCOUNT})")
    add("--account-name", default="Simulated ad account", help="name of --ad-account")
    add("--tos-not-accepted", action="store_true",
        help="the default account has not accepted the Custom Audience Terms of Service")
    add("--app-id", help="app id reported by debug_token (default 1234567890)")
    add("--app-secret", help="require appsecret_proof on every request, made with this secret "
                             "(tests only: visible in the process list)")
    add("--replace-window-seconds", type=float,
        help="usersreplace session window (default 5400, Meta's 90 minutes)")
    add("--kept-rows-cap", type=int,
        help="an audience keeps listable rows up to this many members (default 200000)")
    add("--buc-header", choices=("X-Business-Use-Case-Usage", "X-Business-Use-Case", "both"),
        help="name of the business-use-case usage header (default X-Business-Use-Case-Usage)")
    add("--access-tier", choices=("standard_access", "advanced_access"),
        help="tier reported in the usage headers; sets their budgets (default standard_access)")
    add("--seed", type=int, help="seed of the fault generator (default 0)")
    add("--latency-ms", type=float, default=0.0, help="delay every Graph request by this much")
    add("--latency-jitter-ms", type=float, default=0.0,
        help="plus a seeded uniform delay in [0, this)")
    add("--fault", action="append", default=[], metavar="JSON",
        help="a fault rule as JSON (README: Faults); repeatable")
    add("--config", metavar="FILE",
        help="a JSON configuration document (README: Configuration) applied after the flags")
    add("--verbose", action="store_true",
        help="log connections and request paths (never query strings) to stderr")
    return parser.parse_args(argv)


def start_config(args):
    """The configuration document the flags (then --config) describe; /_sim/reset returns to it."""
    settings = {name: value for name, value in (
        ("app_id", args.app_id), ("app_secret", args.app_secret),
        ("replace_window_seconds", args.replace_window_seconds),
        ("kept_rows_cap", args.kept_rows_cap), ("buc_header", args.buc_header),
        ("access_tier", args.access_tier), ("seed", args.seed)) if value is not None}
    faults = []
    if args.latency_ms or args.latency_jitter_ms:
        faults.append({"kind": "latency", "ms": args.latency_ms,
                       "jitter_ms": args.latency_jitter_ms})
    faults += [json.loads(rule) for rule in args.fault]
    document = {
        "accounts": [{"id": args.ad_account, "name": args.account_name,
                      "tos_accepted": not args.tos_not_accepted}],
        "tokens": [{"token": args.token,
                    "scopes": [s.strip() for s in args.scopes.split(",") if s.strip()]}],
        "settings": settings,
        "faults": faults,
    }
    if args.config:
        with open(args.config, encoding="utf-8") as file:
            extra = json.load(file)
        if not isinstance(extra, dict):
            raise ConfigError("--config must hold a JSON object")
        for section in ("accounts", "tokens", "faults"):
            document[section] = document[section] + list(extra.pop(section, []))
        document["settings"] = {**settings, **extra.pop("settings", {})}
        document.update(extra)  # "time", and unknown sections for apply_config to refuse
    return document


def tls_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def main(argv=None):
    args = parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("graph_sim: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        simulator = Simulator(start_config(args))
        context = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    except (ConfigError, ValueError, OSError, ssl.SSLError) as error:
        print(f"graph_sim: {error}", file=sys.stderr)
        return 2
    server = GraphSimServer(args.port, simulator, context, args.verbose)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                               daemon=True)
    serving.start()
    print(f"READY port={server.port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
