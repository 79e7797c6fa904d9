"""Journeys: multi-step, multi-channel sequences that act on segment entries and events.

journeys = load_journeys(folders=[EXAMPLES_DIR])         # YAML, checked on load
validate_journeys(journeys, segments=..., channels=..., templates=..., events=...)
tick(con, journeys=journeys, runtime=Runtime(...))      # enroll, exit, advance, deliver
funnel(con, journey=...), lift(con, journey=...)        # measurement
withdraw(con, link=read_token(token, secret=...), at=...)   # an unsubscribe link followed

Names are imported on first use (lazy_loader), so that reading the settings stays light.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "channels": [
            "CHANNELS",
            "Channel",
            "DeliveryError",
            "FileChannel",
            "Message",
            "parse_channel",
        ],
        "definition": [
            "EXAMPLES_DIR",
            "Journey",
            "JourneyError",
            "load_journeys",
            "validate_journeys",
        ],
        "measure": ["Lift", "funnel", "lift"],
        "runner": ["Runtime", "TickOutcome", "deliver_due", "tick"],
        "store": ["erase_customers"],
        "templates": ["TEMPLATES_DIR", "Template", "TemplateError", "load_templates"],
        "unsubscribe": [
            "Unsubscribe",
            "read_token",
            "sign_token",
            "unsubscribe_secret",
            "withdraw",
        ],
    },
)
