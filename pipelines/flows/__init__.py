"""Each stage's orchestration as plain functions: settings in, an outcome out, progress by
callback. No typer, no rich, no printing: the CLI (`pipelines.commands`) parses arguments,
calls a flow and prints its outcome; notebooks and tests call the same flows.

    from pipelines import flows
    from pipelines.config import load_settings

    settings = load_settings()
    flows.resolve.run(settings)                    # -> ResolveOutcome
    outcome = flows.train.run(settings)            # -> TrainOutcome (one MLflow run)
    flows.pipeline.run(settings, until="score")    # what `cip run --until score` runs

Every stage module offers `run(settings, *, ..., progress=silent) -> <Stage>Outcome`,
whose `figures` are the name/value pairs the CLI prints; some offer more (`resolve.quality`,
`resolve.explain`, `resolve.resolve_file`, `segments.validate`, `report.write`, ...).
"""

from pipelines.flows import (
    access,
    activate,
    backtest,
    champions,
    collect,
    features,
    generate,
    journeys,
    load,
    pipeline,
    privacy,
    report,
    resolve,
    score,
    segments,
    stream,
    train,
)
from pipelines.flows.progress import Progress, silent

__all__ = [
    "Progress",
    "access",
    "activate",
    "backtest",
    "champions",
    "collect",
    "features",
    "generate",
    "journeys",
    "load",
    "pipeline",
    "privacy",
    "report",
    "resolve",
    "score",
    "segments",
    "silent",
    "stream",
    "train",
]
