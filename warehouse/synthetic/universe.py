"""The shared state every source generator draws from: people, behaviour, calendar, noise.

Each generator asks for its own named random stream, so the sources are
independent of each other and the whole universe is a pure function of the seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from warehouse.settings import GenerateSettings
from warehouse.synthetic.behaviour import Behaviour, Timeline, make_behaviour
from warehouse.synthetic.locales import LOCALES, Locale
from warehouse.synthetic.noise import Noise
from warehouse.synthetic.population import People, make_people

__all__ = ["Universe", "make_universe", "random_stream"]


@dataclass(frozen=True)
class Universe:
    """The people, their hidden behaviour, the calendar and the locale of one generation."""

    settings: GenerateSettings
    locale: Locale
    timeline: Timeline
    people: People
    behaviour: Behaviour

    @property
    def n(self) -> int:
        return len(self.people)

    def rng(self, stream: str) -> np.random.Generator:
        return random_stream(self.settings.seed, stream)

    def noise(self, stream: str) -> Noise:
        return Noise(locale=self.locale, level=self.settings.noise, rng=self.rng(f"{stream}-noise"))


def random_stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream for one concern, fixed by the seed and its name."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def make_universe(settings: GenerateSettings) -> Universe:
    """Draw the people and their hidden behaviour."""
    timeline = Timeline(settings.history_start, settings.history_end)
    locale = LOCALES[settings.locale]
    people = make_people(
        n=settings.people,
        locale=locale,
        history_days=timeline.days,
        rng=random_stream(settings.seed, "people"),
    )
    behaviour = make_behaviour(
        n=settings.people, history_days=timeline.days, rng=random_stream(settings.seed, "behaviour")
    )
    return Universe(settings, locale, timeline, people, behaviour)
