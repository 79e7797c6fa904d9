"""Identity resolution: records of every source linked into customers with stable ids.

`resolve` turns the warehouse's raw tables into `identity_map`,
`customer_identifiers`, `profiles` and `customer_id_changes` (see
docs/tables.md); `resolve_table` clusters any person table
given a mapping of its columns to roles, configuring and training a Splink model
from the table itself (`configure`). `normalize.email` and
`normalize.phone` are the lookup keys every other package uses.

Names are imported on first use (lazy_loader), so that reading the settings
(which every command does) does not load Splink.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["normalize"],
    submod_attrs={
        "explain": [
            "CustomerExplanation",
            "PairExplanation",
            "explain_customer",
            "explain_records",
        ],
        "graph": ["SkippedIdentifier"],
        "configure": ["ModelChoices", "NoUsableColumn"],
        "model": ["BlockingTooLoose", "MatchModel"],
        "quality": ["SCOPES", "Quality", "evaluate", "false_merges", "pairs_figure"],
        "resolver": ["ResolutionResult", "STEPS", "resolve"],
        "settings": ["ResolutionSettings"],
        "table": ["ROLES", "InputError", "TableResolution", "read_table", "resolve_table"],
    },
)
