"""The demo server (``visionkit demo --serve``) obeys only its own page.

A real server on 127.0.0.1 (a looping still image, the model file given with ``--model``) gets the requests a
hostile page or a careless client can send: other origins, other Host names (DNS rebinding), text/plain and
form bodies, wrong types, unknown fields, model paths, broken or oversized JSON, wrong methods. Each must be
answered with a 4xx ``{"error": ...}`` and leave the demo as it was; the page's own requests must still work,
in headless Chromium too, where a page served from another port tries its tricks.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fault_harness import Fault, Outcome, assert_one_line, check_fault
from test_demo import free_port, launch_chromium

MODEL_FILE = "ssd_mobilenet_v1_coco_quant.onnx"  # the fastest detector here, given as a file path on purpose
OTHER_FILE = "yolov5n.onnx"  # a loadable model file the command line did not name


@dataclass
class Demo:
    url: str
    port: int
    model_file: str
    other_file: str
    snapshots: Path

    def state(self) -> dict:
        s = httpx.get(self.url + "/stats", timeout=10).json()
        return {k: s[k] for k in ("task", "model", "paused")}


@pytest.fixture(scope="module")
def demo(assets: Path, shared_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    port = free_port()
    snapshots = tmp_path_factory.mktemp("snapshots")
    model_file = str(shared_weights / MODEL_FILE)
    proc = subprocess.Popen([sys.executable, "-m", "visionkit.cli", "demo", "--source", str(assets / "bus.jpg"),
                             "--loop", "--serve", "--port", str(port), "--model", model_file, "--snapshots",
                             str(snapshots), "--duration", "240"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url + "/stats", timeout=1).json()["frames"] > 0:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the demo did not come up: {proc.communicate()[1].decode()}")
        time.sleep(0.5)
    yield Demo(url, port, model_file, str(shared_weights / OTHER_FILE), snapshots)
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    log = err.decode()
    for sign in ("Traceback", "Exception", "ERROR"):
        assert sign not in log, f"the server logged {sign!r}:\n{log}"


JSON = {"Content-Type": "application/json"}


@dataclass
class Bad:
    """One refused request: the route, how it is sent, and the status and reason it must get."""

    id: str
    status: int
    says: str
    path: str = "/control"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    body: bytes | str | None = b'{"paused": true}'


BAD = [
    Bad("text-plain", 415, "application/json", headers={"Content-Type": "text/plain"}),
    Bad("form", 415, "application/json", headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"paused=true"),
    Bad("no-content-type", 415, "application/json", headers={}),
    Bad("other-origin", 403, "127.0.0.1:{other}", headers={**JSON, "Origin": "http://127.0.0.1:{other}"}),
    Bad("other-site", 403, "evil.example", headers={**JSON, "Origin": "http://evil.example"}),
    Bad("null-origin", 403, "null", headers={**JSON, "Origin": "null"}),
    Bad("https-origin", 403, "https", headers={**JSON, "Origin": "https://127.0.0.1:{port}"}),
    Bad("rebinding-host", 403, "evil.example", headers={**JSON, "Host": "evil.example:{port}"}),
    Bad("rebinding-host-get", 403, "evil.example", method="GET", path="/frame.jpg", body=None,
        headers={"Host": "evil.example:{port}"}),
    Bad("host-other-port", 403, "Host", headers={**JSON, "Host": "127.0.0.1:{other}"}),
    Bad("host-bad-port", 403, "Host", headers={**JSON, "Host": "127.0.0.1:x"}),
    Bad("paused-string", 400, "'paused' must be true or false", body='{"paused": "no"}'),
    Bad("paused-int", 400, "'paused' must be true or false", body='{"paused": 1}'),
    Bad("paused-null", 400, "'paused' must be true or false", body='{"paused": null}'),
    Bad("task-unknown", 400, "unknown task 'fly'", body='{"task": "fly"}'),
    Bad("task-int", 400, "'task' must be a string", body='{"task": 3}'),
    Bad("unknown-field", 400, "unknown field 'x'", body='{"paused": true, "x": 1}'),
    Bad("model-path-not-on-cli", 400, "nor the --model file", body='{"model": "{other_file}"}'),
    Bad("model-system-file", 400, "nor the --model file", body='{"model": "/etc/passwd"}'),
    Bad("model-other-task", 400, "neither a catalog model for detect", body='{"model": "mobilenet_v2"}'),
    Bad("model-list", 400, "'model' must be a string", body='{"model": ["yolov5n"]}'),
    Bad("malformed-json", 400, "not valid JSON", body='{"paused": tru'),
    Bad("empty-body", 400, "not valid JSON", body=b""),
    Bad("not-utf8", 400, "not valid JSON", body=b'{"task": "\xff"}'),
    Bad("deep-nesting", 400, "not valid JSON", body="[" * 3000),
    Bad("json-array", 400, "JSON object", body='[{"paused": true}]'),
    Bad("big-body", 413, "4096 bytes", body='{"paused": true, "pad": "' + "x" * 200_000 + '"}'),
    Bad("wrong-method-get", 405, "Method Not Allowed", method="GET", body=None),
    Bad("wrong-method-put", 405, "Method Not Allowed", method="PUT"),
    Bad("snapshot-text-plain", 415, "application/json", path="/snapshot", headers={"Content-Type": "text/plain"},
        body=b"{}"),
    Bad("snapshot-other-origin", 403, "127.0.0.1:{other}", path="/snapshot", body=b"{}",
        headers={**JSON, "Origin": "http://127.0.0.1:{other}"}),
    Bad("snapshot-field", 400, "unknown field 'path'", path="/snapshot", body='{"path": "/tmp/x.png"}'),
    Bad("snapshot-get", 405, "Method Not Allowed", path="/snapshot", method="GET", body=None),
]


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_bad_request_is_refused_with_json_and_changes_nothing(demo: Demo, bad: Bad) -> None:
    names = {"port": demo.port, "other": demo.port + 1, "other_file": demo.other_file}
    headers = {k: v.format(**names) for k, v in bad.headers.items()}
    body = bad.body.replace("{other_file}", demo.other_file) if isinstance(bad.body, str) else bad.body
    before, shots = demo.state(), sorted(demo.snapshots.iterdir())

    r = httpx.request(bad.method, demo.url + bad.path, headers=headers, content=body, timeout=30)

    assert r.status_code == bad.status, r.text
    assert r.headers["content-type"] == "application/json"
    assert list(r.json()) == ["error"] and bad.says.format(**names) in r.json()["error"]
    assert demo.state() == before
    assert sorted(demo.snapshots.iterdir()) == shots


def test_oversized_chunked_body_is_refused(demo: Demo) -> None:
    # No Content-Length to trust: the server stops reading at the cap.
    before = demo.state()
    chunks = iter([b'{"paused": true, "pad": "', b"x" * 100_000, b'"}'])
    r = httpx.post(demo.url + "/control", headers=JSON, content=chunks, timeout=30)
    assert r.status_code == 413 and "4096 bytes" in r.json()["error"]
    assert demo.state() == before


def test_requests_from_the_page_and_local_clients_still_work(demo: Demo) -> None:
    own = {**JSON, "Origin": demo.url}  # what the page's fetch sends
    r = httpx.post(demo.url + "/control", headers=own, json={"paused": True}, timeout=30)
    assert r.status_code == 200 and r.json()["paused"] is True and demo.state()["paused"] is True
    # the page opened as http://localhost:PORT/ is the same server
    local = {**JSON, "Origin": f"http://localhost:{demo.port}", "Host": f"localhost:{demo.port}"}
    r = httpx.post(demo.url + "/control", headers=local, content=b'{"paused": false}', timeout=30)
    assert r.status_code == 200 and demo.state()["paused"] is False
    # a catalog name of the task, and exactly the file the command line gave (a script: no Origin at all)
    r = httpx.post(demo.url + "/control", headers=own, json={"task": "detect", "model": "ssd_mobilenet_v1_coco"},
                   timeout=120)
    assert r.status_code == 200 and demo.state()["model"] == "ssd_mobilenet_v1_coco"
    r = httpx.post(demo.url + "/control", json={"model": demo.model_file}, timeout=120)
    # the catalog's own file given by path runs as that catalog model (its settings, its name)
    assert r.status_code == 200 and demo.state()["model"] == "ssd_mobilenet_v1_coco"
    r = httpx.post(demo.url + "/snapshot", headers=own, json={}, timeout=30)
    assert r.status_code == 200 and Path(r.json()["saved"]).parent == demo.snapshots
    Path(r.json()["saved"]).unlink()


def test_page_buttons_still_work(demo: Demo) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(demo.url + "/")
        page.wait_for_function("document.getElementById('stats').textContent.includes('FPS')", timeout=20000)
        page.click("#pause")
        page.wait_for_function("document.getElementById('pause').textContent === 'resume'", timeout=10000)
        assert demo.state()["paused"] is True
        page.click("#pause")
        page.wait_for_function("document.getElementById('pause').textContent === 'pause'", timeout=10000)
        assert demo.state()["paused"] is False
        page.click("#snap")
        page.wait_for_function("document.getElementById('error').textContent.startsWith('saved ')", timeout=10000)
        saved = Path(page.inner_text("#error").removeprefix("saved "))
        browser.close()
    assert saved.parent == demo.snapshots and saved.stat().st_size > 0
    saved.unlink()


ATTACKER_PAGE = """<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="plain" method="POST" enctype="text/plain" target="sink" action="DEMO/control">
  <input name='{"paused": true, "x": "' value='"}'></form>
