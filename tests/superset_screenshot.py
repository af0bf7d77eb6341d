"""Screenshot of a Superset chart as a logged-in user sees it, in headless Chromium.

Run by tests/test_superset.py with Superset's own interpreter (its virtual environment has
websocket-client, a Selenium dependency): the page needs a session cookie, which Chromium's
command line cannot take, so this logs in through Superset's login form and hands the cookie to
Chromium over the DevTools protocol.

    python tests/superset_screenshot.py BASE_URL USER PASSWORD CHART_ID OUT.png
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import websocket

# Run as a script, so tests/ is the first import path (this file is not imported as tests.*).
from console_client import HEADLESS_CHROMIUM

#: The ECharts canvas of a rendered chart.
RENDERED = (
    "document.querySelector('.chart-container canvas, .superset-legacy-chart canvas') !== null"
)


def session_cookie(base: str, user: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"username": user, "password": password}).encode()
    opener.open(f"{base}/login/", data=form, timeout=60).read()
    for cookie in jar:
        if cookie.name == "session":
            return cookie.value
    raise SystemExit("superset_screenshot: the login form gave no session cookie")


class DevTools:
    def __init__(self, url: str):
        self.socket = websocket.create_connection(url, timeout=60)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise SystemExit(f"superset_screenshot: {method}: {message['error']}")
                return message.get("result", {})


def main(base: str, user: str, password: str, chart_id: str, out: str) -> int:
    cookie = session_cookie(base, user, password)
    profile = Path(tempfile.mkdtemp(prefix="emoticana-superset-chromium-"))
    browser = subprocess.Popen(
        [
            shutil.which("chromium") or "chromium",
            *HEADLESS_CHROMIUM,
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1200,800",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                raise SystemExit("superset_screenshot: Chromium did not open its DevTools port")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            page = next(t for t in json.load(answer) if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        host = urllib.parse.urlparse(base).hostname
        tools.call("Network.enable")
        tools.call("Network.setCookie", name="session", value=cookie, domain=host, path="/")
        tools.call("Page.enable")
        tools.call("Page.navigate", url=f"{base}/explore/?slice_id={chart_id}&standalone=1")
        deadline = time.monotonic() + 120
        while True:
            done = tools.call("Runtime.evaluate", expression=RENDERED, returnByValue=True)
            if done.get("result", {}).get("value"):
                break
            if time.monotonic() > deadline:
                raise SystemExit("superset_screenshot: the chart did not render within 120 s")
            time.sleep(1)
        time.sleep(2)  # the bars grow in an animation
        shot = tools.call("Page.captureScreenshot", format="png")
        Path(out).write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.terminate()
        try:
            browser.wait(30)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
