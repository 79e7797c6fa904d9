"""The source catalog: one declaration per source, read by every stage.

Each module of this package declares one source (`SOURCE = Source(...)`, see
`warehouse.schemas.Source`): its raw table's columns and keys, the identifiers and person
attributes it carries into resolution, the event kinds segments may count, its
survivorship priority. `SOURCES` lists them in the order below. Adding a source is one new
module here plus its line in `_DECLARED`; the loaders create and fill its raw table,
resolution links its records, features and segments read its activity. (`register` adds
a declaration at run time, for a plugin or a test.)
"""

from __future__ import annotations

from warehouse.schemas import Source
from warehouse.sources import (
    accounts,
    consents,
    crm_contacts,
    email_events,
    events,
    orders,
    support_tickets,
)

__all__ = ["SOURCES", "register", "survivorship_order"]

_DECLARED = (
    crm_contacts.SOURCE,
    accounts.SOURCE,
    events.SOURCE,
    orders.SOURCE,
    email_events.SOURCE,
    support_tickets.SOURCE,
    consents.SOURCE,
)

SOURCES: dict[str, Source] = {source.name: source for source in _DECLARED}
"""Every declared source by name."""


def register(source: Source) -> Source:
    """Add `source` to the catalog (replacing a declaration of the same name)."""
    SOURCES[source.name] = source
    return source


def survivorship_order() -> list[str]:
    """Sources by their `priority` (most trusted first); unranked sources are left out."""
    ranked = [s for s in SOURCES.values() if s.priority is not None]
    return [s.name for s in sorted(ranked, key=lambda s: s.priority)]
