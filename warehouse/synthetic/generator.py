"""Generate the whole synthetic universe: people, their records in every source, the truth.

`generate` is the one entry point; it is a pure function of the settings
(same settings, byte-identical files). A manifest next to the truth records the
settings that produced the files, so a re-run with unchanged settings can skip.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from warehouse.settings import GenerateSettings
from warehouse.synthetic.behaviour import CATEGORIES
from warehouse.synthetic.commerce import make_catalogue, make_orders
from warehouse.synthetic.mailing import make_email_events
from warehouse.synthetic.records import make_accounts, make_contacts
from warehouse.synthetic.support import make_support_tickets
from warehouse.synthetic.universe import Universe, make_universe
from warehouse.synthetic.web import make_events
from warehouse.synthetic.writing import FORMATS, source_file, write_sources, write_truth

__all__ = ["STEPS", "generate", "is_current"]

STEPS = (
    "people",
    "crm and accounts",
    "orders",
    "web and app events",
    "email and support",
    "write sources",
    "write truth",
)
MANIFEST = "manifest.json"


def generate(
    *,
    settings: GenerateSettings,
    sources_dir: Path,
    truth_dir: Path,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write one file per source into `sources_dir` and the truth into `truth_dir`.

    `on_step(name)` is called as each of `STEPS` begins. Returns rows written per source.
    """
    step = on_step or (lambda name: None)
    (truth_dir / MANIFEST).unlink(missing_ok=True)  # until the new files are all written
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        step("people")
        u = make_universe(settings)
        step("crm and accounts")
        contacts = make_contacts(u)
        accounts = make_accounts(u)
        con.register("crm_contacts", contacts.table)
        con.register("accounts", accounts.table)
        step("orders")
        catalogue = make_catalogue(u)
        orders = make_orders(u, accounts=accounts, catalogue=catalogue, con=con)
        step("web and app events")
        make_events(u, accounts=accounts, orders=orders, catalogue=catalogue, con=con)
        step("email and support")
        con.register("email_events", make_email_events(u, contacts=contacts, accounts=accounts))
        con.register("support_tickets", make_support_tickets(u, orders=orders))
        step("write sources")
        rows = write_sources(con, directory=sources_dir)
        step("write truth")
        write_truth(con, people=_people_truth(u), directory=truth_dir)
    manifest = {"settings": settings.model_dump(mode="json"), "rows": rows}
    (truth_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return rows


def is_current(*, settings: GenerateSettings, sources_dir: Path, truth_dir: Path) -> bool:
    """True when every file exists and was generated with exactly these settings."""
    manifest = truth_dir / MANIFEST
    if not manifest.exists() or not all(source_file(sources_dir, s).exists() for s in FORMATS):
        return False
    try:
        written = json.loads(manifest.read_text())["settings"]
    except (ValueError, KeyError, TypeError):
        return False
    return written == settings.model_dump(mode="json")


def _people_truth(u: Universe) -> pa.Table:
    """Each person's true identity and hidden behavioural parameters."""
    p, b, tl = u.people, u.behaviour, u.timeline
    lapsed = ~np.isnan(b.lapse_at)
    moved = ~np.isnan(p.moved_at)
    country = u.locale.country_code
    return pa.table(
        {
            "person_id": p.person_id,
            "household_id": p.household,
            "gender": p.gender,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "date_of_birth": p.birth_date,
            "email": p.email,
            "second_email": np.where(p.email2 == "", None, p.email2),
            "mobile": np.array([f"+{country}{m}" if m else None for m in p.mobile], dtype=object),
            "landline": np.array(
                [f"+{country}{m}" if m else None for m in p.landline], dtype=object
            ),
            "city": p.city,
            "moved_at": pa.array(tl.timestamps(np.nan_to_num(p.moved_at)), mask=~moved),
            "acquired_at": tl.timestamps(b.acquired_at),
            "lapse_at": pa.array(tl.timestamps(np.nan_to_num(b.lapse_at)), mask=~lapsed),
            "lapse_type": np.where(lapsed, b.lapse_type, None),
            "fade_days": b.fade_days,
            "engagement": b.engagement,
            "purchase_rate": b.purchase_rate,
            "spend_level": b.spend_level,
            "discount_affinity": b.discount_affinity,
            "online_share": b.online_share,
            "has_account": b.has_account,
            "has_crm": b.has_crm,
            "n_devices": b.n_devices,
            "favourite_category": np.array(CATEGORIES, dtype=object)[b.category_pref.argmax(1)],
            "category_preferences": pa.FixedSizeListArray.from_arrays(
                b.category_pref.ravel(), len(CATEGORIES)
            ),
        }
    )
