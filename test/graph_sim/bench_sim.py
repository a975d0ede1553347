#!/usr/bin/env python3
"""Measures the simulator's CPU cost per full-size upload, to show it is not the bottleneck
of a 10,000,000-row export (1,000 requests of 10,000 rows x 8 keys). Run by hand:

    python3 test/graph_sim/bench_sim.py [--requests 20] [--rows 10000] [--connections 1]

It starts the simulator, posts distinct payloads of SHA-256 rows (7 hashed keys plus
EXTERN_ID) over keep-alive connections, and reads the simulator's own process CPU time
from /_sim/stats before and after.
"""

import argparse
import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = ["EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "EXTERN_ID"]
TOKEN = "bench-token"


def payload_body(batch, rows):
    data = []
    for row in range(rows):
        seed = f"{batch}:{row}"
        data.append([hashlib.sha256(f"{key}{seed}".encode()).hexdigest() for key in SCHEMA[:-1]]
                    + [f"crm-{batch}-{row}"])
    return json.dumps({"payload": {"schema": SCHEMA, "is_raw": True, "data": data}}).encode()


def call(connection, method, path, body=None):
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    document = json.loads(response.read())
    if response.status != 200:
        raise SystemExit(f"{method} {path}: {response.status} {document}")
    return document


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=1)
    args = parser.parse_args()

    print(f"building {args.requests} payloads of {args.rows} rows x {len(SCHEMA)} keys ...",
          file=sys.stderr)
    bodies = [payload_body(batch, args.rows) for batch in range(args.requests)]
    simulator = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "graph_sim.py"), "--port", "0", "--token", TOKEN,
         "--ad-account", "act_42"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(simulator.stdout.readline().strip().split("=")[1])
        control = http.client.HTTPConnection("127.0.0.1", port)
        audience = call(control, "POST", "/v26.0/act_42/customaudiences", json.dumps(
            {"name": "bench", "subtype": "CUSTOM",
             "customer_file_source": "USER_PROVIDED_ONLY"}).encode())["id"]
        cpu_before = call(control, "GET", "/_sim/stats")["process_cpu_seconds"]
        started = time.perf_counter()
        pending = list(bodies)
        lock = threading.Lock()

        def worker():
            connection = http.client.HTTPConnection("127.0.0.1", port)
            while True:
                with lock:
                    if not pending:
                        return
                    body = pending.pop()
                call(connection, "POST", f"/v26.0/{audience}/users", body)

        threads = [threading.Thread(target=worker) for _ in range(args.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        cpu = call(control, "GET", "/_sim/stats")["process_cpu_seconds"] - cpu_before
        members = call(control, "GET", f"/_sim/audiences/{audience}")["members"]
    finally:
        simulator.terminate()
        simulator.wait()
    rows = args.requests * args.rows
    print(f"requests: {args.requests}, rows: {rows}, body: {len(bodies[0]) / 1e6:.1f} MB each, "
          f"members: {members}")
    print(f"simulator CPU: {cpu * 1000 / args.requests:.1f} ms per request, "
          f"{rows / cpu:,.0f} rows/s of CPU")
    print(f"wall: {wall * 1000 / args.requests:.1f} ms per request, {rows / wall:,.0f} rows/s "
          f"over {args.connections} connection(s)")


if __name__ == "__main__":
    main()
