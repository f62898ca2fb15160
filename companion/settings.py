"""Declarative settings: dataclasses whose fields carry their own limits.

Every config section is a frozen dataclass built with :func:`setting`; the
loader in :mod:`companion.config` validates a TOML table against it and reports
*every* problem with its key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


def setting(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: Sequence[Any] | None = None,
    unit: str = "",
) -> Any:
    """A dataclass field with a default, a help text and optional limits."""
    meta = {"help": help, "min": min, "max": max, "choices": choices, "unit": unit}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    if dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def range_text(lo: float | None, hi: float | None, unit: str = "") -> str:
    """What a range allows, for messages: ``between 1 and 20 s``, ``>= 0``, ``<= 5 Hz``."""
    if lo is not None and hi is not None:
        text = f"between {lo} and {hi}"
    else:
        text = f">= {lo}" if lo is not None else f"<= {hi}"
    return f"{text} {unit}" if unit else text
