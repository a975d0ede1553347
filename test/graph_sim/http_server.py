"""HTTP/1.1 and HTTPS plumbing for the simulator, on 127.0.0.1 only.

What a libcurl multi client needs: keep-alive, a Content-Length on every answer, one write
per small answer with Nagle off (no delayed-ACK stalls), an immediate 100 Continue, chunked
request bodies, TLS handshakes in the connection's thread rather than the accept loop, and
connections closed without an answer when a fault says so. Nothing is logged that could
hold a token: request lines are logged without their query string, and only with --verbose.
"""

import ssl
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from exchange import Exchange, Reply, json_reply

LISTEN_HOST = "127.0.0.1"
MAX_BODY_BYTES = 512 * 1024 * 1024
IDLE_TIMEOUT_SECONDS = 300


class GraphSimServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port, app, tls_context=None, verbose=False):
        self.app = app
        self.tls_context = tls_context
        self.verbose = verbose
        super().__init__((LISTEN_HOST, port), _Handler)

    @property
    def port(self):
        return self.server_address[1]

    @property
    def scheme(self):
        return "https" if self.tls_context else "http"

    def finish_request(self, request, client_address):
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(IDLE_TIMEOUT_SECONDS)
        try:
            connection = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.log(f"TLS handshake failed: {error.__class__.__name__}")
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            connection.close()

    def handle_error(self, request, client_address):
        """A client that went away mid-request is normal here; say so only when asked."""
        self.log(f"connection error: {sys.exc_info()[1]!r}")

    def log(self, message):
        if self.verbose:
            print(f"graph_sim: {message}", file=sys.stderr, flush=True)


class _BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "graph-sim"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    timeout = IDLE_TIMEOUT_SECONDS

    def do_GET(self):
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def version_string(self):
        return self.server_version

    def handle_expect_100(self):
        accepted = super().handle_expect_100()
        self.wfile.flush()  # the write buffer would otherwise hold "100 Continue" back
        return accepted

    def _serve(self):
        try:
            body = self._read_body()
        except _BadRequest as error:
            self.close_connection = True
            self._send(json_reply(error.status, {"error": {"message": str(error),
                                                           "type": "SimulatorHttpError"}}))
            return
        if body is None:  # the client went away mid-body
            self.close_connection = True
            return
        try:
            reply = self.server.app.handle(
                Exchange(self.command, self.path, self.headers, body, self.server.scheme))
        except Exception:  # a simulator bug: loud on stderr, never a plausible Graph answer
            traceback.print_exc()
            reply = json_reply(500, {"error": {"message": "graph_sim internal error; see its "
                                               "stderr", "type": "SimulatorInternalError"}})
        if reply.status is None:
            self.close_connection = True
            self.server.log(f"{self.command} {self.path.partition('?')[0]} dropped on purpose")
            return
        self._send(reply)

    def _send(self, reply: Reply):
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise _BadRequest(400, "invalid Content-Length")
        size = int(length)
        if size > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        body = self.rfile.read(size)
        return body if len(body) == size else None

    def _read_chunked(self):
        chunks = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return None
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest(413, "request body too large")
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                return None
            chunks.append(chunk)
            self.rfile.readline()  # the CRLF after each chunk

    def log_request(self, code="-", size="-"):
        self.server.log(f"{self.command} {self.path.partition('?')[0]} {code}")

    def log_message(self, format, *args):
        pass  # the base class would log request lines with their query string (tokens)
