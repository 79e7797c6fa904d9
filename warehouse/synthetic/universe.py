"""The shared state every source generator draws from: people, behaviour, calendar, noise.

Each generator asks for its own named random stream, so the sources are
independent of each other and the whole universe is a pure function of the seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from warehouse.settings import GenerateSettings
from warehouse.synthetic.behaviour import Behaviour, Timeline, make_behaviour
from warehouse.synthetic.locales import LOCALES, Locale
from warehouse.synthetic.noise import Noise
from warehouse.synthetic.population import People, make_people

__all__ = [
    "Universe",
    "arrow_table",
    "make_universe",
    "random_stream",
    "sequential_ids",
    "uuids",
]


@dataclass(frozen=True)
class Universe:
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


def arrow_table(
    columns: dict[str, np.ndarray | pa.Array], types: dict[str, pa.DataType] | None = None
) -> pa.Table:
    """Numpy columns (object arrays with None for blanks) or Arrow arrays to an Arrow table."""
    types = types or {}
    return pa.table(
        {
            name: values if isinstance(values, pa.Array) else pa.array(values, type=types.get(name))
            for name, values in columns.items()
        }
    )


def sequential_ids(prefix: str, n: int, width: int, *, start: int = 1) -> pa.StringArray:
    """`prefix` followed by zero-padded numbers from `start`, e.g. `T-0000001`."""
    numbers = np.arange(start, start + n, dtype=np.int64)
    digits = (numbers[:, None] // 10 ** np.arange(width - 1, -1, -1)) % 10 + ord("0")
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    return _fixed_width(np.hstack([np.broadcast_to(head, (n, len(head))), digits]))


def uuids(rng: np.random.Generator, n: int) -> pa.StringArray:
    """`n` random version-4 UUID strings."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = raw[:, 6] & 0x0F | 0x40
    raw[:, 8] = raw[:, 8] & 0x3F | 0x80
    hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype=np.uint8).reshape(n, 32)
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    parts = np.split(hexed, [8, 12, 16, 20], axis=1)
    return _fixed_width(
        np.hstack([parts[0], dash, parts[1], dash, parts[2], dash, parts[3], dash, parts[4]])
    )


def _fixed_width(text: np.ndarray) -> pa.StringArray:
    """Rows of an (n, width) ASCII byte matrix as an Arrow string array, without Python loops."""
    n, width = text.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(text.astype(np.uint8).tobytes()))
