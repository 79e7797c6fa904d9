"""The workspace as a marketer uses it: Debian's Chromium (Playwright) against a real
`cip serve` on a copy of the built small universe, with accounts made by `cip users add`.

An editor signs in, builds "added to cart in the last 3 days and did not buy", sees the
preview count equal to the SQL count, saves (the YAML the CLI reads), runs the evaluation,
sees the members, downloads the CSV and sends the segment; a viewer cannot save, not even
with a forged POST. Each page is photographed into the data folder's `screenshots/` and
into the project's `data/screenshots/workspace/` (kept as CI artifacts).
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import Built
from test_serving_http import CHROMIUM, CIP, Server, _environment, start, stop

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "data" / "screenshots" / "workspace"
USERS = {"maria": ("editor", "maria-password-1"), "viktor": ("viewer", "viktor-password-1")}
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)

# The SQL a data analyst would write for the segment, straight from the raw tables: a
# Product Added in the 3 days before the data's clock, and no order (or Order Completed
# event of an order the orders table lacks) after the customer's last Product Added.
CART_NO_ORDER_SQL = """
WITH clock AS (SELECT greatest((SELECT max(timestamp) FROM raw_events),
                               (SELECT max(ordered_at) FROM raw_orders)) AS now),
events AS (SELECT m.customer_id, e.event, e.timestamp AS t, e.properties->>'order_id' AS order_id
           FROM raw_events e JOIN identity_map m
             ON m.source = 'events' AND m.record_key = e.message_id
           WHERE e.type = 'track' AND e.timestamp <= (SELECT now FROM clock)),
adds AS (SELECT customer_id, max(t) AS last_add FROM events WHERE event = 'Product Added'
         GROUP BY customer_id),
purchases AS (SELECT m.customer_id, o.ordered_at AS t FROM raw_orders o JOIN identity_map m
                ON m.source = 'orders' AND m.record_key = o.order_id
              UNION ALL
              SELECT customer_id, t FROM events WHERE event = 'Order Completed'
                AND order_id NOT IN (SELECT order_id FROM raw_orders WHERE order_id IS NOT NULL))
SELECT count(*) FROM adds a
WHERE EXISTS (SELECT 1 FROM events e WHERE e.customer_id = a.customer_id
                AND e.event = 'Product Added'
                AND e.t > (SELECT now FROM clock) - INTERVAL 3 DAY)
  AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = a.customer_id
                    AND p.t > a.last_add AND p.t <= (SELECT now FROM clock))
"""


@pytest.fixture(scope="module")
def server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`cip serve` on a copy of the built universe as `cip run` left it (not `served`, whose
    warehouse other tests' collectors add events to, moving its clock), with two accounts
    from `cip users add` (which, as any `cip` command, re-points the copied folder)."""
    data_dir = tmp_path_factory.mktemp("workspace") / "data"
    shutil.copytree(built.data_dir, data_dir)
    for name, (role, password) in USERS.items():
        added = subprocess.run(
            [CIP, "users", "add", name, "--role", role, "--password-stdin"],
            input=password + "\n", env=_environment(data_dir), capture_output=True, text=True,
        )  # fmt: skip
        assert added.returncode == 0, added.stdout + added.stderr
        assert password not in added.stdout + added.stderr
    log = tmp_path_factory.mktemp("workspace-log") / "serve.log"
    server = start(["serve"], data_dir=data_dir, log=log, ready="/readyz")
    yield server
    stop(server)
    for password in (p for _, p in USERS.values()):
        assert password not in server.output()


def _count(warehouse: Path, sql: str) -> int:
    for attempt in range(20):  # the server's collector loader may hold the file a moment
        try:
            with duckdb.connect(str(warehouse), read_only=True) as con:
                return con.execute(sql).fetchone()[0]
        except duckdb.IOException:
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("the warehouse stayed locked")


class Camera:
    """Screenshots of each page, in the data folder and the project's artifacts folder."""

    def __init__(self, data_dir: Path) -> None:
        self.folders = [data_dir / "screenshots", ARTIFACTS]
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str) -> None:
        path = self.folders[0] / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, self.folders[1] / path.name)


