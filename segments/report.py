"""The marketers' report: one self-contained HTML page about the segments and the models.

For each segment: what it is, its size now and over data time (the time the data
reached at each run, not when the run happened), who entered and who left at the
latest refresh (by name and masked contact, never a raw address), and a link to
download it; for a predictive segment, what to do with it and how well the model
behind it does, in plain words (how much its top 10% hold, against what a perfect
model's would). Then how good the churn and value models are, the score
distributions, and how the latest deliveries went. Charts are inline SVG drawn with
matplotlib, so the file opens anywhere, offline.
`report_html` returns the page (the service serves it at GET /report);
`write_report` writes it into the exports folder.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from pathlib import Path

import duckdb
import pandas as pd
from matplotlib.dates import ConciseDateFormatter
from matplotlib.figure import Figure

from segments.definition import SegmentDefinition
from segments.fields import warehouse_tables
from segments.journeys.definition import Journey
from segments.journeys.measure import funnel
from segments.journeys.measure import lift as lift_of
from segments.lift import Lift
from segments.membership import changes_between, runs, utc_now
from segments.people import people_frame
from warehouse.tables import ACTIVATION_LOG, CURRENT_SCORES, JOURNEY_ENROLLMENTS

__all__ = ["report_html", "write_report"]

_SHOWN_CHANGES = 10
_INK, _ACCENT, _MUTED = "#1f2a44", "#d9480f", "#8a94a6"

_STYLE = """
body { font-family: system-ui, sans-serif; color: #1f2a44; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; line-height: 1.45; }
h1 { margin-bottom: .2rem; } .meta { color: #8a94a6; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #e3e7ee; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: #8a94a6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: #2b8a3e; } .down { color: #c92a2a; }
.lift { font-size: 1.3rem; background: #fff4e6; border-left: 4px solid #d9480f;
        padding: .8rem 1rem; }
.basis, .none { color: #8a94a6; }
.charts { display: flex; gap: 2rem; flex-wrap: wrap; }
section.segment { border-top: 2px solid #e3e7ee; padding-top: .5rem; }
.changes { display: flex; gap: 2rem; flex-wrap: wrap; }
.changes > div { flex: 0 1 auto; min-width: 16rem; }
a.download { font-weight: 600; }
.advice { background: #f1f3f5; border-left: 4px solid #1f2a44; padding: .4rem 1rem; }
.advice p { margin: .4rem 0; }
.trend { min-width: 18rem; }
"""


def report_html(
    con: duckdb.DuckDBPyConnection,
    *,
    definitions: Sequence[SegmentDefinition] = (),
    downloads: Mapping[str, str] | None = None,
    lift: Lift | None = None,
    value_lift: Lift | None = None,
    journeys: Sequence[Journey] = (),
    title: str = "Customer segments",
) -> str:
    """The report as one HTML page; `downloads` maps a segment to the href of its file;
    `lift` and `value_lift` measure the churn and value models; `journeys` get their
    funnels and lift once the runner has run."""
    history = runs(con)
    described = {d.name: d.description for d in definitions}
    advice = {d.name: _advice(d, {"churn": lift, "ltv": value_lift}) for d in definitions}
    segments = list(dict.fromkeys([*described, *history["segment"]]))
    latest = history.drop_duplicates("segment", keep="last").set_index("segment")
    scores = _current_scores(con)
    as_of = latest["as_of"].max() if len(latest) else None
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Data as of {_when(as_of)} · report made {_when(utc_now())} UTC</p>',
        "<h2>Segments</h2>",
        _overview(segments, latest, history, described, downloads or {}),
        "<h2>How good are the models?</h2>",
        _lift_section(lift),
        _value_section(value_lift),
        "<h2>Scores of all customers</h2>",
        _distributions(scores),
        *(
            _segment_section(con, s, latest, history, described, advice.get(s, ""))
            for s in segments
        ),
        "<h2>Latest deliveries</h2>",
        _deliveries(con),
        *_journeys_section(con, journeys),
    ]
    body = "\n".join(parts)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def write_report(con: duckdb.DuckDBPyConnection, *, path: Path, **options: object) -> Path:
    """Write `report_html(con, **options)` to `path` (through a temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(report_html(con, **options), encoding="utf-8")  # type: ignore[arg-type]
    partial.replace(path)
    return path


def _overview(segments, latest, history, described, downloads) -> str:
    rows = []
    for segment in segments:
        if segment not in latest.index:
            rows.append(f'<tr><td>{escape(segment)}</td><td colspan=4 class="none">not refreshed'
                        " yet</td></tr>")  # fmt: skip
            continue
        run = latest.loc[segment]
        sizes = _by_data_time(history[history["segment"] == segment])["size"].tolist()
        href = downloads.get(segment)
        link = (
            f'<a class="download" href="{escape(href)}" download>download</a>'
            if href
            else '<span class="none">not exported</span>'
        )
        rows.append(
            f'<tr data-segment="{escape(segment)}"><td><a href="#seg-{escape(segment)}">'
            f"{escape(segment)}</a><br><small>{escape(described.get(segment, ''))}</small></td>"
            f'<td class="num size">{run["size"]:,}</td>'
            f'<td class="num"><span class="up entered">+{run["entered"]:,}</span> / '
            f'<span class="down exited">−{run["exited"]:,}</span></td>'
            f"<td>{_sparkline(sizes)}</td><td>{link}</td></tr>"
        )
    head = "<tr><th>Segment</th><th>Members</th><th>Entered / left</th><th>Trend</th><th></th></tr>"
    return f'<table class="overview">{head}{"".join(rows)}</table>'


def _lift_section(lift: Lift | None) -> str:
    if lift is None:
        return (
            '<p class="lift none">No lift measurement yet: no scoring is older than the churn '
            "horizon, and no champion model with a held-out lift was found.</p>"
        )
    chart = ""
    if lift.deciles is not None:
        table = lift.deciles.sort_index()
        figure = Figure(figsize=(5.5, 2.4))
        ax = figure.add_subplot()
        ax.bar(table.index, table["capture"] * 100, color=[_MUTED] * 9 + [_ACCENT])
        ax.set_xticks(range(1, 11))
        ax.set_xlabel("churn-probability decile (10 = riskiest)")
        ax.set_ylabel("% of churners")
        chart = _svg(figure)
    return (
        f'<p class="lift" id="churn-lift" data-capture="{lift.capture:.4f}">'
        f"{escape(lift.sentence)}</p>"
        f'<p class="basis">{escape(lift.basis)}</p>{chart}'
    )


def _distributions(scores: pd.DataFrame) -> str:
    if scores.empty:
        return '<p class="none">No scores yet.</p>'
    charts = []
    for column, label, fmt in (
        ("churn_probability", "Churn probability", "{:.0%}"),
        ("predicted_ltv", "Predicted lifetime value", "{:,.0f}"),
    ):
        values = scores[column].dropna()
        figure = Figure(figsize=(4.6, 2.4))
        ax = figure.add_subplot()
        ax.hist(values, bins=30, color=_INK)
        ax.axvline(values.median(), color=_ACCENT)
        ax.set_xlabel(label)
        ax.set_ylabel("customers")
        caption = (
            f'{label}: median <b class="median-{column}">{fmt.format(values.median())}</b>, '
            f"{len(values):,} customers scored."
        )
        charts.append(f"<figure>{_svg(figure)}<figcaption>{caption}</figcaption></figure>")
    return f'<div class="charts">{"".join(charts)}</div>'


def _value_section(lift: Lift | None) -> str:
    if lift is None:
        return '<p class="lift none" id="value-lift">No measurement of the value model yet.</p>'
    return (
        f'<p class="lift" id="value-lift" data-capture="{lift.capture:.4f}">'
        f'{escape(lift.sentence)}</p><p class="basis">{escape(lift.basis)}</p>'
    )


# What to do with the members of a segment that a model feeds, by the models that feed it.
_ACTIONS = {
    frozenset({"churn", "ltv"}): (
        "Valuable customers who may be leaving: worth a personal effort now (a call, a tailored "
        "offer, a service check) before they lapse; their value pays for it."
    ),
    frozenset({"churn"}): (
        "People likely to stop buying: reach them before they lapse with a win-back or "
        "reminder message; keep a holdout to see who would have bought anyway, and keep "
        "discounts for the ones worth most."
    ),
    frozenset({"ltv"}): (
        "The customers expected to bring the most: look after them (early access, better "
        "service, thanks) rather than discount them; they buy without it."
    ),
}
_LOOKALIKE_ACTION = (
    "People who behave like your best customers but have not bought: an acquisition audience "
    "for ad platforms or a welcome offer; expect fewer to buy than among customers."
)
_MODEL_NAMES = {"churn": "churn model", "ltv": "value model"}


def _advice(definition: SegmentDefinition, lifts: Mapping[str, Lift | None]) -> str:
    """For a segment a model feeds: what to do, and how good each model behind it is."""
    feeds = _models_feeding(definition.model_dump(by_alias=True))
    if not feeds and definition.lookalike is None:
        return ""
    action = _LOOKALIKE_ACTION if definition.lookalike is not None else _ACTIONS[frozenset(feeds)]
    quality = []
    for task in sorted(feeds):
        lift = lifts.get(task)
        measured = escape(lift.sentence) if lift else "not measured yet (no held-out test)."
        quality.append(
            f'<p class="model model-{task}"><b>The {_MODEL_NAMES[task]}:</b> {measured}</p>'
        )
    if definition.lookalike is not None:
        quality.append(
            '<p class="model model-lookalike"><b>The look-alike model</b> is fitted afresh at '
            "each run on who resembles the seed; nobody has measured yet how many of its "
            "members go on to buy.</p>"
        )
    return (
        f'<div class="advice"><p class="action"><b>What to do:</b> {escape(action)}</p>'
        f"{''.join(quality)}</div>"
    )


def _models_feeding(node: object) -> set[str]:
    """The models whose scores a definition's rules (or look-alike seed) read."""
    found: set[str] = set()
    if isinstance(node, dict):
        field = node.get("field")
        if isinstance(field, str) and field.startswith("scores."):
            column = field.removeprefix("scores.")
            found.add("churn" if column.startswith("churn") else "ltv")
        for value in node.values():
            found |= _models_feeding(value)
    elif isinstance(node, list):
        for value in node:
            found |= _models_feeding(value)
    return found


def _segment_section(con, segment, latest, history, described, advice) -> str:
    if segment not in latest.index:
        return ""
    own = history[history["segment"] == segment]
    previous = own["evaluated_at"].iloc[-2] if len(own) > 1 else None
    changes = changes_between(
        con, segment=segment, since=previous, until=latest.loc[segment, "evaluated_at"]
    )
    shown = pd.concat(
        [changes.loc[changes["change"] == c, "customer_id"].iloc[:_SHOWN_CHANGES]
         for c in ("entered", "exited")]
    )  # fmt: skip
    people = people_frame(con, customer_ids=list(shown)) if len(shown) else None
    times = ",".join(f"{pd.Timestamp(t):%Y-%m-%d %H:%M}" for t in _by_data_time(own)["as_of"])
    lists = "".join(
        _changes_list(changes, people, change, heading)
        for change, heading in (("entered", "Entered"), ("exited", "Left"))
    )
    return (
        f'<section class="segment" id="seg-{escape(segment)}"><h2>{escape(segment)}</h2>'
        f"<p>{escape(described.get(segment, ''))}</p>{advice}"
        f'<div class="changes"><div class="trend" data-times="{times}">{_trend_chart(own)}'
        f"</div>{lists}</div>"
        "</section>"
    )


def _trend_chart(own: pd.DataFrame) -> str:
    """Members over data time: the last run at each data time."""
    points = _by_data_time(own)
    if len(points) < 2:
        only = points.iloc[-1]
        return (
            f'<p class="none">One data time so far ({_when(only["as_of"])}): '
            f"{int(only['size']):,} members. The trend shows from the next data time on.</p>"
        )
    figure = Figure(figsize=(4.5, 1.9), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(points["as_of"], points["size"], marker="o", color=_INK)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set_xlabel("data as of")
    ax.set_ylabel("members")
    ax.set_ylim(bottom=0)
    return _svg(figure)


def _by_data_time(own: pd.DataFrame) -> pd.DataFrame:
    """One row per data time (`as_of`), its latest run's, oldest first."""
    ordered = own.sort_values("evaluated_at").drop_duplicates("as_of", keep="last")
    return ordered.sort_values("as_of")


def _changes_list(
    changes: pd.DataFrame, people: pd.DataFrame | None, change: str, heading: str
) -> str:
    ids = changes.loc[changes["change"] == change, "customer_id"].astype(str)
    if ids.empty or people is None:
        return f'<div><h3>{heading}: 0</h3><p class="none">nobody</p></div>'
    shown = people.reindex(ids.iloc[:_SHOWN_CHANGES])
    rows = "".join(
        f'<tr data-customer="{escape(cid)}"><td>{escape(_text(row["name"], "(no profile)"))}</td>'
        f"<td>{escape(_text(row['contact'], ''))}</td>"
        f'<td class="num">{_maybe(row["churn_probability"], "{:.0%}")}</td>'
        f'<td class="num">{_maybe(row["predicted_value"], "{:,.0f}")}</td></tr>'
        for cid, row in shown.iterrows()
    )
    hidden = len(ids) - _SHOWN_CHANGES
    more = f'<p class="none">and {hidden:,} more</p>' if hidden > 0 else ""
    return (
        f"<div><h3>{heading}: {len(ids):,}</h3><table><tr><th>Name</th><th>Contact</th>"
        f"<th>Churn</th><th>Predicted value</th></tr>{rows}</table>{more}</div>"
    )


def _deliveries(con: duckdb.DuckDBPyConnection) -> str:
    if ACTIVATION_LOG not in warehouse_tables(con):
        return '<p class="none">Nothing delivered yet.</p>'
    latest = con.execute(
        f"""SELECT destination, segment, status, row_count, withheld_no_consent,
                  withheld_profiling_objection, withheld_no_contact, error, finished_at
           FROM {ACTIVATION_LOG} QUALIFY row_number() OVER (
               PARTITION BY destination, segment ORDER BY finished_at DESC) = 1
           ORDER BY destination, segment"""
    ).fetchall()
    rows = "".join(
        f"<tr><td>{escape(d)}</td><td>{escape(s)}</td><td>{escape(status)}</td>"
        f'<td class="num">{n:,}</td>'
        + "".join(f'<td class="num">{w or 0:,}</td>' for w in withheld)
        + f"<td>{escape(error or '')}</td><td>{_when(at)}</td></tr>"
        for d, s, status, n, *withheld, error, at in latest
    )
    head = (
        "<tr><th>Destination</th><th>Segment</th><th>Status</th><th>Sent</th>"
        "<th>Withheld: no consent</th><th>Withheld: objected to profiling</th>"
        "<th>Withheld: no contact identifier</th><th>Error</th><th>When (UTC)</th></tr>"
    )
    return f"<table>{head}{rows}</table>"


def _journeys_section(con: duckdb.DuckDBPyConnection, journeys: Sequence[Journey]) -> list[str]:
    """Each journey's funnel (treated and holdout) and conversion lift."""
    if not journeys or JOURNEY_ENROLLMENTS not in warehouse_tables(con):
        return []
    parts = ["<h2>Journeys</h2>"]
    columns = ["entered", "sent", "delivered", "opened", "clicked", "converted"]
    head = "<tr><th>Group</th><th>Step</th>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    for journey in journeys:
        table = funnel(con, journey=journey)
        rows = "".join(
            f"<tr><td>{escape(row.group)}</td><td>{escape(row.step)}</td>"
            + "".join(f'<td class="num">{getattr(row, c):,}</td>' for c in columns)
            + "</tr>"
            for row in table.itertuples(index=False)
        )
        parts += [
            f'<section class="journey" id="journey-{escape(journey.name)}">'
            f"<h3>{escape(journey.name)}</h3><p>{escape(journey.description)}</p>",
            f"<table>{head}{rows}</table>",
            f'<p class="lift">{escape(lift_of(con, journey=journey).sentence)}</p></section>',
        ]
    return parts


def _current_scores(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    if CURRENT_SCORES not in warehouse_tables(con):
        return pd.DataFrame(columns=["churn_probability", "predicted_ltv"])
    return (
        con.execute(f"SELECT customer_id, churn_probability, predicted_ltv FROM {CURRENT_SCORES}")
        .df()
        .set_index("customer_id")
    )


def _sparkline(sizes: list[int]) -> str:
    if len(sizes) < 2:
        return '<span class="none">one data time so far</span>'
    figure = Figure(figsize=(1.6, 0.4))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.plot(range(len(sizes)), sizes, color=_INK, marker="o" if len(sizes) < 3 else None, ms=3)
    ax.set_ylim(0, max(max(sizes), 1) * 1.1)
    ax.axis("off")
    return _svg(figure)


def _svg(figure: Figure) -> str:
    figure.patch.set_alpha(0)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight" if figure.axes[0].axison else None)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _text(value: object, default: str) -> str:
    return value if isinstance(value, str) else default


def _maybe(value: object, fmt: str) -> str:
    return "–" if value is None or pd.isna(value) else fmt.format(value)


def _when(value: datetime | pd.Timestamp | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%d %b %Y %H:%M}"
