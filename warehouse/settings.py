"""Settings for the synthetic customer universe (`cip generate`)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["GenerateSettings"]


class GenerateSettings(BaseModel):
    """How many people to invent, in which locale, how messy, over which period."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    people: int = Field(20_000, ge=50, le=1_000_000)
    """Number of people in the universe (each may hold several records in several sources)."""

    seed: int = Field(42, ge=0)
    """Random seed: the same seed and settings give byte-identical files."""

    locale: Literal["en", "ru"] = "en"
    """`en` (Faker en_US, US phone numbers, USD) or `ru` (Faker ru_RU, Russian numbers, RUB)."""

    noise: float = Field(1.0, ge=0.0, le=3.0)
    """Multiplier on every identity-noise rate (typos, nicknames, email and phone variants,
    missing fields, junk identifiers): 0 gives clean identifiers, 1 realistic, 2 hostile."""

    history_start: date = date(2024, 7, 1)
    """First day of recorded behaviour (events, orders, emails, tickets)."""

    history_end: date = date(2026, 10, 31)
    """Last day of recorded behaviour; fixed dates, so a seed always gives the same data."""

    @model_validator(mode="after")
    def _history_long_enough(self) -> GenerateSettings:
        if (self.history_end - self.history_start).days < 180:
            raise ValueError(
                f"history_end ({self.history_end}) must be at least 180 days after "
                f"history_start ({self.history_start})"
            )
        return self

    @property
    def phone_region(self) -> str:
        """The default phone region the locale implies (ISO 3166 code for phonenumbers)."""
        return {"en": "US", "ru": "RU"}[self.locale]
