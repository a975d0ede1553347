"""Shared plumbing for the integration tests: psql against the throwaway
cluster and HTTP to the Graph API simulator that scripts/test.sh started.

Environment (set by scripts/test.sh): PGHOST, PGPORT, PGUSER, GRAPH_SIM_URL,
CONNECTOR_DATA_DIR, CONNECTOR_SERVER_LOG, CONNECTOR_REPO.
"""

import json
import os
import pwd
import subprocess
import time
import urllib.request

REPO = os.environ.get("CONNECTOR_REPO", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
SIM_URL = os.environ["GRAPH_SIM_URL"]
DATA_DIR = os.environ["CONNECTOR_DATA_DIR"]
SERVER_LOG = os.environ["CONNECTOR_SERVER_LOG"]
DATABASE = "connector_integration"
PG_BINDIR = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                           check=True).stdout.strip()


class SqlError(Exception):
    """A psql run that failed; sqlstate and message come from the server."""

    def __init__(self, sqlstate, message, output):
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate = sqlstate
        self.message = message
        self.output = output


def psql(sql, database=DATABASE, timeout=60, user=None):
    """Runs sql in one session (as user, else PGUSER); returns stdout, raises SqlError on an error."""
    completed = subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-d", database]
        + (["-U", user] if user else []),
        input="\\set VERBOSITY verbose\n" + sql,
        capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        for line in completed.stderr.splitlines():
            if line.startswith("ERROR:"):
                code, _, message = line[len("ERROR:"):].strip().partition(": ")
                raise SqlError(code, message, completed.stderr)
        raise SqlError("?????", completed.stderr.strip(), completed.stderr)
    return completed.stdout.strip()


def sim(path, document=None, method=None):
    """Calls a simulator control or inspection endpoint; returns its JSON."""
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(SIM_URL + path, data=data, method=method or ("POST" if data else "GET"))
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def add_sim_token(token, scopes=("ads_management", "ads_read"), user_id="300"):
    sim("/_sim/config", {"tokens": [{"token": token, "user_id": user_id, "scopes": list(scopes)}]})


def give_to_postgres(path, mode=0o600):
    """Makes a file the server's own, as a DBA would."""
    postgres = pwd.getpwnam("postgres")
    os.chown(path, postgres.pw_uid, postgres.pw_gid)
    os.chmod(path, mode)


def wait_for(condition, seconds, what):
    """Polls condition until it returns something true, which it returns; fails after seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def wait_for_server(database, seconds=60):
    """Waits until the server accepts connections to database again (after a restart)."""
    def ready():
        try:
            return psql("SELECT 1", database=database, timeout=5) == "1"
        except Exception:
            return False
    wait_for(ready, seconds, "the server to accept connections again")
