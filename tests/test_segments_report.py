"""The marketers' report, opened in a real headless Chromium: it renders and its numbers match."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from segments import EXAMPLES_DIR, activate, load_definitions, refresh_segments
from segments.destinations import FileDestination, RetryPolicy
from segments.lift import Lift, realised_lift
from segments.report import report_html, write_report

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
    # A perfect model's riskiest 10% (one customer of ten) would hold one churner in three too.
    assert lift.best == pytest.approx(1 / 3)
    assert "The best possible is 33%" in lift.sentence and "does 100% as well" in lift.sentence


def test_the_report_names_members_masks_contacts_plots_data_time_and_advises(
    segment_world: Path,
) -> None:
    with duckdb.connect(str(segment_world)) as con:
        definitions = load_definitions(folders=[EXAMPLES_DIR])
        refresh_segments(con, definitions=definitions, as_of=datetime(2026, 6, 20), run_id="r0")
        refresh_segments(con, definitions=definitions, run_id="r1")
        refresh_segments(con, definitions=definitions, run_id="r2")  # same data time as r1
        con.execute("INSERT INTO raw_orders VALUES ('o-new', 'online', '2026-06-30 12:00', 20.0)")
        con.execute("INSERT INTO identity_map VALUES ('orders', 'o-new', 'c05')")
        refresh_segments(con, definitions=definitions, run_id="r3")
        html = report_html(
            con,
            definitions=definitions,
            lift=Lift(capture=0.11, basis="held-out test", best=0.122),
            value_lift=Lift(capture=0.45, basis="held-out test", task="ltv", ranking=0.62),
        )
        changed = con.execute(
            "SELECT m.segment, m.customer_id FROM segment_membership m JOIN segment_runs r "
            "ON r.run_id = 'r3' AND r.segment = m.segment "
            "AND r.evaluated_at IN (m.entered_at, m.exited_at)"
        ).fetchall()
    # Who entered and left at the latest run, by name and masked contact; no raw address or
    # phone anywhere in the page.
    assert changed
    for segment, cid in changed:
        listed = re.search(rf'id="seg-{segment}">.*?</section>', html, re.S).group(0)
        row = re.search(rf'<tr data-customer="{cid}">(.*?)</tr>', listed).group(1)
        assert f"<td>Name{cid}</td><td>{cid[0]}•••@example.com</td>" in row
    assert "@example.com" not in html.replace("•••@example.com", "")
    assert "+442079460" not in html
    text = re.search(r'id="seg-at_risk_valuable">.*?</section>', html, re.S).group(0)
    # What to do, and the model behind it against a perfect one, in words.
    assert "<b>What to do:</b> People likely to stop buying" in text
    assert "riskiest hold 11% of the customers who churned" in text
    assert (
        "The best possible is 12% (a perfect model&#x27;s top 10%), so it does 90% as well" in text
    )
    assert "value model" not in text  # past spend, not the value model, says who is valuable
    # Not predictive: no advice; a look-alike says its model is not measured.
    cart = re.search(r'id="seg-cart_abandoners_3d">.*?</section>', html, re.S).group(0)
    assert "What to do" not in cart
    lookalike = re.search(r'id="seg-lookalike_prospects">.*?</section>', html, re.S).group(0)
    assert "behave like your best customers" in lookalike and "look-alike model" in lookalike
    assert "values highest brought 45% of the value" in lookalike  # its seed: the top LTV decile
    assert "orders customers 62% as well as a perfect model" in lookalike
    # The trend is over data time: two points (20 and 30 June) for four runs.
    trend = re.search(r'<div class="trend" data-times="([^"]*)">', text).group(1)
    assert trend == "2026-06-20 00:00,2026-06-30 12:00"
    assert text.count("<svg") == 1


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed")
def test_report_renders_in_a_browser_with_the_tables_numbers(segment_world: Path, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    exports = segment_world.parent / "exports"
    with duckdb.connect(str(segment_world)) as con:
        definitions = load_definitions(folders=[EXAMPLES_DIR])
        refresh_segments(con, definitions=definitions, as_of=datetime(2026, 6, 20), run_id="r0")
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
        assert "hold 33% of the customers who churned" in page.locator("#churn-lift").inner_text()
        assert page.locator(".median-churn_probability").inner_text() == f"{median:.0%}"
        section = page.locator("#seg-cart_abandoners_3d")
        assert "Left: 1" in section.inner_text() and "Namec05" in section.inner_text()
        assert "c•••@example.com" in section.inner_text()
        assert "c05@example.com" not in page.content()
        assert page.locator("svg").count() >= len(expected) * 2 + 3  # trends, charts
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
