"""From a warehouse to fitted churn, LTV and expected-orders models as of a date, for any history.

`fit_models` is what `cip train` registers and `cip backtest` measures. Only orders up
to the as-of date are visible. Per horizon (churn has its own; LTV and orders share
one), it places the cutoffs (`plan_cutoffs`):

- when the history holds training, validation and test label windows, LightGBM is
  tuned and compared with the label-free model on the held-out test cutoff
  (`train_task`), then refit on the latest labelled cutoffs (`refit_model`); it becomes
  the task's model only if it won;
- when it does not (a young business), the label-free model (BG/NBD + Gamma-Gamma)
  is the model, and the run says why.

Either way the label-free model is fitted on the whole history and decile cut points
come from the population the model will score: everyone with an order before the
as-of date (people only, unless `include_fragments`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from features import FeatureSettings, build_snapshots
from models.btyd import BTYD_OUTPUTS, BTYDModel
from models.champions import ChampionModel
from models.datasets import ExampleSet, examples_with_features
from models.labels import (
    CutoffPlan,
    HorizonError,
    data_span,
    month_start,
    orders_sql,
    plan_cutoffs,
    visible_until,
)
from models.settings import ModelSettings
from models.training import (
    TaskResult,
    label_free_model,
    refit_model,
    train_task,
    with_deciles,
)

if TYPE_CHECKING:
    from feast import FeatureStore  # imported by `features`, after its typeguard switch

__all__ = ["CALENDAR", "Fitted", "fit_models", "horizons_of", "services_of"]

# Features saying where a cutoff falls in the year (`features.definitions`), and how far
# apart the first and last training cutoffs must be for a model to read them (eleven
# months: twelve monthly cutoffs).
CALENDAR = ("as_of_year_sin", "as_of_year_cos")
YEAR_SPAN_DAYS = 330


@dataclass
class Fitted:
    """One task's model as of a date: the chosen one, both candidates, and why."""

    task: str
    model: ChampionModel
    label_free: ChampionModel
    supervised: ChampionModel | None
    result: TaskResult | None
    plan: CutoffPlan | None
    reason: str
    population: pd.DataFrame  # the customers at the as-of date, with the model's features
    refit_cutoffs: tuple[datetime, ...] = ()
    test_rows: pd.DataFrame | None = None  # the held-out cutoff's rows, labelled
    pnbd: ChampionModel | None = None  # Pareto/NBD + Gamma-Gamma, fitted on the whole history


def horizons_of(settings: ModelSettings, horizon_days: int | None = None) -> dict[str, int]:
    """Each task's horizon: the settings', or one for all (a backtest)."""
    if horizon_days is not None:
        return dict.fromkeys(("churn", "ltv", "orders"), horizon_days)
    return {
        "churn": settings.churn_horizon_days,
        "ltv": settings.ltv_horizon_days,
        "orders": settings.ltv_horizon_days,
    }


def services_of(settings: ModelSettings) -> dict[str, str]:
    """Each task's Feast feature service (orders reads the LTV one)."""
    return {
        "churn": settings.churn_service,
        "ltv": settings.ltv_service,
        "orders": settings.ltv_service,
    }


