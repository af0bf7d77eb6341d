"""Query console: a web page on 127.0.0.1 for people who would rather look than read.

It is one more client of the Thrift server (PyHive over JDBC's wire protocol), so it
needs no private access: every query runs in its own server session, exactly as a
beeline user's would.  The page (``console_static/index.html``) polls for results,
so long queries show their progress and can be cancelled.

With password authentication on, the page asks for a user name and password (HTTP Basic, on
127.0.0.1) and runs every query as that user: the Thrift server checks the password, the
console only passes it through, and a user sees only their own queries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from server.settings import PROJECT_ROOT
from server.sqlscript import returns_rows, split_statements
from server.thrift import clean_message, connect, login_refused, probe_context, server_message
from udfs.audio import open_audio_file
from udfs.errors import AudioError

STATIC_DIR = Path(__file__).resolve().parent / "console_static"
EXAMPLES_DIR = PROJECT_ROOT / "sql" / "examples"
MAX_ROWS = 1000
MAX_CELL_CHARS = 4000
#: Finished queries kept for the page to fetch, oldest dropped first.
MAX_KEPT_QUERIES = 50
#: Longest a status request is held open (long poll), seconds.
MAX_WAIT_S = 10.0
#: How long a checked login is trusted before the Thrift server is asked again, seconds.
LOGIN_CACHE_S = 60.0


def cell(value):
    """A JSON-safe cell: bytes become a size note, long text is cut."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[:MAX_CELL_CHARS] + "…"
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return str(value)


class QueryFailed(Exception):
    """The server reported the statement as failed; the message is the server's."""


@dataclass
class QueryJob:
    sql: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = "running"  # running, done, error, cancelled
    statement: int = 0
    statements: int = 0
    columns: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    truncated: bool = False
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cursor: object = None
    user: str = "console"
    password: str | None = field(default=None, repr=False)
    cancel_requested: bool = False
    ended: threading.Event = field(default_factory=threading.Event)

    def as_json(self) -> dict:
        end = self.finished or time.monotonic()
        return {
            "id": self.id,
            "state": self.state,
            "elapsed_s": round(end - self.started, 2),
            "statement": self.statement,
            "statements": self.statements,
            "columns": self.columns,
            "rows": self.rows,
            "truncated": self.truncated,
            "error": self.error,
        }


