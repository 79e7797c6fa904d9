"""Identity noise: how true names, emails and phones get garbled on their way into records.

Typos and transpositions, nicknames, letter case, `ё` written as `е`, email
case, plus-tags and gmail dots, a dozen ways to write a phone number, blank
fields and junk values (`test@test.com`). Every rate is multiplied by the
`noise` setting; at 0 identifiers come out clean and in one canonical format.
"""

from __future__ import annotations

import numpy as np

from warehouse.synthetic.locales import Locale

__all__ = ["Noise"]

LATIN = "abcdefghijklmnopqrstuvwxyz"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыьэюя"


class Noise:
    """Garbles arrays of identifiers; each method returns a new object array (None = blank)."""

    def __init__(self, *, locale: Locale, level: float, rng: np.random.Generator) -> None:
        self.locale = locale
        self.level = level
        self.rng = rng

    def pick(self, n: int, rate: float) -> np.ndarray:
        """Which of n records a noise of this base rate hits."""
        return self.rng.random(n) < min(rate * self.level, 1.0)

    def blank(self, values: np.ndarray, rate: float) -> np.ndarray:
        """Leave some fields empty, and empty strings are blanks too."""
        out = np.where(values == "", None, values).astype(object)
        out[self.pick(len(out), rate)] = None
        return out

    def junk(self, values: np.ndarray, pool: tuple[str, ...], rate: float) -> np.ndarray:
        out = values.astype(object)
        hit = self.pick(len(out), rate)
        out[hit] = np.array(pool, dtype=object)[self.rng.integers(len(pool), size=hit.sum())]
        return out

    def first_names(
        self, names: np.ndarray, *, nickname: float, typo: float, case: float
    ) -> np.ndarray:
        out = names.astype(object)
        for i in np.flatnonzero(self.pick(len(out), nickname)):
            options = self.locale.nicknames.get(out[i])
            if options:
                out[i] = options[int(self.rng.integers(len(options)))]
        return self.names(out, typo=typo, case=case)

    def names(self, names: np.ndarray, *, typo: float, case: float) -> np.ndarray:
        """Typos, shouting or lower case, and (Russian) `ё` typed as `е`."""
        out = names.astype(object)
        for i in np.flatnonzero(self.pick(len(out), typo)):
            out[i] = self.typo(out[i])
        for i in np.flatnonzero(self.pick(len(out), case)):
            out[i] = out[i].upper() if self.rng.random() < 0.6 else out[i].lower()
        if self.locale.code == "ru":
            for i in np.flatnonzero(self.pick(len(out), 0.5)):
                out[i] = out[i].replace("ё", "е").replace("Ё", "Е")
        return out

    def typo(self, word: str) -> str:
        """One keyboard slip: swap two neighbours, drop, double or replace a letter."""
        if len(word) < 3:
            return word
        at = int(self.rng.integers(1, len(word) - 1))
        kind = int(self.rng.integers(4))
        if kind == 0:
            return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        if kind == 1:
            return word[:at] + word[at + 1 :]
        if kind == 2:
            return word[: at + 1] + word[at:]
        letters = CYRILLIC if word[at].lower() in CYRILLIC else LATIN
        return word[:at] + letters[int(self.rng.integers(len(letters)))] + word[at + 1 :]

    def emails(self, emails: np.ndarray, *, variant: float) -> np.ndarray:
        """Variants that still reach the same inbox: case, plus-tags, gmail dots, spaces."""
        out = emails.astype(object)
        for i in np.flatnonzero(self.pick(len(out), variant)):
            out[i] = self._email_variant(out[i])
        return out

    def _email_variant(self, email: str) -> str:
        local, domain = email.split("@")
        kind = int(self.rng.integers(5))
        if kind == 1 and domain in self.locale.plus_domains:
            tags = self.locale.plus_tags
            return f"{local}+{tags[int(self.rng.integers(len(tags)))]}@{domain}"
        if kind == 2 and domain in self.locale.dot_blind_domains:
            at = int(self.rng.integers(1, len(local)))
            bare = local.replace(".", "")
            return f"{bare if '.' in local else local[:at] + '.' + local[at:]}@{domain}"
        if kind == 3:
            return f" {email} " if self.rng.random() < 0.5 else f"{email} "
        if kind == 4:
            return email.upper()
        return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()

    def phones(self, numbers: np.ndarray) -> np.ndarray:
        """Write 10-digit national numbers in the locale's many formats ("" stays blank)."""
        formats, weights = zip(*self.locale.phone_formats, strict=True)
        if self.level == 0:
            formats, weights = (lambda n: f"+{self.locale.country_code}{n}",), (1.0,)
        p = np.array(weights) / sum(weights)
        choice = self.rng.choice(len(formats), size=len(numbers), p=p)
        return np.array(
            [formats[c](n) if n else None for n, c in zip(numbers, choice, strict=True)],
            dtype=object,
        )
