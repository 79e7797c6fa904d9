"""`cip serve` as a user runs it: a real `bentoml serve` over HTTP, on a copy of the built
data folder. What a client, a marketer's browser and an operator see: answers, secrets kept,
one-line logs, bounded metrics, body limits, the report behind a login form, an OpenAPI
document that schemathesis finds true, and a clean stop on SIGTERM (for `cip mlflow-ui`
too)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from pipelines.config import Settings

API_KEY = "test-key-http-5c1e"
WRITE_KEY = "write-key-http"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CIP = str(Path(sys.executable).with_name("cip"))
CHROMIUM = "/usr/bin/chromium"
REPORT = "<html><head><title>Segments</title></head><body><h1>Segments report</h1></body></html>"


@dataclass
class Server:
    process: subprocess.Popen
    base: str
    log: Path
    data_dir: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CIP_DATA_DIR": str(data_dir),
        "CIP_SERVING__API_KEY": API_KEY,
        "CIP_SERVING__RELOAD_INTERVAL_SECONDS": "0",
        "CIP_SERVING__COLLECTOR__WRITE_KEYS": json.dumps({"web": WRITE_KEY}),
    }


def start(argv: list[str], *, data_dir: Path, log: Path, ready: str) -> Server:
    """Run a `cip` command as a user would, and wait until `ready` answers 200."""
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CIP, *argv, "--port", str(port)],
            env=_environment(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log, data_dir)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{argv} exited with {process.returncode}:\n{server.output()[-3000:]}")
        try:
            if httpx.get(server.base + ready, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(server)
    pytest.fail(f"{argv} not ready after 240 s:\n{server.output()[-3000:]}")


def stop(server: Server, sig: signal.Signals = signal.SIGTERM) -> list[psutil.Process]:
    """Signal the `cip` process; the processes it had started that are still alive."""
    children = psutil.Process(server.process.pid).children(recursive=True)
    server.process.send_signal(sig)
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    _, alive = psutil.wait_procs(children, timeout=30)
    for process in alive:  # leave nothing behind, but report it
        process.kill()
    return alive


@pytest.fixture(scope="module")
def data_dir(served: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built data folder, with a report written by `cip activate`'s hand."""
    root = tmp_path_factory.mktemp("http") / "data"
    shutil.copytree(served.data_dir, root)
    (root / "exports").mkdir(exist_ok=True)
    (root / "exports" / "report.html").write_text(REPORT)
    return root


@pytest.fixture(scope="module")
def server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    server = start(["serve"], data_dir=data_dir, log=log, ready="/readyz")
    yield server
    stop(server)


def test_cip_serve_answers_over_real_http_without_leaking_secrets(
    server: Server, facts: dict[str, list[tuple]]
) -> None:
    cid, email, _ = facts["email_and_cookie"][0]
    with httpx.Client(base_url=server.base, timeout=30) as http:
        live = http.post("/score", json={"email": email}, headers=AUTH)
        assert live.status_code == 200, live.text
        assert live.json()["customer_id"] == cid
        assert http.post("/score", json={"email": email}).status_code == 401
        assert http.get("/profile", params={"email": email}, headers=AUTH).status_code == 200
        spec = http.get("/docs.json").json()
    assert spec["info"]["title"] == "Customer intelligence platform"
    output = server.output()
    assert "/score" in output  # the access log is on, and it names paths only
    assert email not in output and API_KEY not in output
    config_files = list((server.data_dir / "bentoml").glob("service-*.json"))
    assert [f.stat().st_mode & 0o777 for f in config_files] == [0o600]


def test_a_newline_in_a_path_cannot_forge_a_log_line(server: Server) -> None:
    marker = f"FORGED-{uuid.uuid4().hex[:8]}"
    response = httpx.get(f"{server.base}/x%0a{marker}%0d%0a{marker}-2", headers=AUTH)
    assert response.status_code == 404
    deadline = time.monotonic() + 10
    while marker not in server.output():
        assert time.monotonic() < deadline, "the request was not logged"
        time.sleep(0.2)
    lines = server.output().splitlines()
    assert not [line for line in lines if line.startswith(marker)]
    assert any(f"\\x0a{marker}" in line for line in lines)