<form id="snap" method="POST" enctype="text/plain" target="sink" action="DEMO/snapshot">
  <input name='{"x": "' value='"}'></form>
<script>
const body = JSON.stringify({ paused: true });
const submit = (id) => new Promise((done) => {
  document.querySelector("iframe").onload = done; document.getElementById(id).submit(); });
async function attack() {
  const r = {};
  // a "simple" request: no preflight, so it reaches the server (the response stays opaque)
  await fetch("DEMO/control", { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body });
  await fetch("DEMO/snapshot", { method: "POST", mode: "no-cors", body: "{}" });
  r.simple = "answered";
  // JSON needs a CORS preflight, which the server never grants
  try { await fetch("DEMO/control", { method: "POST", headers: { "Content-Type": "application/json" }, body });
        r.json = "answered"; } catch (e) { r.json = "blocked"; }
  await submit("plain");
  await submit("snap");
  r.forms = "submitted";
  return r;
}
</script></body></html>"""


@pytest.fixture
def attacker(demo: Demo) -> Iterator[str]:
    """A page on another 127.0.0.1 port that tries to drive the demo."""
    html = ATTACKER_PAGE.replace("DEMO", demo.url).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_page_from_another_origin_cannot_change_state(demo: Demo, attacker: str) -> None:
    from playwright.sync_api import sync_playwright

    before, shots = demo.state(), sorted(demo.snapshots.iterdir())
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(attacker)
        outcome = page.evaluate("attack()")
        browser.close()
    assert outcome == {"simple": "answered", "json": "blocked", "forms": "submitted"}
    assert demo.state() == before
    assert sorted(demo.snapshots.iterdir()) == shots


# The command line: refused before the camera opens or a model loads (camera 7 does not exist, so reaching it
# would be a different error).
CLI = [
    Fault("host-any", ["demo", "--source", "7", "--serve", "--host", "0.0.0.0"], 2, "add --allow-remote"),
    Fault("host-lan", ["demo", "--source", "7", "--serve", "--host", "192.168.1.20"], 2, "not a loopback address"),
    Fault("host-ipv6-any", ["demo", "--source", "7", "--serve", "--host", "::"], 2, "add --allow-remote"),
    Fault("host-name", ["demo", "--source", "7", "--serve", "--host", "example.com"], 2, "add --allow-remote"),
    # allowed: one warning line, then the run goes on (and stops at the absent camera)
    Fault("host-any-allowed", ["demo", "--source", "7", "--serve", "--host", "0.0.0.0", "--allow-remote"], 1,
          "camera 7"),
]


@pytest.mark.parametrize("fault", CLI, ids=[f.id for f in CLI])
def test_non_loopback_host_needs_allow_remote(fault: Fault) -> None:
    outcome = check_fault(fault)
    warnings = [line for line in outcome.stderr_lines if line.startswith("visionkit: warning")]
    if "--allow-remote" in fault.argv:
        assert len(warnings) == 1 and "anyone who can reach this machine" in warnings[0]
    else:
        assert not warnings


@pytest.mark.parametrize("module", ["starlette", "uvicorn"])
def test_serve_without_the_web_extra_names_it(module: str) -> None:
    # The extra's modules made unimportable, as on an install without visionkit[web].
    code = (f"import sys; sys.modules[{module!r}] = None; from visionkit.cli import main; "
            "sys.exit(main(['demo', '--source', '7', '--serve']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = assert_one_line(Outcome(proc.returncode, proc.stdout, proc.stderr), 1, "pip install 'visionkit[web]'")
    assert module in line


def test_bind_rules() -> None:
    from visionkit_apps.webcam_demo.guard import check_bind

    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        assert check_bind(host, allow_remote=False) is None
    assert "0.0.0.0" in (check_bind("0.0.0.0", allow_remote=True) or "")


HOSTS = [  # bound to, Host header, connection's local address, accepted
    ("127.0.0.1", "127.0.0.1:8000", ("127.0.0.1", 8000), True),
    ("127.0.0.1", "localhost:8000", ("127.0.0.1", 8000), True),
    ("::1", "[::1]:8000", ("::1", 8000), True),
    ("127.0.0.1", "127.0.0.1", ("127.0.0.1", 8000), False),  # port 80 implied
    ("127.0.0.1", socket.gethostname() + ":8000", ("127.0.0.1", 8000), False),
    ("0.0.0.0", "192.168.1.5:8000", ("192.168.1.5", 8000), True),  # --allow-remote: reached by its address
    ("0.0.0.0", socket.gethostname() + ":8000", ("192.168.1.5", 8000), True),  # or by this machine's name
    ("0.0.0.0", "192.168.1.6:8000", ("192.168.1.5", 8000), False),
    ("0.0.0.0", "evil.example:8000", ("192.168.1.5", 8000), False),
    ("0.0.0.0", "localhost:8000", ("192.168.1.5", 8000), False),
]


@pytest.mark.parametrize(("bound", "host", "server", "accepted"), HOSTS)
def test_host_rules_for_local_and_remote_serving(bound: str, host: str, server: tuple[str, int],
                                                 accepted: bool) -> None:
    # The remote half cannot be served for real here (tests listen on 127.0.0.1 only), so the rule is run as is.
    from visionkit_apps.webcam_demo.guard import Guard, Refused

    guard = Guard(bound)
    for headers, check in (({"host": host}, guard.check_host), ({"origin": f"http://{host}"}, guard.check_origin)):
        if accepted:
            check(headers, server)
        else:
            with pytest.raises(Refused) as refused:
                check(headers, server)
            assert refused.value.status == 403
