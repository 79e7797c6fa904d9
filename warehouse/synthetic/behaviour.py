"""The latent process behind every record: when people arrive, how they behave, when they leave.

Each person gets hidden parameters (acquisition day, purchase rate, spend level,
engagement, discount affinity, online share, category preferences, lifetime).
A lapse ends their buying; before a *fading* lapse their activity (visits, email
opens, purchases) decays over a few weeks, an *abrupt* lapse gives no warning.
Activity follows the calendar: a November/December peak and busier weekends.
Times are float days since the first day of history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np

__all__ = ["Behaviour", "Timeline", "make_behaviour", "poisson_times"]

CATEGORIES = (
    "electronics",
    "home",
    "beauty",
    "apparel",
    "sports",
    "toys",
    "books",
    "grocery",
)
ABRUPT_P = 0.3
FADE_FLOOR = 0.03
PEAK_SEASON = 2.35
# Share of a day's activity in each hour (UTC), for online sessions and for shop visits.
WEB_HOURS = np.array(
    [1, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4, 4, 5, 5, 4, 4, 4, 5, 6, 7, 8, 8, 6, 3]
)
SHOP_HOURS = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 5, 6, 7, 6, 6, 6, 7, 8, 8, 6, 4, 2, 0, 0])


@dataclass(frozen=True)
class Timeline:
    """The recorded period and its calendar effects."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def season(self, t: np.ndarray) -> np.ndarray:
        """Activity multiplier: Black Friday to Christmas peak, busier weekends (max 2.35)."""
        day = np.datetime64(self.start, "D") + np.floor(t).astype("timedelta64[D]")
        doy = (day - day.astype("datetime64[Y]")).astype(int)
        weekday = (day.astype(int) + 3) % 7  # 0 = Monday
        peak = 0.75 * np.exp(-0.5 * ((doy - 331) / 10) ** 2) + 0.45 * np.exp(
            -0.5 * ((doy - 351) / 7) ** 2
        )
        return (1.0 + peak) * np.where(weekday >= 5, 1.12, 0.97)

    def at_hour(self, rng: np.random.Generator, t: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """Move each time to a random moment of its day, following an hourly profile."""
        hour = rng.choice(24, size=len(t), p=hours / hours.sum())
        return np.floor(t) + (hour + rng.random(len(t))) / 24

    def timestamps(self, t: np.ndarray) -> np.ndarray:
        """Float days to datetime64[ms]."""
        return np.datetime64(self.start, "ms") + (t * 86_400_000).astype("timedelta64[ms]")


@dataclass(frozen=True)
class Behaviour:
    """Hidden behavioural parameters, one array element per person."""

    acquired_at: np.ndarray  # day; negative for customers acquired before history
    lapse_at: np.ndarray  # day of lapse; NaN when still active at the end of history
    lapse_type: np.ndarray  # "fading", "abrupt" or "" when no lapse
    fade_days: np.ndarray
    engagement: np.ndarray  # 0..1
    purchase_rate: np.ndarray  # orders per 30 days when fully active
    spend_level: np.ndarray  # multiplier on basket value
    discount_affinity: np.ndarray  # chance an order uses a discount
    online_share: np.ndarray  # share of orders placed online; 0 without an account
    has_account: np.ndarray
    has_crm: np.ndarray
    n_devices: np.ndarray
    category_pref: np.ndarray  # (people, categories), rows sum to 1

    def activity(self, who: np.ndarray, t: np.ndarray, *, after_lapse: float) -> np.ndarray:
        """How active each person is at time t: 0 before acquisition, fading before a fading
        lapse, `after_lapse` once lapsed, 1 otherwise."""
        lapse = self.lapse_at[who]
        level = np.ones(len(t))
        fading = self.lapse_type[who] == "fading"
        into_fade = (lapse - t) / self.fade_days[who]
        in_fade = fading & (into_fade < 1) & (into_fade >= 0)
        level[in_fade] = np.maximum(into_fade[in_fade], FADE_FLOOR)
        level[t >= lapse] = after_lapse
        level[t < self.acquired_at[who]] = 0.0
        return level


def make_behaviour(*, n: int, history_days: int, rng: np.random.Generator) -> Behaviour:
    """Draw each person's hidden parameters."""
    engagement = rng.beta(2.0, 3.0, n)
    purchase_rate = np.minimum(rng.lognormal(np.log(0.3), 0.8, n) * (0.5 + engagement), 6.0)
    online_share = rng.beta(2.0, 1.6, n)
    has_account = rng.random(n) < 0.25 + 0.65 * online_share
    online_share = np.where(has_account, online_share, 0.0)

    acquired_at = np.where(
        rng.random(n) < 0.3,
        rng.uniform(-720, 0, n),
        (history_days - 21) * rng.beta(1.15, 1.0, n),
    )
    scale = 200 + 900 * engagement + 100 * (purchase_rate > 0.5)
    lapse_at = acquired_at + scale * rng.weibull(1.3, n)
    lapsed = lapse_at < history_days
    lapse_type = np.where(~lapsed, "", np.where(rng.random(n) < ABRUPT_P, "abrupt", "fading"))
    return Behaviour(
        acquired_at=acquired_at,
        lapse_at=np.where(lapsed, lapse_at, np.nan),
        lapse_type=lapse_type,
        fade_days=rng.uniform(28, 90, n),
        engagement=engagement,
        purchase_rate=purchase_rate,
        spend_level=rng.lognormal(0.0, 0.45, n),
        discount_affinity=rng.beta(1.2, 4.0, n),
        online_share=online_share,
        has_account=has_account,
        has_crm=rng.random(n) < np.where(has_account, 0.7, 0.9),
        n_devices=np.minimum(1 + rng.poisson(0.9, n), 4),
        category_pref=rng.dirichlet(np.full(len(CATEGORIES), 0.5), n),
    )


def poisson_times(
    rng: np.random.Generator,
    *,
    rate: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    intensity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    peak: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Times of an inhomogeneous Poisson process per owner, by thinning.

    Owner i has base `rate[i]` per day on [start[i], end[i]); `intensity(owner, t)` scales it
    and never exceeds `peak`. Returns (owner, t) sorted by owner then time.
    """
    length = np.maximum(end - start, 0.0)
    counts = rng.poisson(rate * length * peak)
    owner = np.repeat(np.arange(len(rate)), counts)
    t = start[owner] + rng.random(len(owner)) * length[owner]
    keep = rng.random(len(owner)) * peak < intensity(owner, t)
    owner, t = owner[keep], t[keep]
    order = np.lexsort((t, owner))
    return owner[order], t[order]
