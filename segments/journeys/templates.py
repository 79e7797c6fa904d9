"""Message templates: one YAML file per template, its parts rendered with Jinja2.

    # messages/cart_discount.yaml
    channel: email
    subject: "{{ first_name }}, {{ discount }}% off what you left in your cart"
    body: |
      ... use code {{ code }} ...
      Unsubscribe: {{ unsubscribe_url }}

An email template has a `subject` and a `body` that carries `{{ unsubscribe_url }}`; a
push template a `title` and a `body` (and optionally a `url`). Every variable other than
those the runner provides (`first_name`, `customer_id`, `unsubscribe_url`) is a
parameter the journey's send step must give. Rendering is sandboxed and strict: an
unknown variable is an error, never an empty string.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["PROVIDED", "TEMPLATES_DIR", "Template", "TemplateError", "load_templates"]

TEMPLATES_DIR = Path(__file__).parent / "messages"
PROVIDED = frozenset({"first_name", "customer_id", "unsubscribe_url"})
"""Variables the runner fills for every message."""

_PARTS = {"email": ({"subject", "body"}, set()), "push": ({"title", "body"}, {"url"})}
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class TemplateError(ValueError):
    """A template file is wrong (the message names the file and the part)."""


@dataclass(frozen=True)
class Template:
    name: str
    channel: str
    parts: Mapping[str, str]

    @property
    def parameters(self) -> set[str]:
        """The variables a send step must give (all used, minus what the runner provides)."""
        used = set()
        for text in self.parts.values():
            used |= meta.find_undeclared_variables(_ENV.parse(text))
        return used - PROVIDED

    def render(self, variables: Mapping[str, object]) -> dict[str, str]:
        """Every part rendered with `variables` (jinja2's UndefinedError if one is missing)."""
        return {part: _compiled(text).render(variables) for part, text in self.parts.items()}


@functools.lru_cache(maxsize=256)
def _compiled(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def load_templates(*, folders: Sequence[Path]) -> dict[str, Template]:
    """Every template in `folders` by name (the file's stem); later folders win."""
    found, problems = {}, []
    for folder in folders:
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                found[path.stem] = _parse(path)
            except TemplateError as error:
                problems.append(str(error))
    if problems:
        raise TemplateError("\n".join(problems))
    return found


def _parse(path: Path) -> Template:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise TemplateError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict) or data.get("channel") not in _PARTS:
        raise TemplateError(f"{path}: a template is a mapping with `channel: email|push`")
    channel = data.pop("channel")
    required, optional = _PARTS[channel]
    missing, unknown = required - set(data), set(data) - required - optional
    if missing or unknown:
        raise TemplateError(
            f"{path}: a {channel} template has {', '.join(sorted(required))}"
            + (f" (optional: {', '.join(sorted(optional))})" if optional else "")
            + f"; missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    for part, text in data.items():
        try:
            _ENV.parse(str(text))
        except TemplateSyntaxError as error:
            raise TemplateError(f"{path}: {part}: line {error.lineno}: {error.message}") from None
    if channel == "email" and "unsubscribe_url" not in meta.find_undeclared_variables(
        _ENV.parse(str(data["body"]))
    ):
        raise TemplateError(f"{path}: body: an email carries {{{{ unsubscribe_url }}}}")
    return Template(name=path.stem, channel=channel, parts={k: str(v) for k, v in data.items()})
