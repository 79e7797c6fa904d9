"""Settings for identity resolution (`cip resolve`): thresholds, guards, model and survivorship."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SurvivorshipRule = Literal["source_priority", "most_recent", "most_frequent", "first_non_null"]

# Attributes of the golden record chosen by a survivorship rule.
GOLDEN_ATTRIBUTES = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "city",
    "postcode",
    "date_of_birth",
)
# (Consent is not chosen by survivorship: the newest decision wins, `resolution.consent`.)


def _default_survivorship() -> dict[str, SurvivorshipRule]:
    rules: dict[str, SurvivorshipRule] = dict.fromkeys(GOLDEN_ATTRIBUTES, "source_priority")
    rules.update(
        email="most_frequent",
        phone="most_frequent",
        address="most_recent",
        city="most_recent",
        postcode="most_recent",
    )
    return rules


class ResolutionSettings(BaseModel):
    """Settings for identity resolution (cip resolve)."""

    model_config = ConfigDict(extra="forbid")

    default_phone_region: str = Field(
        "US", description="ISO country used to read phone numbers written without a country code."
    )
    max_people_per_identifier: int = Field(
        1,
        ge=1,
        description="Explosion guard: an identifier seen with more distinct people-signals "
        "(name initials, user ids) than this is not used to merge records.",
    )
    match_threshold: float = Field(
        0.9, gt=0, lt=1, description="Splink match probability above which records are merged."
    )
    name_link_max_namesakes: float = Field(
        0.1,
        ge=0,
        description="A record known only by its name joins the one customer bearing it (at "
        "its store, or anywhere) when the namesakes expected by chance, from first- and "
        "last-name frequencies, are at most this; 0 turns name links off.",
    )
    comparisons_per_record: int = Field(
        100,
        ge=1,
        description="Blocking budget: candidate blocking rules are kept, cheapest first, while "
        "the comparisons they generate stay within this many per record (see min_comparisons).",
    )
    min_comparisons: int = Field(
        1_000_000, ge=1, description="Blocking budget floor, whatever the table size."
    )
    prior_recall: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Share of true pairs assumed to agree exactly on the prior's rules (an "
        "identifier, email or phone, or full name with date of birth).",
    )
    max_comparisons: int = Field(
        50_000_000,
        description="Refuse to predict when the blocking rules would generate more pairs.",
    )
    max_pairs_u: float = Field(3e5, description="Pairs sampled to estimate u.")
    max_pairs_em: float = Field(1e6, description="Pairs used by each EM session to estimate m.")
    seed: int = 42
    retrain: bool = Field(
        False, description="Retrain the Splink model even when a saved one exists."
    )
    source_priority: list[str] = Field(
        default_factory=lambda: ["crm_contacts", "accounts", "support_tickets", "orders"],
        description="Sources in order of trust for the `source_priority` survivorship rule.",
    )
    survivorship: dict[str, SurvivorshipRule] = Field(
        default_factory=_default_survivorship,
        description="Survivorship rule per golden-record attribute.",
    )
