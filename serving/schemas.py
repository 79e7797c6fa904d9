"""Request and response bodies of the scoring and profile API, with OpenAPI examples.

Request models hide the submitted values in validation errors, so a malformed email or
phone number never reaches a log line or an error message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serving.directory import ID_TYPES

__all__ = [
    "BatchItem",
    "BatchRequest",
    "BatchResponse",
    "CustomerRef",
    "ProfileResponse",
    "Reason",
    "ScoreRequest",
    "ScoreResponse",
    "StatusResponse",
]

_REQUEST = ConfigDict(extra="forbid", hide_input_in_errors=True)
_EXAMPLE_EMAIL = "anna.smith@example.com"


class CustomerRef(BaseModel):
    """A customer named by any one identifier we know (the first known one is used)."""

    model_config = ConfigDict(**_REQUEST, json_schema_extra={"example": {"email": _EXAMPLE_EMAIL}})

    customer_id: str | None = Field(None, description="The platform's customer id.")
    email: str | None = Field(None, description="Any spelling: case, dots, plus-tags.")
    phone: str | None = Field(None, description="Any format; read in the default region.")
    user_id: str | None = Field(None, description="The e-commerce account id.")
    anonymous_id: str | None = Field(None, description="A web or app cookie/device id.")

    @model_validator(mode="after")
    def _named(self) -> CustomerRef:
        if not self.identifiers():
            raise ValueError(
                "name the customer by one of customer_id, email, phone, user_id, anonymous_id"
            )
        return self

    def identifiers(self) -> list[tuple[str, str]]:
        """(id_type, value) for every identifier given, in order of preference."""
        return [(k, v) for k in ID_TYPES if (v := getattr(self, k)) is not None]


class ScoreRequest(CustomerRef):
    """One customer to score."""

    model_config = ConfigDict(
        **_REQUEST,
        json_schema_extra={"example": {"email": _EXAMPLE_EMAIL, "reasons": True}},
    )

    reasons: bool = Field(
        True, strict=True, description="Include the top reasons behind each score."
    )


class BatchRequest(BaseModel):
    """Several customers to score in one call (at most the configured batch limit)."""

    model_config = ConfigDict(
        **_REQUEST,
        json_schema_extra={
            "example": {
                "customers": [{"customer_id": "cus_e14483bdd2e78baa"}, {"email": _EXAMPLE_EMAIL}],
                "reasons": False,
            }
        },
    )

    customers: list[CustomerRef] = Field(min_length=1)
    reasons: bool = Field(
        False, strict=True, description="Reasons (SHAP) cost milliseconds per customer."
    )


class Reason(BaseModel):
    """A feature and how far it pushed the score: its SHAP contribution in the model's raw
    units (log-odds for churn, log revenue for LTV); positive pushes the score up."""

    feature: str
    value: float | None
    effect: float


class ScoreResponse(BaseModel):
    """Live scores of one customer from the champion models and the online features."""

    customer_id: str
    matched_by: str = Field(description="The identifier that named the customer.")
    churn_probability: float
    churn_decile: int = Field(description="1 (lowest risk) to 10 (highest).")
    predicted_ltv: float
    ltv_decile: int = Field(description="1 (lowest value) to 10 (highest).")
    expected_orders: float = Field(
        description="Orders the customer is expected to place over the LTV horizon."
    )
    churn_reasons: list[Reason] | None = None
    ltv_reasons: list[Reason] | None = None
    segments: list[str]
    churn_model_version: str
    ltv_model_version: str
    orders_model_version: str
    feature_service: str
    features_as_of: datetime | None = Field(
        description="When the customer's online features were computed (their freshness)."
    )
    scored_at: datetime


class BatchItem(BaseModel):
    """One customer of a batch: a score, or why there is none (with its HTTP status)."""

    index: int
    score: ScoreResponse | None = None
    status: int = 200
    error: str | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem]
    scored: int
    failed: int


class ProfileResponse(BaseModel):
    """The golden record, the identities linked to it and the segments the customer is in."""

    customer_id: str
    matched_by: str
    profile: dict[str, Any]
    identifiers: list[dict[str, str]]
    segments: list[str]


class StatusResponse(BaseModel):
    """What the service has loaded, and why anything is missing."""

    ready: bool
    problems: dict[str, str]
    models: dict[str, str]
    feature_service: str | None
    features_materialized_at: datetime | None
    customers: int
    directory_loaded_at: datetime | None
    checked_at: datetime
