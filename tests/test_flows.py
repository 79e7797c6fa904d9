"""The flows as a notebook calls them: settings in, an outcome out, progress by callback,
nothing printed. (The pipeline's other stages run through the flows in `conftest.served`.)"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines import flows
from pipelines.config import Settings


class Heard:
    """A progress callback that keeps what it hears."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None, float | None]] = []

    def __call__(self, step: str, /, *, done: float | None = None, total: float | None = None):
        self.calls.append((step, done, total))


def test_stage_names_follow_the_data_flow() -> None:
    assert flows.pipeline.stage_names()[:3] == ["generate", "load", "collect"]
    assert flows.pipeline.stage_names("segments") == ["segments", "activate", "journeys"]
    assert flows.pipeline.stage_names("train", "score") == ["train", "score"]
    with pytest.raises(ValueError, match="unknown stage 'segment'; stages are generate, load"):
        flows.pipeline.stage_names(until="segment")


def test_segments_and_activation_flows_return_outcomes_and_report_progress(
    settings: Settings, segment_world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    heard, ended = Heard(), []
    outcomes = flows.pipeline.run(
        settings, start="segments", progress=heard, on_outcome=lambda *o: ended.append(o)
    )
    assert capsys.readouterr().out == ""  # flows print nothing
    assert [name for name, _ in ended] == ["segments", "activate", "journeys"]
    refreshed, activated = outcomes["segments"], outcomes["activate"]
    assert isinstance(refreshed, flows.segments.SegmentsOutcome)
    sizes = {run.segment: run.size for run in refreshed.runs}
    assert sizes["likely_to_churn"] == 2
    assert refreshed.figures["likely_to_churn"] == "2 members (+2 / -0)"
    assert isinstance(activated, flows.activate.ActivateOutcome)
    assert activated.figures["sent"] == len(refreshed.runs) and not activated.failed
    assert activated.report == settings.paths.exports / "report.html"
    assert activated.report.exists()
    segments_total = len(refreshed.runs)
    assert ("segments", segments_total, segments_total) in heard.calls
    assert ("deliveries", segments_total, segments_total) in heard.calls

    again = flows.activate.run(settings)  # nothing new: every delivery is up to date
    assert again.figures["sent"] == 0 and again.figures["up to date"] == segments_total
    with pytest.raises(ValueError, match=r"unknown destinations \['nope'\]; known: \['files'\]"):
        flows.activate.run(settings, destinations=["nope"])
    changes = flows.segments.changes(settings, segment="likely_to_churn")
    assert changes.entered == ["c01", "c03"] and changes.exited == []
    with duckdb.connect(str(segment_world), read_only=True) as con:
        logged = con.execute("SELECT count(*) FROM activation_log").fetchone()
    assert logged == (segments_total,)  # up-to-date deliveries are not logged again
