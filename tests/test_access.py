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
from server.cluster import free_port
from server.process import PROJECT_ROOT, ServerProcess
from server.settings import KEY_SQL_ADMINS
from server.thrift import connect, tls_client_context
from tests.helpers import BEELINE, assert_one_line_failure, serve
from udfs.errors import ConfigError

ALICE_PASSWORD = "correct-horse:battery-staple"  # beeline cannot send a password with spaces
BOB_PASSWORD = "bob-password"
ADMIN, ADMIN_PASSWORD = "ada", "ada-password"  # the auth server's administrator (--admins)
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


def test_passwd_names_a_password_file_it_cannot_write_in_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    result = passwd(tmp_path / "a_file" / "users", "alice", "pw", "--iterations", "1000")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "cannot write password file" in lines[0] and "Traceback" not in result.stderr


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


def test_with_tls_the_plain_http_console_stays_on_loopback(tmp_path, keystore):
    """Refused before anything binds (192.0.2.1 is a documentation address, never this
    machine's): the console's logins would otherwise cross the network in the clear."""
    from server.preflight import is_loopback

    assert [is_loopback(h) for h in ("127.0.0.1", "LOCALHOST", "::1", "[::1]", "127.0.0.2")] == [
        True
    ] * 5
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.0.2.1", "emoticana", "::"))
    result = serve(
        tmp_path,
        "--host",
        "192.0.2.1",
        "--tls-keystore",
        str(keystore["keystore"]),
        env_overrides={"EMOTICANA_TLS_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD},
    )
    assert_one_line_failure(result, "with TLS on, the console (plain HTTP) cannot listen on")


def test_admins_are_user_names_from_flag_or_environment(tmp_path):
    from server.settings import load_settings
    from server.spark import owners_conf

    env = {"EMOTICANA_ADMINS": " alice, bob ,,alice"}
    assert load_settings(environ=env).admins == ("alice", "bob")
    assert load_settings(admins="carol", environ=env).admins == ("carol",)
    with pytest.raises(ConfigError, match="user names separated by commas, got 'a b'"):
        load_settings(admins="a b", environ={})
    # The sandbox checks owners and administrators only with passwords on.
    assert owners_conf(load_settings(admins="alice", environ={})) == {}
    users = tmp_path / "users"
    assert owners_conf(load_settings(auth_file=str(users), admins="alice,bob", environ={})) == {
        "spark.emoticana.sql.owners": "true",
        "spark.emoticana.sql.admins": "alice,bob",
    }


def test_admins_without_passwords_stop_start_up(tmp_path):
    result = serve(tmp_path, "--admins", "alice")
    assert_one_line_failure(result, "EMOTICANA_ADMINS (--admins) needs passwords on")


def test_admins_without_the_sandbox_stop_start_up(tmp_path):
    users = tmp_path / "users"
    assert passwd(users, "alice", "pw", "--iterations", "1000").returncode == 0
    result = serve(tmp_path, "--auth-file", str(users), "--admins", "alice", "--sql-sandbox", "off")
    assert_one_line_failure(result, "EMOTICANA_ADMINS (--admins) needs the SQL sandbox on")


# A server with password authentication ----------------------------------------------------------


@pytest.fixture(scope="module")
def auth_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("access") / "users"
    result = passwd(path, "alice", ALICE_PASSWORD)  # the default iteration count, as users get it
    assert result.returncode == 0, result.stderr
    for user, password in (("bob", BOB_PASSWORD), (ADMIN, ADMIN_PASSWORD)):
        result = passwd(path, user, password, "--iterations", "1000")
        assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, audio_root, auth_file):
    ui_port = free_port()
    running = ServerProcess(
        home=tmp_path_factory.mktemp("auth-home"),
        audio_roots=[audio_root],
        extra_args=[
            *("--auth-file", str(auth_file), "--admins", ADMIN),
            *("--conf", f"spark.ui.port={ui_port}"),
        ],
    ).start()
    running.ui_port = ui_port
    yield running
    running.stop()