def fit_models(
    con: duckdb.DuckDBPyConnection,
    *,
    store: FeatureStore,
    feast_dir: Path,
    feature_settings: FeatureSettings,
    settings: ModelSettings,
    as_of: date | None = None,
    horizon_days: int | None = None,
    on_step: Callable[[str], None] | None = None,
    on_trial: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Fitted]:
    """Fit every task as of `as_of` (default: the latest order); see the module docstring.

    `horizon_days` gives every task the same horizon (backtests). Raises `HorizonError`
    with what is missing when there are no orders, or a horizon longer than the history.
    """
    say = on_step or (lambda _: None)
    orders = orders_sql(include_fragments=settings.include_fragments)
    first, last = data_span(con, orders=orders, as_of=as_of)
    as_of = as_of or last
    end = visible_until(as_of)
    visible = f"SELECT * FROM ({orders}) WHERE ordered_at < TIMESTAMP '{end}'"
    history = (end - datetime.combine(first, datetime.min.time())).days
    horizons, services = horizons_of(settings, horizon_days), services_of(settings)
    for task, horizon in horizons.items():
        if horizon > history:
            setting = "--horizon" if horizon_days else f"models.{task}_horizon_days"
            setting = (
                "models.ltv_horizon_days" if task == "orders" and not horizon_days else setting
            )
            raise HorizonError(
                f"the {task} horizon of {horizon} days ({setting}) is longer than the history "
                f"of {history} days ({first} to {as_of}): no model can say much that far "
                f"ahead from so little; shorten it to at most {history} days"
            )
    fitted: dict[str, Fitted] = {}
    groups: dict[tuple[int, str], list[str]] = {}
    for task in horizons:
        groups.setdefault((horizons[task], services[task]), []).append(task)
    plans = {}
    for horizon, _ in groups:
        refit = _refit_cutoffs(first=first, end=end, horizon=horizon, settings=settings)
        plan, why = _plan(first=first, as_of=as_of, horizon=horizon, refit=refit, settings=settings)
        plans[horizon] = (plan, why, refit, sorted({*(plan.all if plan else ()), *refit, end}))
    every = sorted({c for *_, cutoffs in plans.values() for c in cutoffs})
    built = build_snapshots(
        con, as_of=every, feast_dir=feast_dir, settings=feature_settings, reuse=True
    )
    say(
        f"feature snapshots at {len(every)} cutoffs ({len(built.reused)} fresh from `cip "
        f"features`, {len(built.as_of)} built)"
    )
    label_free: dict[pd.Timestamp, BTYDModel] = {}  # one fit per cutoff, whatever the horizon
    pnbd: dict[pd.Timestamp, BTYDModel | None] = {}  # Pareto/NBD: at test cutoffs and the end
    for (horizon, service), tasks in groups.items():
        plan, why, refit, cutoffs = plans[horizon]
        say(f"{'/'.join(tasks)}: features and label-free models at {len(cutoffs)} cutoffs")
        examples = examples_with_features(
            con,
            store=store,
            feast_dir=feast_dir,
            feature_settings=feature_settings,
            services=[service],
            cutoffs=cutoffs,
            horizon_days=horizon,
            settings=settings,
            orders=visible,
            build=False,
            fitted=label_free,
        )
        if end not in {c.to_pydatetime() for c in examples.btyd}:
            raise HorizonError(
                f"the label-free model cannot be fitted on the history up to {as_of}: "
                + examples.btyd_failures.get(pd.Timestamp(end), "no customers")
            )
        for task in tasks:
            say(f"{task}: {'search' if plan else 'label-free model'}")
            fitted[task] = _fit_task(
                task,
                examples=examples,
                pnbd={
                    c: _pnbd_at(c, examples, pnbd, settings)
                    for c in (end, *((plan.test,) if plan else ()))
                },
                plan=plan,
                why=why,
                refit=refit,
                end=end,
                service=service,
                horizon=horizon,
                settings=settings,
                on_trial=on_trial,
            )
    return fitted


def _plan(
    *, first: date, as_of: date, horizon: int, refit: tuple[datetime, ...], settings: ModelSettings
) -> tuple[CutoffPlan | None, str]:
    """Cutoffs one after another when the history allows; else, with labelled cutoffs at
    all, customers split at them (`CutoffPlan.by_customer`); else none, and why."""
    try:
        plan = plan_cutoffs(
            first_order=first,
            as_of=as_of,
            horizon_days=horizon,
            step_months=settings.cutoff_step_months,
            train_cutoffs=settings.train_cutoffs,
            min_history_days=settings.min_history_days,
        )
    except HorizonError as error:
        if refit:
            return CutoffPlan(horizon, refit, refit[-1], refit[-1], by_customer=True), ""
        return None, (
            f"the history holds no labelled {horizon}-day window after "
            f"{settings.min_history_days} days of history (models.min_history_days) before "
            f"{as_of}; {error}"
        )
    return plan, ""


def _refit_cutoffs(
    *, first: date, end: datetime, horizon: int, settings: ModelSettings
) -> tuple[datetime, ...]:
    """The latest labelled cutoffs: month starts back from one horizon before the end."""
    earliest = datetime.combine(first, datetime.min.time()) + timedelta(settings.min_history_days)
    latest = end - timedelta(days=horizon)
    cutoffs = [
        month_start(latest, back=settings.cutoff_step_months * k)
        for k in range(settings.train_cutoffs)
    ]
    return tuple(sorted(c for c in cutoffs if c >= earliest))


