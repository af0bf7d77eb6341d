"""Access: password authentication, TLS on the JDBC port, and their start-up checks.

Real server, real clients: PyHive, SQLAlchemy ``hive://`` and ``emoticana://``, the beeline
shipped with pyspark, the console over HTTP. Passwords are written with ``emoticana passwd``
and checked by the Java provider inside HiveServer2.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from thrift.transport.TTransport import TTransportException

from server.auth import hash_password, parse_password_file, read_password_file
from server.process import PROJECT_ROOT, ServerProcess
from server.thrift import connect, tls_client_context
from tests.helpers import BEELINE, assert_one_line_failure, serve
from udfs.errors import ConfigError

ALICE_PASSWORD = "correct-horse:battery-staple"  # beeline cannot send a password with spaces
REFUSED = "Error validating the login"
KEYSTORE_PASSWORD = "keystore-secret"
TRUSTSTORE_PASSWORD = "truststore-secret"


def passwd(
    auth_file: Path, user: str, password: str | None = None, *extra: str
) -> subprocess.CompletedProcess:
    """``emoticana passwd`` as a script runs it: the password on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "server", "passwd", user, "--auth-file", str(auth_file), *extra],
        cwd=PROJECT_ROOT,
        input="" if password is None else password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


def beeline(url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    command = [str(BEELINE), "-u", url, "--outputformat=csv2", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


# The password file, without a server ------------------------------------------------------------


def test_passwd_writes_salted_hashes_readable_by_owner_only(tmp_path):
    users = tmp_path / "users"
    for user, password in (("alice", "same password"), ("bob", "same password")):
        result = passwd(users, user, password, "--iterations", "1000")
        assert result.returncode == 0, result.stderr
    entries = read_password_file(users)
    assert sorted(entries) == ["alice", "bob"]
    assert (
        entries["alice"].salt != entries["bob"].salt
        and entries["alice"].hash != entries["bob"].hash
    )
    assert entries["alice"].verify("same password") and not entries["alice"].verify("same passwore")
    assert "same password" not in users.read_text()
    assert users.stat().st_mode & 0o077 == 0

    assert passwd(users, "alice", "changed", "--iterations", "1000").returncode == 0
    assert passwd(users, "bob", None, "--delete").returncode == 0
    entries = read_password_file(users)
    assert sorted(entries) == ["alice"] and entries["alice"].verify("changed")


@pytest.mark.parametrize("user", ["", "a:b", "with space", "#comment"])
def test_passwd_refuses_bad_user_names(tmp_path, user):
    result = passwd(tmp_path / "users", user, "pw")
    assert result.returncode == 2 and "user name" in result.stderr
    assert not (tmp_path / "users").exists()


def test_passwd_refuses_an_empty_password(tmp_path):
    result = passwd(tmp_path / "users", "alice", "")
    assert result.returncode == 2 and "password is empty" in result.stderr


@pytest.mark.parametrize(
    "line, problem",
    [
        ("alice:plain:secret", "is not user:pbkdf2-sha256"),
        ("alice:pbkdf2-sha256:many:c2FsdA==:aGFzaA==", "bad iterations"),
        ("alice:pbkdf2-sha256:1000:not base64!:aGFzaA==", "bad iterations"),
        (":pbkdf2-sha256:1000:c2FsdA==:aGFzaA==", "is not user:pbkdf2-sha256"),
    ],
)
def test_malformed_lines_name_their_number(line, problem):
    with pytest.raises(ConfigError, match=f"line 2.*{problem}"):
        parse_password_file("# users\n" + line + "\n")


def test_hash_is_pbkdf2_sha256_of_the_salt():
    import hashlib

    entry = hash_password("pw", iterations=5, salt=b"0123456789abcdef")
    assert entry.hash == hashlib.pbkdf2_hmac("sha256", b"pw", b"0123456789abcdef", 5, 32)
    assert parse_password_file(entry.line("u"))["u"] == entry


# Start-up checks: one line, exit 2, before Spark starts ------------------------------------------


def test_missing_auth_file_stops_start_up(tmp_path):
    result = serve(tmp_path, "--auth-file", str(tmp_path / "nope"))
    assert_one_line_failure(result, f"password file {tmp_path / 'nope'} does not exist")


def test_malformed_auth_file_stops_start_up(tmp_path):
    (tmp_path / "users").write_text("alice:secret\n")
    result = serve(tmp_path, env_overrides={"EMOTICANA_AUTH_FILE": str(tmp_path / "users")})
    assert_one_line_failure(result, "line 1 is not user:pbkdf2-sha256")


def test_auth_file_without_users_stops_start_up(tmp_path):
    (tmp_path / "users").write_text("# nobody yet\n")
    result = serve(tmp_path, "--auth-file", str(tmp_path / "users"))
    assert_one_line_failure(result, "has no users")


def test_keystore_without_password_stops_start_up(tmp_path, keystore):
    assert "EMOTICANA_TLS_KEYSTORE_PASSWORD" not in os.environ
    result = serve(tmp_path, "--tls-keystore", str(keystore["keystore"]))
    assert_one_line_failure(result, "EMOTICANA_TLS_KEYSTORE_PASSWORD is not")


def test_keystore_with_wrong_password_stops_start_up(tmp_path, keystore):
    result = serve(
        tmp_path,
        "--tls-keystore",
        str(keystore["keystore"]),
        env_overrides={"EMOTICANA_TLS_KEYSTORE_PASSWORD": "not-it"},
    )
    assert_one_line_failure(result, "does not open with EMOTICANA_TLS_KEYSTORE_PASSWORD")


# A server with password authentication ----------------------------------------------------------


@pytest.fixture(scope="module")
def auth_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("access") / "users"
    result = passwd(path, "alice", ALICE_PASSWORD)  # the default iteration count, as users get it
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, audio_root, auth_file):
    running = ServerProcess(
        home=tmp_path_factory.mktemp("auth-home"),
        audio_roots=[audio_root],
        extra_args=["--auth-file", str(auth_file)],
    ).start()
    yield running
    running.stop()


def clip(audio_root: Path) -> Path:
    return audio_root / "variants" / "pcm16_16k_mono.wav"


@pytest.mark.slow
def test_pyhive_logs_in_with_the_password(auth_server, audio_root):
    connection = connect("127.0.0.1", auth_server.port, username="alice", password=ALICE_PASSWORD)
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT current_user(), audio_info('{clip(audio_root)}').sample_rate")
        assert cursor.fetchall() == [("alice", 16000)]
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "user, password",
    [
        ("alice", "correct-horse:battery-stapler"),  # wrong password
        ("mallory", ALICE_PASSWORD),  # unknown user
        ("alice", ""),  # empty password
    ],
)
def test_wrong_password_or_unknown_user_is_refused(auth_server, user, password):
    from pyhive import hive

    with pytest.raises(Exception, match=REFUSED):
        hive.connect(
            host="127.0.0.1", port=auth_server.port, username=user, auth="CUSTOM", password=password
        )


