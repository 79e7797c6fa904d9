"""Predictive segments: definitions as data, evaluation and history, activation, the report.

definitions = load_definitions(folders=[EXAMPLES_DIR, my_folder])
refresh_segments(con, definitions=definitions)          # evaluate all, keep history
activate(con, destinations=..., exports=..., ...)       # files, webhooks, ad audiences
html = report_html(con, downloads=..., lift=...)        # the marketers' report
"""

from segments.activation import Delivery, activate, deliver, latest_exports, pending_deliveries
from segments.definition import (
    EXAMPLES_DIR,
    DefinitionError,
    SegmentDefinition,
    load_definitions,
)
from segments.evaluate import check_definitions, evaluate_segments, refresh_segments
from segments.hashing import hashed_identifiers, sha256_hex
from segments.lift import Lift, realised_lift
from segments.membership import (
    SegmentRun,
    changes_between,
    erase_customers,
    members_at,
    runs,
)
from segments.report import report_html, write_report

__all__ = [
    "EXAMPLES_DIR",
    "DefinitionError",
    "Delivery",
    "Lift",
    "SegmentDefinition",
    "SegmentRun",
    "activate",
    "changes_between",
    "check_definitions",
    "deliver",
    "erase_customers",
    "evaluate_segments",
    "hashed_identifiers",
    "latest_exports",
    "load_definitions",
    "members_at",
    "pending_deliveries",
    "realised_lift",
    "refresh_segments",
    "report_html",
    "runs",
    "sha256_hex",
    "write_report",
]
