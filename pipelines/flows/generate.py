"""The generate flow: write the synthetic customer universe (source files and the truth)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Settings
from pipelines.flows.progress import Progress, silent
from warehouse.settings import GenerateSettings
from warehouse.synthetic import STEPS, generate, is_current

__all__ = ["GenerateOutcome", "run"]


@dataclass(frozen=True)
class GenerateOutcome:
    """What a generation wrote (nothing, when the files already matched the settings)."""

    settings: GenerateSettings
    sources: Path
    truth: Path
    rows: dict[str, int]
    """Rows written per source; empty when `up_to_date`."""
    up_to_date: bool = False

    @property
    def figures(self) -> dict[str, object]:
        figures: dict[str, object] = {
            "people": self.settings.people,
            "locale": self.settings.locale,
        }
        if self.up_to_date:
            return figures | {"files": f"up to date in {self.sources}"}
        figures |= {f"{source} rows": n for source, n in self.rows.items()}
        return figures | {"rows out": sum(self.rows.values())}


def run(
    settings: Settings,
    *,
    sources: Path | None = None,
    truth: Path | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> GenerateOutcome:
    """Generate `settings.generate`'s universe into `sources` and `truth` (default: the
    data folder's); skipped when the files already match the settings, unless `force`."""
    config = settings.generate
    sources = sources or settings.paths.sources
    truth = truth or sources.parent / "truth"
    if not force and is_current(settings=config, sources_dir=sources, truth_dir=truth):
        return GenerateOutcome(config, sources, truth, {}, up_to_date=True)
    done: list[str] = []

    def on_step(name: str) -> None:
        progress(name, done=len(done), total=len(STEPS))
        done.append(name)

    rows = generate(settings=config, sources_dir=sources, truth_dir=truth, on_step=on_step)
    progress("generated", done=len(STEPS), total=len(STEPS))
    return GenerateOutcome(config, sources, truth, rows)
