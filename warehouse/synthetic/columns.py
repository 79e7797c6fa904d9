"""Building Arrow columns fast: object arrays to tables, sequential ids, random UUIDs.

Millions of ids are made as byte matrices in numpy and handed to Arrow without a
Python loop per value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["arrow_table", "sequential_ids", "uuids"]


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
