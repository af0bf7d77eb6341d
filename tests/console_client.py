"""The console as its tests drive it: its HTTP API on 127.0.0.1 and Debian's headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

#: Chromium headless as root in a container, and quiet: no first-run, sync, update or QUIC traffic
#: beside the page's own (tests/superset_screenshot.py uses them too).
HEADLESS_CHROMIUM = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def api(server, path, *, method="GET", body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.console_port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def run_query(server, sql, *, timeout_s=120):
    status, body = api(server, "/api/queries", method="POST", body={"sql": sql})
    assert status == 202
    job = json.loads(body)
    deadline = time.monotonic() + timeout_s
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
        job = json.loads(api(server, f"/api/queries/{job['id']}")[1])
    return job


def chromium(*args, timeout=120):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, (
        "chromium is installed by `make test` (apt-get install chromium); see the README"
    )
    profile = tempfile.mkdtemp(prefix="emoticana-chromium-")
    command = [
        executable,
        *HEADLESS_CHROMIUM,
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        *args,
    ]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