@pytest.mark.slow
def test_no_spark_ui_when_users_have_passwords(auth_server):
    """Spark's UI has no login and would show every user's statements to anyone."""
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{auth_server.ui_port}/sqlserver/", timeout=10)


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
    # A user with a low iteration count: the failures below still pay a full hash (not asserted
    # here; timings belong in bench/bench_access.py).
    assert passwd(auth_file, "erin", "erin-password", "--iterations", "1000").returncode == 0

    def login(user, password):
        # From an address of its own: these failures are not the other tests' 127.0.0.1's.
        return connect_from("127.0.0.4", auth_server, user, password)

    for _ in range(5):
        with pytest.raises(Exception, match=REFUSED):
            login("erin", "guess")
    # The right password no longer gets in, for a while; the same holds for an unknown name.
    with pytest.raises(Exception, match=REFUSED):
        login("erin", "erin-password")
    for _ in range(6):
        with pytest.raises(Exception, match=REFUSED):
            login("nobody", "guess")
    # Other names are not locked.
    login("alice", ALICE_PASSWORD).close()


def connect_from(source: str, server: ServerProcess, user: str, password: str):
    """A PyHive login whose connection comes from ``source`` (another loopback address), so that
    this client's failures are its own and not those of the other tests' 127.0.0.1."""
    import socket

    import thrift_sasl
    from pyhive import hive
    from thrift.transport import TSocket

    raw = socket.create_connection(
        ("127.0.0.1", server.port), timeout=60, source_address=(source, 0)
    )
    transport = TSocket.TSocket("127.0.0.1", server.port)
    transport.handle = raw  # already open: the SASL transport uses it as it is
    sasl = thrift_sasl.TSaslClientTransport(
        lambda: hive.get_installed_sasl(
            host="127.0.0.1", sasl_auth="PLAIN", username=user, password=password
        ),
        "PLAIN",
        transport,
    )
    return hive.connect(thrift_transport=sasl, username=user)


@pytest.mark.slow
def test_one_client_failing_many_names_is_refused_for_a_while(auth_server):
    """Guessing across names from one address: after 30 failures that client is refused, even
    with a right password, while other clients still log in."""
    for number in range(30):
        with pytest.raises(Exception, match=REFUSED):
            connect_from("127.0.0.2", auth_server, f"guess{number}", "guess")
    # alice has no failures: only the client's own make this refusal.
    with pytest.raises(Exception, match=REFUSED):
        connect_from("127.0.0.2", auth_server, "alice", ALICE_PASSWORD)
    connect_from("127.0.0.3", auth_server, "alice", ALICE_PASSWORD).close()
    login(auth_server, "alice").close()


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


# Owners and administrators ------------------------------------------------------------------------


def login(server: ServerProcess, user: str):
    password = {"alice": ALICE_PASSWORD, "bob": BOB_PASSWORD, ADMIN: ADMIN_PASSWORD}[user]
    return connect("127.0.0.1", server.port, username=user, password=password).cursor()


