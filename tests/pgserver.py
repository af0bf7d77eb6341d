"""A private PostgreSQL server on a free loopback port, for the shared-catalog tests.

The real server binaries (``make postgres`` installs them): ``initdb`` into a fresh
directory, ``pg_ctl start`` listening on 127.0.0.1 only with its socket in that
directory, one database and one password-protected role for the metastore.
PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to the
``postgres`` system user that the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with initdb; AssertionError if none."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    assert found, (
        "PostgreSQL server binaries are missing: run `make postgres` (apt-get install postgresql)"
    )
    return Path(found[-1]).parent


@dataclass
class PostgresServer:
    port: int
    database: str
    user: str
    password: str
    directory: Path
    bin_dir: Path
    run_as: str | None

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def _command(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def run(self, *args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run(
            self._command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            cwd=self.directory,
        )

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL as the cluster's superuser over the private Unix socket."""
        return self.run(
            str(self.bin_dir / "psql"),
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.directory),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            sql,
        ).stdout

    def stop(self) -> None:
        try:
            self.run(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(
    port: int, *, database: str = "emoticana", user: str = "emoticana"
) -> PostgresServer:
    bin_dir = postgres_bin_dir()
    run_as = "postgres" if os.geteuid() == 0 else None
    # Not under pytest's tmp dirs: those are private to root, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="emoticana-pg-"))
    if run_as:
        account = pwd.getpwnam(run_as)
        os.chown(directory, account.pw_uid, account.pw_gid)
    server = PostgresServer(
        port=port,
        database=database,
        user=user,
        password=secrets.token_hex(16),
        directory=directory,
        bin_dir=bin_dir,
        run_as=run_as,
    )
    try:
        server.run(
            str(bin_dir / "initdb"),
            "-D",
            str(directory / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-instructions",
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -c fsync=off"
        server.run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(directory / "data"),
            "-o",
            options,
            "-l",
            str(directory / "server.log"),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )
    except subprocess.CalledProcessError as exc:
        log = directory / "server.log"
        shutil.rmtree(directory, ignore_errors=True)
        raise AssertionError(
            f"PostgreSQL did not start: {exc.stderr or exc.stdout}"
            f"{log.read_text() if log.exists() else ''}"
        ) from None
    try:
        server.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{server.password}'")
        server.psql(f"CREATE DATABASE {database} OWNER {user}")
    except BaseException:
        server.stop()
        raise
    return server