def test_metrics_stay_bounded_whatever_paths_are_asked_for(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as http:
        http.get(f"/random-{uuid.uuid4().hex}")
        before = len(http.get("/metrics").content)
        for _ in range(400):
            http.get(f"/random-{uuid.uuid4().hex}")
        metrics = http.get("/metrics").text
    assert "random-" not in metrics
    assert 'route="unmatched"' in metrics and 'route="/readyz"' in metrics
    assert len(metrics) < before + 1000  # counts grew, the number of series did not


def test_every_api_refuses_a_body_over_the_limit(server: Server) -> None:
    big = b'{"email": "' + b"a" * 5_000_000 + b'"}'
    with httpx.Client(base_url=server.base, timeout=60) as http:
        for path in ("/score", "/score_batch", "/profile", "/reload"):
            response = http.post(
                path, content=big, headers={**AUTH, "Content-Type": "application/json"}
            )
            assert response.status_code == 413, (path, response.text)
            assert "262,144-byte limit" in response.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the stream
            yield from (big[i : i + 65536] for i in range(0, len(big), 65536))

        streamed = http.post("/score", content=chunks(), headers=AUTH)
        assert streamed.status_code == 413


def test_schemathesis_finds_the_openapi_document_true(server: Server, tmp_path: Path) -> None:
    """Generated requests, valid and invalid, to every documented operation (the collector's
    included), checked against the document: no 5xx, only documented statuses, content types
    and bodies, invalid data refused, auth enforced, 405 and `Allow` for other methods. Not
    `positive_data_acceptance`: data a JSON schema calls valid may still be refused with a
    400 for reasons a schema cannot say (an email that is no email, a time before 1970)."""
    basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    (tmp_path / "schemathesis.toml").write_text(
        "[[operations]]\n"
        'include-path-regex = "^/v1/"\n'
        f'headers = {{ Authorization = "Basic {basic}" }}\n\n'
        "[[operations]]\n"
        'exclude-path-regex = "^/v1/"\n'
        f'headers = {{ Authorization = "Bearer {API_KEY}" }}\n'
    )
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "--config-file",
         "schemathesis.toml", "run", f"{server.base}/docs.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--max-examples", "20",
         "--workers", "1", "--seed", "20261130"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-8000:]
    assert "Tested: 33" in run.stdout and " passed" in run.stdout
    assert "failures" not in run.stdout.splitlines()[-1]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_a_marketer_opens_the_report_in_a_browser_after_signing_in(server: Server) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        try:
            page = browser.new_page()
            page.goto(f"{server.base}/report")
            assert "/login" in page.url  # no session yet: the form
            page.fill("#key", "not the key")
            page.click("button[type=submit]")
            assert "not the API key" in page.content()
            page.fill("#key", API_KEY)
            page.click("button[type=submit]")
            page.wait_for_url("**/exports/report.html")
            assert page.locator("h1").inner_text() == "Segments report"
            [cookie] = [c for c in page.context.cookies() if c["name"] == "cip_session"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            assert API_KEY not in cookie["value"]
        finally:
            browser.close()
    session = {"cip_session": cookie["value"]}
    with httpx.Client(base_url=server.base, cookies=session) as http:  # pages, not the APIs
        assert http.get("/report").status_code == 307
        assert http.get("/status").status_code == 401
    with httpx.Client(base_url=server.base, cookies={"cip_session": "1.forged"}) as http:
        assert http.get("/report").status_code == 401


def test_sigterm_stops_cip_serve_and_every_server_process(data_dir: Path, tmp_path: Path) -> None:
    server = start(["serve"], data_dir=data_dir, log=tmp_path / "serve.log", ready="/readyz")
    children = psutil.Process(server.process.pid).children(recursive=True)
    assert len(children) >= 2  # bentoml serve's arbiter and its worker
    assert stop(server) == []
    assert server.process.returncode != 0  # stopped, not finished
    assert not list((data_dir / "bentoml").glob(f"service-{server.process.pid}.json"))


def test_sigterm_stops_cip_mlflow_ui_and_its_server(data_dir: Path, tmp_path: Path) -> None:
    server = start(["mlflow-ui"], data_dir=data_dir, log=tmp_path / "mlflow.log", ready="/health")
    assert psutil.Process(server.process.pid).children(recursive=True)
    assert stop(server) == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.base}/health", timeout=2)
