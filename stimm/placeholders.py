"""``{name}`` placeholders in an agent's greeting, instructions and voicemail message, filled
per call from a campaign row's columns. Only ``{identifier}`` is a placeholder, so other braces
(a JSON example in the instructions) are left as they are."""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")


def placeholders(text: str | None) -> set[str]:
    """The placeholder names ``text`` uses."""
    return set(PLACEHOLDER.findall(text or ""))


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each placeholder that ``values`` names replaced by its value."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
