"""Predictive segments: definitions as data, evaluation and history, activation, the report.

definitions = load_definitions(folders=[EXAMPLES_DIR, my_folder])
refresh_segments(con, definitions=definitions)          # evaluate all, keep history
activate(con, destinations=..., exports=..., ...)       # files, webhooks, ad audiences
html = report_html(con, downloads=..., lift=...)        # the marketers' report

Names are imported on first use (lazy_loader), so that reading the settings
(which every command does) does not load scikit-learn and matplotlib.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "activation": ["Delivery", "activate", "deliver", "latest_exports", "pending_deliveries"],
        "audience": ["WITHHELD_REASONS"],
        "definition": ["DefinitionError", "EXAMPLES_DIR", "SegmentDefinition", "load_definitions"],
        "evaluate": [
            "check_definitions",
            "evaluate_prepared",
            "evaluate_segments",
            "refresh_segments",
        ],
        "hashing": ["hashed_identifiers", "sha256_hex"],
        "lift": ["Lift", "realised_lift"],
        "membership": ["SegmentRun", "changes_between", "members_at", "runs"],
        "report": ["report_html", "write_report"],
    },
)
