"""The console answers only its own pages: no cross-site requests, no DNS rebinding."""

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def request(server, path, *, method="GET", body=None, headers=None):
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    call = urllib.request.Request(
        f"http://127.0.0.1:{server.console_port}{path}",
        method=method,
        data=data,
        headers=headers or {},
    )
    try:
        with urllib.request.urlopen(call, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def own_origin(server) -> str:
    return f"http://127.0.0.1:{server.console_port}"


def test_a_cross_site_text_plain_post_is_refused_before_it_runs(server):
    # What a form or fetch on another site can send without a preflight.
    status, body = request(
        server,
        "/api/queries",
        method="POST",
        body=b'{"sql": "CREATE TABLE pwned (x INT)"}',
        headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
    )
    assert status == 403 and b"cross-site" in body
    status, body = request(
        server,
        "/api/queries",
        method="POST",
        body=b'{"sql": "SELECT 1"}',
        headers={"Content-Type": "text/plain"},
    )
    assert status == 403 and b"application/json" in body


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_another_origin_is_refused(server, method):
    status, body = request(
        server,
        "/api/examples" if method == "GET" else "/api/queries",
        method=method,
        body={"sql": "SELECT 1"} if method == "POST" else None,
        headers={"Content-Type": "application/json", "Origin": "http://evil.example"},
    )
    assert status == 403 and b"cross-site request from 'http://evil.example'" in body


def test_a_rebound_host_name_is_refused(server):
    status, body = request(
        server, "/api/examples", headers={"Host": f"rebound.example:{server.console_port}"}
    )
    assert status == 403 and b"is not this console" in body


def test_the_console_itself_still_works(server):
    assert request(server, "/api/examples")[0] == 200
    assert (
        request(server, "/api/examples", headers={"Host": f"localhost:{server.console_port}"})[0]
        == 200
    )
    status, body = request(
        server,
        "/api/queries",
        method="POST",
        body={"sql": "SELECT 1 AS one"},
        headers={"Content-Type": "application/json", "Origin": own_origin(server)},
    )
    assert status == 202 and json.loads(body)["id"]
