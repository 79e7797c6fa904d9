"""CRM contacts: who a person is, as the CRM keeps them (the most trusted source)."""

from warehouse.schemas import Column as C
from warehouse.schemas import Source

SOURCE = Source(
    name="crm_contacts",
    key="contact_id",
    columns=(
        C("contact_id", "VARCHAR", True),
        C("first_name", "VARCHAR"),
        C("last_name", "VARCHAR"),
        C("email", "VARCHAR"),
        C("phone", "VARCHAR"),
        C("address", "VARCHAR"),
        C("city", "VARCHAR"),
        C("postcode", "VARCHAR"),
        C("date_of_birth", "DATE"),
        C("consent_email", "BOOLEAN"),
        C("consent_sms", "BOOLEAN"),
        C("consent_ads", "BOOLEAN"),
        C("consent_push", "BOOLEAN"),
        C("created_at", "TIMESTAMP", True),
        C("updated_at", "TIMESTAMP"),
    ),
    time="created_at",
    kind="identity",
    records={
        "seen_at": "coalesce(updated_at, created_at)",
        "email": "email",
        "phone": "phone",
        "contact_id": "contact_id",
        "first_name": "first_name",
        "last_name": "last_name",
        "address": "address",
        "city": "city",
        "postcode": "postcode",
        "date_of_birth": "date_of_birth",
        "consent_email": "consent_email",
        "consent_sms": "consent_sms",
        "consent_ads": "consent_ads",
        "consent_push": "consent_push",
        # The CRM keeps no time of a consent decision: it was made when the contact was
        # created. A later edit of the contact (a new address) re-affirms nothing, so an
        # unsubscribe after sign-up wins over the CRM's flag.
        "consent_at": "created_at",
        "is_person": "TRUE",
    },
    priority=1,
)
