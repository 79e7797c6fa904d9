"""Settings for churn and LTV models (cip train, cip score)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SearchSettings(BaseModel):
    """Bounds of the small random hyperparameter search (LightGBM, early-stopped)."""

    model_config = ConfigDict(extra="forbid")

    trials: int = Field(6, ge=1, le=50)
    """Candidates tried per model; each is early-stopped on the validation cutoff."""
    num_leaves: tuple[int, int] = (7, 48)
    max_depth: tuple[int, int] = (3, 5)
    """Shallow trees: exact SHAP reasons cost trees x leaves x depth squared, and on the
    generated data depth 3-5 scored as well as 4-7 on the held-out cutoff (benchmarks/
    RESULTS.md, Models) with reasons five times cheaper for the scoring API."""
    learning_rate: tuple[float, float] = (0.05, 0.25)
    min_child_samples: tuple[int, int] = (10, 100)
    feature_fraction: tuple[float, float] = (0.6, 1.0)
    lambda_l2: tuple[float, float] = (0.0, 10.0)
    max_trees: int = Field(120, ge=10)
    """Upper bound on boosting rounds (early stopping picks the number used). It bounds the
    scoring cost: about 30 ns per tree per customer and model on this machine, and the
    cost of reasons with it."""
    early_stopping_rounds: int = Field(40, ge=5)
    rows: int = Field(20_000, ge=1_000)
    """Training rows each candidate is trained on at most (a random sample); the best
    candidate is then trained again on all the training rows, early-stopped the same way,
    and that is the model measured on the held-out cutoff. The candidates only rank the
    hyperparameters, which a sample does nearly as well at a fraction of the cost
    (backtests with 20,000 and 40,000 rows: benchmarks/RESULTS.md, issue 12)."""


class ModelSettings(BaseModel):
    """Settings for churn and LTV models (cip train, cip score)."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str | None = None
    """MLflow tracking URI; default: a SQLite database in the data folder."""

    churn_horizon_days: int = Field(90, ge=7)
    """A customer churns when they make no purchase in this many days after the cutoff."""
    ltv_horizon_days: int = Field(180, ge=7)
    """LTV is the revenue in this many days after the cutoff."""
    min_orders: int = Field(1, ge=1)
    """The population at a cutoff: every customer with at least this many orders before it
    (no activity window: recency is a feature, quiet customers are scored too)."""
    include_fragments: bool = False
    """Model and score fragments too: resolved clusters without an email, phone or user id
    (e.g. anonymous till slips). Off: they are counted and reported apart."""
    cutoff_step_months: int = Field(1, ge=1, le=12)
    """Spacing of the training cutoffs, in months. Cutoffs fall on month starts, the dates
    `cip features` builds snapshots at (`features.snapshot_every_months`), so that training
    reuses those snapshots while they are fresh instead of computing its own."""
    train_cutoffs: int = Field(12, ge=1)
    """Training cutoffs wanted (search and refit each); fewer are used (and said) when the
    history is short. Twelve monthly cutoffs cover a year: only then do the models read
    the calendar features and learn the season (`models.workflow.CALENDAR`)."""
    max_train_rows: int = Field(80_000, ge=1_000)
    """Training rows (customer x cutoff) at most for the search and for the refit: a random
    sample beyond it (the same customers recur at every cutoff; training time stays flat)."""
    min_history_days: int = Field(90, ge=0)
    """History needed before the earliest training cutoff, so that features mean something."""

    churn_service: str = "churn_v1"
    """Feast feature service of the churn model."""
    ltv_service: str = "ltv_v1"
    """Feast feature service of the LTV model."""

    search: SearchSettings = SearchSettings()
    tweedie_variance_power: float = Field(1.3, gt=1.0, lt=2.0)
    """LTV objective: Tweedie (compound Poisson-Gamma), for many zeros and a long tail."""
    seed: int = 7
    threads: int = Field(1, ge=1)
    """LightGBM training threads; one is fastest on small data and on a busy machine."""

    churn_metric: Literal["roc_auc", "pr_auc", "top_decile_lift", "log_loss"] = "roc_auc"
    """Held-out metric that decides churn promotion (log loss: lower is better)."""
    ltv_metric: Literal["mae", "normalized_gini", "spearman"] = "mae"
    """Held-out metric that decides LTV promotion (MAE: lower is better; the others higher)."""
    orders_metric: Literal["mae", "spearman"] = "mae"
    """Held-out metric that decides the expected-orders model's promotion."""
    btyd_fit_sample: int = Field(30_000, ge=100)
    """Customers the label-free model (BG/NBD + Gamma-Gamma) is fitted on at most, per cutoff
    (a random sample: the parameters describe the population)."""
    pnbd_fit_sample: int = Field(5_000, ge=100)
    """Customers Pareto/NBD is fitted on at most (a random sample): lifetimes' Pareto/NBD
    likelihood is slow (L-BFGS-B: 2 s of CPU on 5,000 of the demo's customers on the
    shared machine, Nelder-Mead 10 s), and it is fitted twice per horizon only: at the
    held-out cutoff, where it competes for the champion, and on the whole history."""
    min_improvement: float = Field(0.0, ge=0.0)
    """A challenger must beat the champion by more than this to be promoted."""

    top_reasons: int = Field(3, ge=1, le=20)
    """Features named per customer as reasons (pushing the score up and down)."""
    reasons_min_decile: int = Field(10, ge=1, le=11)
    """`cip score` stores reasons for customers in this decile or above (11: none)."""
    reasons_max_rows: int = Field(20_000, ge=0)
    """... at most this many per model, the highest scores first (reasons cost 0.5-3.5 ms a row)."""
