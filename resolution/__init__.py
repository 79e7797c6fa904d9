"""Identity resolution: records of every source linked into customers with stable ids.

`resolve` turns the warehouse's raw tables into `identity_map`,
`customer_identifiers`, `profiles` and `customer_id_changes` (see
docs/tables.md); `resolve_table` / `resolve_file` cluster any person table
given a mapping of its columns to roles. `normalize.email` and
`normalize.phone` are the lookup keys every other package uses.

Names are imported on first use, so that reading the settings (which every
command does) does not load Splink.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "normalize": "resolution.normalize",
    "ResolutionSettings": "resolution.settings",
    "STEPS": "resolution.resolver",
    "ResolutionResult": "resolution.resolver",
    "resolve": "resolution.resolver",
    "MatchModel": "resolution.model",
    "BlockingTooLoose": "resolution.model",
    "SkippedIdentifier": "resolution.graph",
    "ROLES": "resolution.mapping",
    "read_table": "resolution.mapping",
    "resolve_file": "resolution.mapping",
    "resolve_table": "resolution.mapping",
    "CustomerExplanation": "resolution.explain",
    "PairExplanation": "resolution.explain",
    "explain_customer": "resolution.explain",
    "explain_records": "resolution.explain",
    "Quality": "resolution.quality",
    "evaluate": "resolution.quality",
    "false_merges": "resolution.quality",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'resolution' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    return module if name == "normalize" else getattr(module, name)


def __dir__() -> list[str]:
    return __all__