def _sign_in(page, base: str, user: str) -> None:
    page.goto(f"{base}/app/segments")
    assert "/app/login" in page.url  # no session: the form
    page.fill("#name", user)
    page.fill("#password", USERS[user][1])
    page.click("button[type=submit]")
    page.wait_for_url("**/app/segments")


def test_an_editor_builds_saves_runs_and_sends_a_segment_and_a_viewer_cannot_save(
    server: Server, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    camera = Camera(server.data_dir)
    warehouse = server.data_dir / "warehouse.duckdb"
    expected = _count(warehouse, CART_NO_ORDER_SQL)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server.base}/app/builder")
            camera(page, "1-login")
            _sign_in(page, server.base, "maria")
            camera(page, "2-segments")

            page.click("text=New segment")
            page.fill("#seg-name", "cart_no_order_3d")
            page.fill("#seg-description", "Added to cart in the last 3 days and did not buy.")
            page.select_option("select[name=kind_0]", "event")
            page.wait_for_selector("select[name=event_0]")
            page.select_option("select[name=event_0]", "cart_add")
            page.fill("input[name=within_0]", "3")
            page.select_option("select[name=kind_1]", "event")
            page.wait_for_selector("select[name=event_1]")
            page.select_option("select[name=event_1]", "purchase")
            page.select_option("select[name=count_1]", "none")
            page.select_option("select[name=after_1]", "cart_add")
            yaml_box = page.locator("#preview-yaml")
            expect(yaml_box).to_contain_text("after_last: cart_add", timeout=15_000)
            expect(yaml_box).to_contain_text("within_days: 3")
            shown = int(page.locator("#preview-size").inner_text().replace(",", ""))
            assert shown == expected > 0
            camera(page, "3-builder")

            page.click("#save")
            page.wait_for_url("**/app/segments/cart_no_order_3d?saved=1")
            saved = Path(re.search(r"Saved to (\S+)\.", page.inner_text(".notice")).group(1))
            assert saved == server.data_dir.resolve() / "segments" / "cart_no_order_3d.yaml"
            written = yaml.safe_load(saved.read_text())
            assert written["rule"]["all"][1] == {
                "event": "purchase", "after_last": "cart_add", "max_count": 0
            }  # fmt: skip
            assert page.inner_text("#definition").strip() == saved.read_text().strip()
            validate = subprocess.run(
                [CIP, "segments", "validate"], env=_environment(server.data_dir),
                capture_output=True, text=True,
            )  # fmt: skip
            assert validate.returncode == 0, validate.stdout + validate.stderr
            assert "cart_no_order_3d" in validate.stdout

            page.click("#run")
            page.wait_for_url("**/app/segments/cart_no_order_3d")
            assert int(page.inner_text("#member-count").replace(",", "")) == expected
            rows = page.locator("#members tbody tr")
            assert rows.count() == min(expected, 100)
            assert "•••" in rows.first.inner_text()
            camera(page, "4-segment")

            with page.expect_download() as download:
                page.click("#download")
            csv_path = tmp_path / "members.csv"
            download.value.save_as(csv_path)
            with csv_path.open() as file:
                members = list(csv.DictReader(file))
            assert len(members) == expected
            assert not any("@" in m["contact"] and "•••" not in m["contact"] for m in members)

            page.click("#send")
            page.wait_for_url("**/app/segments/cart_no_order_3d*")
            log = page.inner_text("#delivery-log")
            assert "files (full)" in log and "sent" in log
            camera(page, "5-sent")
            page.goto(f"{server.base}/app/segments")
            assert "cart_no_order_3d" in page.inner_text("#segments")
            camera(page, "6-segments-after-run")
            assert not errors, errors

            viewer = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            _sign_in(viewer, server.base, "viktor")
            viewer.goto(f"{server.base}/app/builder")
            assert viewer.locator("#save").count() == 0
            camera(viewer, "7-viewer-builder")
            token = viewer.locator("input[name=csrf]").first.get_attribute("value")
            forged = viewer.request.post(
                f"{server.base}/app/builder/save",
                form={"csrf": token, "name": "viewer_made", "kind_0": "event",
                      "event_0": "cart_add"},
            )  # fmt: skip
            assert forged.status == 403
            assert not (server.data_dir / "segments" / "viewer_made.yaml").exists()
        finally:
            browser.close()