@pytest.mark.slow
def test_repeated_failures_lock_the_name_for_a_while(auth_server, auth_file):
    from pyhive import hive

    # A user with a low iteration count: the failures below still pay a full hash (not asserted
    # here; timings belong in bench/bench_access.py).
    assert passwd(auth_file, "carol", "carol-password", "--iterations", "1000").returncode == 0

    def login(user, password):
        return hive.connect(
            host="127.0.0.1", port=auth_server.port, username=user, auth="CUSTOM", password=password
        )

    for _ in range(5):
        with pytest.raises(Exception, match=REFUSED):
            login("carol", "guess")
    # The right password no longer gets in, for a while; the same holds for an unknown name.
    with pytest.raises(Exception, match=REFUSED):
        login("carol", "carol-password")
    for _ in range(6):
        with pytest.raises(Exception, match=REFUSED):
            login("nobody", "guess")
    # Other names are not locked.
    login("alice", ALICE_PASSWORD).close()


@pytest.mark.slow
def test_a_client_without_password_is_refused(auth_server):
    with pytest.raises(Exception, match=REFUSED):
        auth_server.connect()  # PyHive's default: SASL PLAIN without a real password


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["hive", "emoticana"])
def test_sqlalchemy_url_with_password(auth_server, audio_root, scheme):
    url = (
        f"{scheme}://alice:{quote(ALICE_PASSWORD, safe='')}"
        f"@127.0.0.1:{auth_server.port}/default?auth=CUSTOM"
    )
    with create_engine(url).connect() as connection:
        row = connection.execute(text(f"SELECT size(mfcc('{clip(audio_root)}')) AS n")).fetchone()
    assert tuple(row) == (12943,)
    wrong = url.replace(quote(ALICE_PASSWORD, safe=""), "nope")
    with pytest.raises(Exception, match=REFUSED):
        create_engine(wrong).connect()