def rows(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return cursor.fetchall() if cursor.description else []


def refusal(cursor, sql: str) -> str:
    """The sandbox's one-line refusal of ``sql`` (Spark appends the plan on the lines after it)."""
    with pytest.raises(Exception) as caught:
        rows(cursor, sql)
    status = getattr(caught.value.args[0], "status", None) if caught.value.args else None
    text = status.errorMessage if status is not None else str(caught.value)
    assert "emoticana: " in text, text
    return text[text.index("emoticana: ") :].splitlines()[0].removesuffix(";")


def owner(cursor, table: str) -> str | None:
    properties = dict(rows(cursor, f"SHOW TBLPROPERTIES {table}"))
    return properties.get("emoticana.owner")


@pytest.fixture(scope="module")
def alices_objects(auth_server):
    """A table and a view of alice's, which the tests below try to change as bob."""
    alice = login(auth_server, "alice")
    rows(alice, "CREATE TABLE alice_t (label STRING) USING parquet")
    rows(alice, "INSERT INTO alice_t VALUES ('angry')")
    rows(alice, "CREATE VIEW alice_v AS SELECT label FROM alice_t")
    return alice


@pytest.mark.slow
def test_creating_a_table_or_view_records_its_owner(auth_server, alices_objects):
    bob = login(auth_server, "bob")
    assert owner(bob, "alice_t") == owner(bob, "alice_v") == "alice"
    described = {row[0].strip(): row[1] for row in rows(bob, "DESCRIBE TABLE EXTENDED alice_t")}
    assert "emoticana.owner=alice" in described["Table Properties"]
    rows(bob, "CREATE TABLE bob_ctas USING parquet AS SELECT 1 AS n")
    rows(bob, "CREATE TABLE bob_like LIKE alice_t")
    assert owner(bob, "bob_ctas") == owner(bob, "bob_like") == "bob"
    rows(bob, "DROP TABLE bob_ctas")
    rows(bob, "DROP TABLE bob_like")


@pytest.mark.slow
@pytest.mark.parametrize(
    "statement, refused",
    [
        ("DROP TABLE alice_t", "DROP TABLE default.alice_t"),
        ("INSERT INTO alice_t VALUES ('calm')", "INSERT INTO default.alice_t"),
        ("INSERT OVERWRITE alice_t SELECT 'calm'", "INSERT OVERWRITE default.alice_t"),
        ("TRUNCATE TABLE alice_t", "TRUNCATE TABLE default.alice_t"),
        (
            "ALTER TABLE alice_t SET TBLPROPERTIES ('comment' = 'mine')",
            "ALTER TABLE default.alice_t",
        ),
        ("ALTER TABLE alice_t RENAME TO bobs_now", "ALTER TABLE default.alice_t"),
        ("ALTER TABLE alice_t ADD COLUMNS (score DOUBLE)", "ALTER TABLE default.alice_t"),
        ("COMMENT ON TABLE alice_t IS 'mine'", "ALTER TABLE default.alice_t"),
        ("ANALYZE TABLE alice_t COMPUTE STATISTICS", "ANALYZE TABLE default.alice_t"),
        (
            "ANALYZE TABLE alice_t COMPUTE STATISTICS FOR ALL COLUMNS",
            "ANALYZE TABLE default.alice_t",
        ),
        ("DROP VIEW alice_v", "DROP VIEW default.alice_v"),
        (
            "CREATE OR REPLACE VIEW alice_v AS SELECT 'calm' AS label",
            "CREATE OR REPLACE VIEW default.alice_v",
        ),
        ("ALTER VIEW alice_v AS SELECT 'calm' AS label", "ALTER VIEW default.alice_v"),
        ("ALTER VIEW alice_v SET TBLPROPERTIES ('comment' = 'mine')", "ALTER VIEW default.alice_v"),
    ],
)
def test_others_may_read_but_not_change_a_users_table(
    auth_server, alices_objects, statement, refused
):
    bob = login(auth_server, "bob")
    message = refusal(bob, statement)
    assert message == (
        f"emoticana: {refused} is refused: it belongs to alice; only its owner or an "
        "administrator may change it (SQL sandbox)"
    ), message
    assert rows(bob, "SELECT label FROM alice_v") == [("angry",)]
    assert owner(bob, "alice_t") == "alice"


@pytest.mark.slow
def test_beeline_records_its_user_as_owner(auth_server, alice_password_file):
    """beeline runs statements asynchronously, in another thread than the login's."""
    url = f"jdbc:hive2://127.0.0.1:{auth_server.port}/default"
    script = (
        "CREATE TABLE alice_beeline (n INT) USING parquet; SHOW TBLPROPERTIES alice_beeline; "
        "DROP TABLE alice_beeline"
    )
    result = beeline(url, "-n", "alice", "-w", str(alice_password_file), "-e", script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "emoticana.owner,alice" in result.stdout


@pytest.mark.slow
def test_the_owner_changes_their_own(auth_server, alices_objects):
    alice = login(auth_server, "alice")
    rows(alice, "CREATE TABLE alice_own (label STRING) USING parquet")
    rows(alice, "INSERT INTO alice_own VALUES ('sad')")
    rows(alice, "INSERT OVERWRITE alice_own SELECT 'happy'")
    rows(alice, "ALTER TABLE alice_own SET TBLPROPERTIES ('comment' = 'mine')")
    rows(alice, "ALTER TABLE alice_own RENAME TO alice_renamed")
    rows(alice, "CREATE OR REPLACE VIEW alice_own_v AS SELECT label FROM alice_renamed")
    rows(alice, "CREATE OR REPLACE VIEW alice_own_v AS SELECT upper(label) AS l FROM alice_renamed")
    assert rows(alice, "SELECT * FROM alice_own_v") == [("HAPPY",)]
    assert owner(alice, "alice_renamed") == owner(alice, "alice_own_v") == "alice"
    rows(alice, "TRUNCATE TABLE alice_renamed")
    rows(alice, "DROP VIEW alice_own_v")
    rows(alice, "DROP TABLE alice_renamed")


@pytest.mark.slow
def test_no_one_reads_who_the_administrators_are(auth_server):
    """SET shows every user the settings: the administrators' names are the logins worth
    guessing a password for."""
    bob = login(auth_server, "bob")
    assert rows(bob, f"SET {KEY_SQL_ADMINS}") == [(KEY_SQL_ADMINS, "*********(redacted)")]
    listed = [value for key, value in rows(bob, "SET") if key == KEY_SQL_ADMINS]
    assert listed in ([], ["*********(redacted)"])


def test_an_administrator_may_change_anyones(auth_server):
    bob, admin = login(auth_server, "bob"), login(auth_server, ADMIN)
    rows(bob, "CREATE TABLE bob_t (n INT) USING parquet")
    rows(admin, "INSERT INTO bob_t VALUES (1)")
    rows(admin, "DROP TABLE bob_t")
    assert "bob_t" not in {row[1] for row in rows(bob, "SHOW TABLES")}


@pytest.mark.slow
def test_dropping_a_database_with_anothers_table_is_refused(auth_server):
    bob, alice = login(auth_server, "bob"), login(auth_server, "alice")
    rows(bob, "CREATE DATABASE bob_db")
    rows(alice, "CREATE TABLE bob_db.alice_inside (n INT) USING parquet")
    message = refusal(bob, "DROP DATABASE bob_db CASCADE")
    assert message.startswith(
        "emoticana: DROP DATABASE bob_db CASCADE (table bob_db.alice_inside) is refused: it "
        "belongs to alice"
    ), message
    rows(alice, "DROP TABLE bob_db.alice_inside")
    rows(bob, "DROP DATABASE bob_db CASCADE")


@pytest.mark.slow
def test_a_database_is_its_creators_to_alter_or_drop(auth_server):
    bob, alice, admin = (login(auth_server, name) for name in ("bob", "alice", ADMIN))
    rows(alice, "CREATE DATABASE alice_db")
    described = dict((row[0], row[1]) for row in rows(bob, "DESCRIBE DATABASE EXTENDED alice_db"))
    assert "(emoticana.owner,alice)" in described["Properties"]
    for statement, shown in [
        ("DROP DATABASE alice_db", "DROP DATABASE alice_db"),
        (
            "ALTER DATABASE alice_db SET DBPROPERTIES ('comment' = 'mine')",
            "ALTER DATABASE alice_db",
        ),
    ]:
        assert refusal(bob, statement) == (
            f"emoticana: {shown} is refused: it belongs to alice; only its owner or an "
            "administrator may change it (SQL sandbox)"
        )
    # The server's own database has no recorded owner: administrators only.
    assert "it has no recorded owner" in refusal(bob, "DROP DATABASE default")
    assert "'emoticana.owner' is refused" in refusal(
        bob, "CREATE DATABASE bob_forged_db WITH DBPROPERTIES ('emoticana.owner' = 'alice')"
    )
    rows(alice, "ALTER DATABASE alice_db SET DBPROPERTIES ('comment' = 'mine')")
    rows(alice, "DROP DATABASE alice_db")
    rows(bob, "CREATE DATABASE bob_db2")
    rows(admin, "DROP DATABASE bob_db2")
    assert not {"alice_db", "bob_db2", "bob_forged_db"} & {
        row[0] for row in rows(bob, "SHOW DATABASES")
    }


@pytest.mark.slow
def test_persistent_functions_are_an_administrators_temporary_ones_everyones(auth_server):
    bob, admin = login(auth_server, "bob"), login(auth_server, ADMIN)
    shared = "CREATE FUNCTION twice(x INT) RETURNS INT RETURN x * 2"
    assert refusal(bob, shared) == (
        "emoticana: CREATE FUNCTION default.twice is refused: persistent functions are shared by "
        "every user, so only an administrator may create, replace or drop one; CREATE TEMPORARY "
        "FUNCTION makes one for this session (SQL sandbox)"
    )
    rows(bob, "CREATE TEMPORARY FUNCTION bob_twice(x INT) RETURNS INT RETURN x * 2")
    assert rows(bob, "SELECT bob_twice(21)") == [(42,)]
    rows(bob, "DROP TEMPORARY FUNCTION bob_twice")
    rows(admin, shared)
    try:
        assert rows(bob, "SELECT twice(4)") == [(8,)]
        assert "CREATE OR REPLACE FUNCTION default.twice is refused" in refusal(
            bob, "CREATE OR REPLACE FUNCTION twice(x INT) RETURNS INT RETURN 0"
        )
        assert "DROP FUNCTION default.twice is refused" in refusal(bob, "DROP FUNCTION twice")
        assert rows(bob, "SELECT twice(4)") == [(8,)]
    finally:
        rows(admin, "DROP FUNCTION twice")


@pytest.mark.slow
@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE bob_forged (n INT) USING parquet TBLPROPERTIES ('emoticana.owner' = 'alice')",
        "CREATE VIEW bob_forged_v TBLPROPERTIES ('emoticana.owner' = 'alice') AS SELECT 1 AS n",
        "ALTER TABLE bob_mine SET TBLPROPERTIES ('emoticana.owner' = 'alice')",
        "ALTER TABLE bob_mine UNSET TBLPROPERTIES ('emoticana.owner')",
        "ALTER VIEW bob_mine_v SET TBLPROPERTIES ('emoticana.owner' = 'alice')",
        "ALTER VIEW bob_mine_v UNSET TBLPROPERTIES ('emoticana.owner')",
    ],
)
def test_no_one_sets_the_owner_by_hand(auth_server, statement):
    bob = login(auth_server, "bob")
    rows(bob, "CREATE TABLE IF NOT EXISTS bob_mine (n INT) USING parquet")
    rows(bob, "CREATE VIEW IF NOT EXISTS bob_mine_v AS SELECT n FROM bob_mine")
    assert "'emoticana.owner' is refused" in refusal(bob, statement)
    assert owner(bob, "bob_mine") == owner(bob, "bob_mine_v") == "bob"
    assert not {"bob_forged", "bob_forged_v"} & {row[1] for row in rows(bob, "SHOW TABLES")}