class Console:
    """Runs console queries against the Thrift server and serves the page."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        jdbc_host: str,
        jdbc_port: int,
        audio_roots: Sequence[str],
        auth: bool = False,
        tls: bool = False,
    ):
        self.host, self.port = host, port
        self.jdbc_host, self.jdbc_port = jdbc_host, jdbc_port
        self.audio_roots = tuple(audio_roots)
        self.auth, self.tls = auth, tls
        self._logins: dict[tuple[str, bytes], float] = {}
        self.jobs: dict[str, QueryJob] = {}
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None

    # queries ---------------------------------------------------------------------------------
    def _connect(self, user: str, password: str | None):
        # TLS to the server's own port in this process: nothing to authenticate on that hop.
        return connect(
            self.jdbc_host,
            self.jdbc_port,
            username=user,
            password=password,
            ssl_context=probe_context() if self.tls else None,
        )

    def check_login(self, user: str, password: str) -> bool:
        """Ask the Thrift server whether the credentials log in; successes are cached briefly."""
        key = (user, hashlib.sha256(password.encode("utf-8")).digest())
        now = time.monotonic()
        if self._logins.get(key, 0.0) > now:
            return True
        try:
            self._connect(user, password).close()
        except Exception as exc:
            if login_refused(exc):
                return False
            raise
        with self._lock:
            self._logins = {k: t for k, t in self._logins.items() if t > now}
            self._logins[key] = now + LOGIN_CACHE_S
        return True

    def submit(self, sql: str, user: str = "console", password: str | None = None) -> QueryJob:
        statements = split_statements(sql)
        job = QueryJob(sql=sql, statements=len(statements), user=user, password=password)
        with self._lock:
            self.jobs[job.id] = job
            while len(self.jobs) > MAX_KEPT_QUERIES:
                self.jobs.pop(next(iter(self.jobs)))
        if not statements:
            job.state, job.error, job.finished = (
                "error",
                "nothing to run: the editor holds no SQL statement",
                time.monotonic(),
            )
            job.ended.set()
            return job
        threading.Thread(
            target=self._run, args=(job, statements), daemon=True, name=f"console-{job.id[:8]}"
        ).start()
        return job

    def _run(self, job: QueryJob, statements: list[str]) -> None:
        connection = None
        try:
            connection = self._connect(job.user, job.password)
            job.cursor = connection.cursor()
            for number, statement in enumerate(statements, start=1):
                if job.cancel_requested:
                    break
                job.statement = number
                job.cursor.execute(statement, async_=True)
                self._wait(job)
                if job.cancel_requested:
                    break
                # A script shows the result of its last statement that returns rows: a command
                # after it (05_evaluate.sql ends with UNCACHE TABLE) answers an empty "Result".
                if job.cursor.description:
                    rows = job.cursor.fetchmany(MAX_ROWS + 1)
                    if rows or returns_rows(statement):
                        job.columns = [column[0] for column in job.cursor.description]
                        job.truncated = len(rows) > MAX_ROWS
                        job.rows = [[cell(v) for v in row] for row in rows[:MAX_ROWS]]
            job.state = "cancelled" if job.cancel_requested else "done"
        except QueryFailed as exc:
            job.state, job.error = "error", str(exc)
        except Exception as exc:
            job.state = "cancelled" if job.cancel_requested else "error"
            job.error = None if job.cancel_requested else server_message(exc)
        finally:
            job.finished = time.monotonic()
            job.ended.set()
            if connection is not None:
                try:
                    connection.close()
                except Exception:
                    pass  # the server may already have dropped a cancelled operation

    @staticmethod
    def _wait(job: QueryJob) -> None:
        """Poll the running statement; raise with the server's message if it failed."""
        from TCLIService.ttypes import TOperationState

        running = (
            TOperationState.INITIALIZED_STATE,
            TOperationState.PENDING_STATE,
            TOperationState.RUNNING_STATE,
        )
        while True:
            if job.cancel_requested:
                # Cancelled from this thread: a PyHive connection must not be used by two threads at
                # once.
                job.cursor.cancel()
                return
            status = job.cursor.poll()
            if status.operationState == TOperationState.ERROR_STATE:
                raise QueryFailed(clean_message(status.errorMessage) or "the statement failed")
            if status.operationState not in running:
                return
            time.sleep(0.2)

    def cancel(self, job_id: str) -> QueryJob | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        if job.state == "running":
            job.cancel_requested = True  # the job's own thread cancels the operation on the server
        return job

    # http -------------------------------------------------------------------------------------
    def start(self) -> None:
        console = self

        class Handler(ConsoleHandler):
            app = console

        self._http = ThreadingHTTPServer((self.host, self.port), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True, name="console-http").start()

    def allowed_hosts(self) -> set[str] | None:
        """``Host`` values of requests meant for this console; None: any (bound to every
        interface, where the operator chose the names)."""
        port = self._http.server_address[1] if self._http is not None else self.port
        host = self.host.lower()
        if host in ("0.0.0.0", "::", ""):
            return None
        # The loopback names always: a port published to the host's loopback (docker-compose)
        # is reached as 127.0.0.1 whatever the console binds, and a rebound DNS name arrives
        # under the attacker's name, not these.
        names = {host, "127.0.0.1", "localhost", "[::1]"}
        return {f"{name}:{port}" for name in names}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