@pytest.fixture(scope="module")
def alice_password_file(tmp_path_factory) -> Path:
    """For beeline -w: pyspark's beeline script splits a -p argument at spaces."""
    path = tmp_path_factory.mktemp("beeline") / "alice.password"
    path.write_text(ALICE_PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.mark.slow
def test_beeline_with_user_and_password(auth_server, alice_password_file):
    url = f"jdbc:hive2://127.0.0.1:{auth_server.port}/default"
    query = "SELECT current_user() AS u, ravdess_meta('03-01-05-02-01-02-12.wav').emotion AS e"
    good = beeline(url, "-n", "alice", "-w", str(alice_password_file), "-e", query)
    assert good.returncode == 0, good.stderr[-2000:]
    assert "u,e\nalice,angry" in good.stdout
    bad = beeline(url, "-n", "alice", "-p", "wrong", "-e", query)
    assert bad.returncode != 0
    assert "alice,angry" not in bad.stdout and REFUSED in bad.stderr


@pytest.mark.slow
def test_password_changes_apply_without_restart(auth_server, auth_file):
    assert passwd(auth_file, "carol", "first", "--iterations", "1000").returncode == 0
    connect("127.0.0.1", auth_server.port, username="carol", password="first").close()
    assert passwd(auth_file, "carol", None, "--delete").returncode == 0
    with pytest.raises(Exception, match=REFUSED):
        connect("127.0.0.1", auth_server.port, username="carol", password="first")


@pytest.mark.slow
def test_sql_cli_logs_in_from_the_environment(auth_server, tmp_path):
    script = tmp_path / "who.sql"
    script.write_text("SELECT current_user() AS u;\n")
    command = [sys.executable, "-m", "server", "sql", str(script), "--port", str(auth_server.port)]
    env = {**os.environ, "EMOTICANA_USER": "alice", "EMOTICANA_PASSWORD": ALICE_PASSWORD}
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["u", "alice"]
    env["EMOTICANA_PASSWORD"] = "wrong"
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 2 and REFUSED in result.stderr and "Traceback" not in result.stderr


def console_request(server, path, *, user=None, password=None, body=None, method=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.console_port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        # As the console's page sends it: a query that is not JSON is refused as cross-site.
        headers={"Content-Type": "application/json"},
    )
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, None


@pytest.mark.slow
def test_console_asks_for_a_login_and_queries_as_that_user(auth_server, audio_root):
    status, headers, _ = console_request(auth_server, "/api/examples")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert console_request(auth_server, "/api/examples", user="alice", password="wrong")[0] == 401
    audio = f"/api/audio?path={quote(str(clip(audio_root)))}"
    assert console_request(auth_server, audio)[0] == 401

    status, _, job = console_request(
        auth_server,
        "/api/queries",
        user="alice",
        password=ALICE_PASSWORD,
        body={"sql": "SELECT current_user() AS u"},
        method="POST",
    )
    assert status == 202
    status, _, job = console_request(
        auth_server, f"/api/queries/{job['id']}?wait=10", user="alice", password=ALICE_PASSWORD
    )
    assert (status, job["state"], job["rows"]) == (200, "done", [["alice"]]), job
    # Another user's query is not visible.
    assert (
        passwd(auth_server_users(auth_server), "dave", "dave-pw", "--iterations", "1000").returncode
        == 0
    )
    assert (
        console_request(auth_server, f"/api/queries/{job['id']}", user="dave", password="dave-pw")[
            0
        ]
        == 404
    )


def auth_server_users(server: ServerProcess) -> Path:
    return Path(server.extra_args[server.extra_args.index("--auth-file") + 1])


# TLS on the JDBC port -----------------------------------------------------------------------------


def keytool(*args: str) -> None:
    subprocess.run(["keytool", *args], check=True, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def keystore(tmp_path_factory) -> dict[str, Path]:
    """A self-signed server key for 127.0.0.1, its PEM certificate, and a truststore holding it."""
    directory = tmp_path_factory.mktemp("tls")
    paths = {
        "keystore": directory / "server.p12",
        "pem": directory / "server.pem",
        "truststore": directory / "trust.p12",
    }
    keytool(
        "-genkeypair",
        "-alias",
        "emoticana",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        "2",
        "-dname",
        "CN=127.0.0.1",
        "-ext",
        "SAN=ip:127.0.0.1",
        "-storetype",
        "PKCS12",
        "-keystore",
        str(paths["keystore"]),
        "-storepass",
        KEYSTORE_PASSWORD,
        "-keypass",
        KEYSTORE_PASSWORD,
    )
    keytool(
        "-exportcert",
        "-rfc",
        "-alias",
        "emoticana",
        "-keystore",
        str(paths["keystore"]),
        "-storepass",
        KEYSTORE_PASSWORD,
        "-file",
        str(paths["pem"]),
    )
    keytool(
        "-importcert",
        "-noprompt",
        "-alias",
        "emoticana",
        "-file",
        str(paths["pem"]),
        "-storetype",
        "PKCS12",
        "-keystore",
        str(paths["truststore"]),
        "-storepass",
        TRUSTSTORE_PASSWORD,
    )
    return paths


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, audio_root, auth_file, keystore):
    running = ServerProcess(
        home=tmp_path_factory.mktemp("tls-home"),
        audio_roots=[audio_root],
        extra_args=["--auth-file", str(auth_file), "--tls-keystore", str(keystore["keystore"])],
        env={"EMOTICANA_TLS_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD},
    ).start()
    yield running
    running.stop()


@pytest.mark.slow
def test_beeline_over_tls(tls_server, keystore, audio_root, alice_password_file):
    url = (
        f"jdbc:hive2://127.0.0.1:{tls_server.port}/default;ssl=true;"
        f"sslTrustStore={keystore['truststore']};trustStorePassword={TRUSTSTORE_PASSWORD}"
    )
    result = beeline(
        url,
        "-n",
        "alice",
        "-w",
        str(alice_password_file),
        "-e",
        f"SELECT audio_info('{clip(audio_root)}').sample_rate AS rate, "
        f"size(mfcc('{clip(audio_root)}')) AS n",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rate,n\n16000,12943" in result.stdout
    plain = beeline(
        f"jdbc:hive2://127.0.0.1:{tls_server.port}/default",
        "-n",
        "alice",
        "-w",
        str(alice_password_file),
        "-e",
        "SELECT 1",
        timeout=120,
    )
    assert plain.returncode != 0 and "16000" not in plain.stdout


@pytest.mark.slow
def test_pyhive_over_tls_verifies_the_certificate(tls_server, keystore):
    connection = connect(
        "127.0.0.1",
        tls_server.port,
        username="alice",
        password=ALICE_PASSWORD,
        ssl_context=tls_client_context(str(keystore["pem"])),
    )
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT current_user(), ravdess_meta('03-01-05-02-01-02-12.wav').gender")
        assert cursor.fetchall() == [("alice", "female")]
    finally:
        connection.close()
    # thrift logs the certificate failure and raises a bare transport error, which thrift 0.25
    # masks with an AttributeError from TSSLSocket.close(): any failure to connect counts.
    with pytest.raises(Exception):  # noqa: B017
        connect(
            "127.0.0.1",
            tls_server.port,
            username="alice",
            password=ALICE_PASSWORD,
            ssl_context=tls_client_context(None),
        )  # the system CAs do not know this certificate
    with pytest.raises(TTransportException):
        connect(
            "127.0.0.1", tls_server.port, username="alice", password=ALICE_PASSWORD
        )  # plain TCP


@pytest.mark.slow
def test_no_statement_shows_the_keystore_password(tls_server, keystore):
    connection = connect(
        "127.0.0.1",
        tls_server.port,
        username="alice",
        password=ALICE_PASSWORD,
        ssl_context=tls_client_context(str(keystore["pem"])),
    )
    try:
        cursor = connection.cursor()
        for statement in [
            "SET",
            "SET -v",
            "SET spark.hadoop.hive.server2.keystore.password",
            "SET hive.server2.keystore.password",
            "SHOW FUNCTIONS",
        ]:
            cursor.execute(statement)
            assert KEYSTORE_PASSWORD not in repr(cursor.fetchall()), statement
        for statement in [
            "SELECT '${hiveconf:hive.server2.keystore.password}'",
            "SELECT '${spark.hadoop.hive.server2.keystore.password}'",
            "SET hive.server2.keystore.password=x",
        ]:
            with pytest.raises(Exception) as refused:
                cursor.execute(statement)
            assert KEYSTORE_PASSWORD not in str(refused.value), statement
    finally:
        connection.close()