@pytest.mark.slow
def test_only_an_administrator_switches_the_model(auth_server, audio_root):
    from tests.modelgen import write_biased_model
    from udfs.model_store import DEFAULT_MODEL

    write_biased_model(auth_server.home / "models", "biased", 1, favour="angry")
    bob, admin = login(auth_server, "bob"), login(auth_server, ADMIN)
    active = "SELECT concat(name, '/', version) FROM emotion_models() WHERE active"
    message = refusal(bob, "SELECT activate_model('biased/1')")
    assert message.startswith("emoticana: activate_model(...) is refused: it changes the model"), (
        message
    )
    assert rows(bob, active) == [(DEFAULT_MODEL,)]
    # Nor through a SQL function of bob's own: refused when it is made or else when it is called.
    wrapped = (
        "CREATE TEMPORARY FUNCTION bob_switch(m STRING) RETURNS STRING RETURN activate_model(m)",
        "SELECT bob_switch('biased/1')",
    )
    refusals = []
    for statement in wrapped:
        try:
            rows(bob, statement)
        except Exception:
            refusals.append(refusal(bob, statement))
            break
    assert refusals and refusals[0].startswith("emoticana: activate_model(...) is refused")
    rows(bob, "DROP TEMPORARY FUNCTION IF EXISTS bob_switch")
    assert rows(bob, active) == [(DEFAULT_MODEL,)]
    # Choosing a model for one query stays open to everyone.
    assert rows(bob, f"SELECT emotion('{clip(audio_root)}', 'biased/1')") == [("angry",)]
    try:
        assert rows(admin, "SELECT activate_model('biased/1')") == [("biased/1",)]
        assert rows(bob, active) == [("biased/1",)]
    finally:
        rows(admin, f"SELECT activate_model('{DEFAULT_MODEL}')")


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


def tls_connect(tls_server, keystore):
    """alice's PyHive connection over TLS, checking the server's certificate."""
    return connect(
        "127.0.0.1",
        tls_server.port,
        username="alice",
        password=ALICE_PASSWORD,
        ssl_context=tls_client_context(str(keystore["pem"])),
    )


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
    connection = tls_connect(tls_server, keystore)
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
    connection = tls_connect(tls_server, keystore)
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