def basic_credentials(header: str) -> tuple[str | None, str]:
    """User and password from an HTTP Basic ``Authorization`` header; (None, "") if there are
    none."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None, ""
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None, ""
    return (user, password) if sep and user else (None, "")


def examples() -> list[dict]:
    return [
        {"name": p.name, "sql": p.read_text(encoding="utf-8")}
        for p in sorted(EXAMPLES_DIR.glob("*.sql"))
    ]


class ConsoleHandler(BaseHTTPRequestHandler):
    app: Console
    #: The password of the request being handled, once _login accepted it.
    password: str | None = None
    server_version = "EmoticanaConsole"

    def log_message(self, *args) -> None:  # the console's own access log would drown the server's
        pass

    def _json(self, value, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(value).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _file(self, path: Path, content_type: str | None = None) -> None:
        self._bytes(
            path.read_bytes(),
            content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        )

    def _bytes(self, data: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _same_site(self, *, state_changing: bool) -> bool:
        """Refuse (403, True returned as False) a request another site's page made.

        ``Host`` must name this console (a DNS-rebinding page reaches 127.0.0.1 under its own
        name); a browser's ``Origin``, when sent, must be this console; a request that starts
        or cancels a query must be JSON, which a cross-site form or ``text/plain`` fetch cannot
        send without a preflight this console never answers.
        """
        host = (self.headers.get("Host") or "").strip().lower()
        origin = (self.headers.get("Origin") or "").strip().lower()
        allowed = self.app.allowed_hosts()
        reason = None
        if allowed is not None and host not in allowed:
            reason = f"Host {host!r} is not this console"
        elif origin and origin != f"http://{host}":
            reason = f"cross-site request from {origin!r}"
        elif state_changing and self.command == "POST":
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if kind != "application/json":
                reason = "send queries as application/json"
        if reason is None:
            return True
        self._json({"error": f"refused: {reason}"}, HTTPStatus.FORBIDDEN)
        return False

    def _login(self) -> str | None:
        """The logged-in user (or "console" without authentication); None once a 401 is sent."""
        if not self.app.auth:
            return "console"
        user, password = basic_credentials(self.headers.get("Authorization", ""))
        try:
            accepted = user is not None and self.app.check_login(user, password)
        except Exception as exc:
            self._json(
                {"error": f"cannot reach the SQL server: {server_message(exc)}"},
                HTTPStatus.BAD_GATEWAY,
            )
            return None
        if accepted:
            self.password = password
            return user
        body = b'{"error": "log in with an Emoticana user name and password"}'
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="Emoticana", charset="UTF-8"')
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None

    def _own_job(self, job_id: str, user: str) -> QueryJob | None:
        job = self.app.jobs.get(job_id)
        return job if job is not None and job.user == user else None

    def do_GET(self) -> None:
        if not self._same_site(state_changing=False):
            return
        user = self._login()
        if user is None:
            return
        url = urlparse(self.path)
        if url.path in ("/", "/index.html"):
            return self._file(STATIC_DIR / "index.html", "text/html; charset=utf-8")
        if url.path == "/api/examples":
            return self._json(examples())
        if url.path.startswith("/api/queries/"):
            job = self._own_job(url.path.rsplit("/", 1)[-1], user)
            if job is None:
                return self._json({"error": "no such query"}, HTTPStatus.NOT_FOUND)
            # Long poll: ?wait=S holds the answer until the query ends or S seconds pass.
            try:
                wait = float(parse_qs(url.query).get("wait", ["0"])[0])
            except ValueError:
                wait = 0.0
            job.ended.wait(min(MAX_WAIT_S, wait) if wait > 0 else 0.0)
            return self._json(job.as_json())
        if url.path == "/api/audio":
            return self._audio(parse_qs(url.query).get("path", [""])[0])
        return self._json({"error": f"no page {url.path}"}, HTTPStatus.NOT_FOUND)

    def _audio(self, path: str) -> None:
        try:
            with open_audio_file(path, self.app.audio_roots) as handle:
                data = handle.read()  # the whole recording: the player seeks in it
        except AudioError as exc:
            return self._json({"error": str(exc)}, HTTPStatus.FORBIDDEN)
        content_type = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg"}.get(
            Path(path).suffix.lower()
        )
        return self._bytes(data, content_type or "application/octet-stream")

    def do_POST(self) -> None:
        if not self._same_site(state_changing=True):
            return
        user = self._login()
        if user is None:
            return
        if urlparse(self.path).path != "/api/queries":
            return self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if length < 0:
                raise ValueError("negative Content-Length")  # read(-1) would wait for EOF
            sql = json.loads(self.rfile.read(length) or b"{}").get("sql", "")
        except (ValueError, AttributeError):
            return self._json({"error": 'send JSON: {"sql": "..."}'}, HTTPStatus.BAD_REQUEST)
        password = self.password if self.app.auth else None
        return self._json(self.app.submit(str(sql), user, password).as_json(), HTTPStatus.ACCEPTED)

    def do_DELETE(self) -> None:
        if not self._same_site(state_changing=True):
            return
        user = self._login()
        if user is None:
            return
        url = urlparse(self.path)
        if not url.path.startswith("/api/queries/"):
            return self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        own = self._own_job(url.path.rsplit("/", 1)[-1], user)
        job = self.app.cancel(own.id) if own else None
        return (
            self._json(job.as_json())
            if job
            else self._json({"error": "no such query"}, HTTPStatus.NOT_FOUND)
        )
