"""The marketers' report, opened in a real headless Chromium: it renders and its numbers match."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from segments import EXAMPLES_DIR, activate, load_definitions, refresh_segments
from segments.destinations import FileDestination, RetryPolicy
from segments.lift import realised_lift
from segments.report import write_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_realised_lift_counts_the_churners_of_an_old_scoring(segment_world: Path) -> None:
    with duckdb.connect(str(segment_world)) as con:
        lift = realised_lift(con, horizon_days=90)
    # The 2026-01-01 scoring ranked c01..c10 riskiest first; c01, c02 and c05 then bought
    # nothing for 90 days, so the riskiest 10% (c01) hold one churner in three.
    assert lift is not None
    assert lift.capture == pytest.approx(1 / 3)
    assert lift.sentence.startswith("The 10% of customers the model rates riskiest hold 33% ")
    assert "01 January 2026: of its 10 customers, 3 bought nothing in the 90 days" in lift.basis
    assert int(lift.deciles["churners"].sum()) == 3


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")
def test_report_renders_in_a_browser_with_the_tables_numbers(segment_world: Path, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    exports = segment_world.parent / "exports"
    with duckdb.connect(str(segment_world)) as con:
        definitions = load_definitions(folders=[EXAMPLES_DIR])
        refresh_segments(con, definitions=definitions, run_id="r1")
        con.execute("INSERT INTO raw_orders VALUES ('o-new', 'online', '2026-06-30 12:00', 20.0)")
        con.execute("INSERT INTO identity_map VALUES ('orders', 'o-new', 'c05')")
        refresh_segments(con, definitions=definitions, run_id="r2")
        deliveries = activate(
            con, destinations=[FileDestination(name="files")], exports=exports,
            retry=RetryPolicy(), phone_region="GB",
        )  # fmt: skip
        downloads = {d.segment: str(Path(d.target).relative_to(exports)) for d in deliveries}
        path = write_report(
            con, path=exports / "report.html", definitions=definitions, downloads=downloads,
            lift=realised_lift(con, horizon_days=90),
        )  # fmt: skip
        expected = {
            segment: (size, entered, exited)
            for segment, size, entered, exited in con.execute(
                "SELECT segment, size, entered, exited FROM segment_runs WHERE run_id = 'r2'"
            ).fetchall()
        }
        median = con.execute("SELECT median(churn_probability) FROM current_scores").fetchone()[0]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri())
        assert page.title() == "Customer segments"
        shown = {}
        for row in page.locator("table.overview tr[data-segment]").all():
            shown[row.get_attribute("data-segment")] = (
                int(row.locator("td.size").inner_text().replace(",", "")),
                int(row.locator(".entered").inner_text().lstrip("+")),
                int(row.locator(".exited").inner_text().lstrip("−")),
            )
            href = row.locator("a.download").get_attribute("href")
            assert (exports / href).is_file()
        assert shown == expected
        assert expected["cart_abandoners_3d"] == (1, 0, 1)
        assert "hold 33% of the customers who churned" in page.locator("p.lift").inner_text()
        assert page.locator(".median-churn_probability").inner_text() == f"{median:.0%}"
        section = page.locator("#seg-cart_abandoners_3d")
        assert "Left: 1" in section.inner_text() and "c05" in section.inner_text()
        assert page.locator("svg").count() >= len(expected) * 2 + 3  # trends, charts
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