def _feature_names(
    names: list[str], *, plan: CutoffPlan | None, refit: tuple[datetime, ...]
) -> list[str]:
    """The features, without the calendar ones (`CALENDAR`) unless the training and refit
    cutoffs each span a year: a model sees the season only once it has labels all
    around the year; before that, where a cutoff falls in the year is just a stand-in for
    its date, which the model would extrapolate."""
    spans = [max(c) - min(c) for c in (plan.train if plan else (), refit) if c]
    if len(spans) == 2 and min(spans) >= timedelta(days=YEAR_SPAN_DAYS):
        return list(names)
    return [n for n in names if n not in CALENDAR]


def _likelier(
    bgnbd: ChampionModel, pnbd: ChampionModel | None, population: pd.DataFrame, why: str
) -> tuple[ChampionModel, str]:
    """Without labels, the label-free model under which the history is likelier (same data,
    four parameters each), and why."""
    fits = {"BG/NBD": bgnbd.btyd.log_likelihood(population)}
    if pnbd is not None:
        fits["Pareto/NBD"] = pnbd.btyd.log_likelihood(population)
    model = pnbd if pnbd is not None and fits["Pareto/NBD"] > fits["BG/NBD"] else bgnbd
    scores = ", ".join(f"{name} {value:.4f}" for name, value in fits.items())
    return model, (
        f"the label-free model ({model.btyd.name}) is the model: {why}; it describes the "
        f"history best (mean log-likelihood per customer: {scores})"
    )


def _pnbd_at(
    cutoff: datetime,
    examples: ExampleSet,
    fitted: dict[pd.Timestamp, BTYDModel | None],
    settings: ModelSettings,
) -> BTYDModel | None:
    """Pareto/NBD fitted once on the customers at `cutoff` (None when it cannot be)."""
    key = pd.Timestamp(cutoff)
    if key not in fitted:
        model = BTYDModel(kind="pnbd", fit_sample=settings.pnbd_fit_sample, seed=settings.seed)
        try:
            fitted[key] = model.fit(examples.at(cutoff))
        except ValueError:
            fitted[key] = None  # too few repeat buyers, or no convergence: BG/NBD stays
    return fitted[key]


def _fit_task(
    task: str,
    *,
    examples: ExampleSet,
    pnbd: dict[datetime, BTYDModel | None],
    plan: CutoffPlan | None,
    why: str,
    refit: tuple[datetime, ...],
    end: datetime,
    service: str,
    horizon: int,
    settings: ModelSettings,
    on_trial: Callable[[dict[str, float]], None] | None,
) -> Fitted:
    population = examples.at(end)
    btyd = examples.btyd[pd.Timestamp(end)]
    names = _feature_names(examples.feature_names, plan=plan, refit=refit)
    label_free = with_deciles(
        label_free_model(
            task, btyd=btyd, feature_names=names, feature_service=service,
            horizon_days=horizon,
        ),
        population,
    )  # fmt: skip
    pareto = None
    if pnbd[end] is not None:
        pareto = with_deciles(
            label_free_model(
                task, btyd=pnbd[end], feature_names=names,
                feature_service=service, horizon_days=horizon,
            ),
            population,
        )  # fmt: skip
    if plan is None:
        model, why = _likelier(label_free, pareto, population, why)
        return Fitted(task, model, label_free, None, None, None, why, population, pnbd=pareto)
    train, valid, test = examples.split(plan)
    at_test = pnbd.get(plan.test)
    result = train_task(
        task,
        train=train,
        valid=valid,
        test=test,
        feature_names=[*names, *BTYD_OUTPUTS],
        settings=settings,
        label_free={}
        if at_test is None or pareto is None
        else {"pnbd": at_test.outputs(test, horizon_days=horizon)},
        on_trial=on_trial,
    )
    rows = examples.frame[examples.frame["cutoff"].isin(pd.to_datetime(list(refit)))]
    supervised = with_deciles(
        refit_model(
            result,
            rows=rows,
            latest=examples.at(refit[-1]),
            btyd=btyd,
            feature_names=names,
            feature_service=service,
            horizon_days=horizon,
            settings=settings,
        ),
        population,
    )
    model = {"lightgbm": supervised, "btyd": label_free, "pnbd": pareto}[result.chosen]
    return Fitted(
        task,
        model,
        label_free,
        supervised,
        result,
        plan,
        result.reason,
        population,
        refit,
        test,
        pnbd=pareto,
    )
