"""How numbers look in a study's REPORT.md: one place decides, so no "None"/"nan" reaches the report and
every section prints the same quantity the same way.

These differ on purpose from `wenlm.training.utils.format_number`: `fixed` keeps trailing zeros (0.610, a
three-figure estimate) and switches to scientific notation only outside [1e-3, 1e5); `short` is ``.3g`` at
every size (token counts and FLOPs read 1e+05, 7.09e+12).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from wenlm.training.utils import MISSING, is_number

__all__ = ["fixed", "param_cell", "percent", "short"]


def fixed(value: Any, digits: int = 4) -> str:
    """``digits`` significant figures in fixed notation (scientific only for very large or small values)."""
    if not is_number(value):
        return MISSING
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.{max(digits - 1, 1)}e}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def short(value: Any) -> str:
    """Three significant figures, for counts and sizes that span decades."""
    return f"{value:.3g}" if is_number(value) else MISSING


def percent(value: Any, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}%" if is_number(value) else MISSING


def param_cell(fit: Mapping[str, Any], name: str) -> str:
    """A fitted parameter as ``estimate ± standard error [95% interval]``, leaving out what the fit lacks."""
    value = fit["params"][name]
    stderr = (fit.get("stderr") or {}).get(name)
    interval = (fit.get("ci95") or {}).get(name)
    text = fixed(value)
    if is_number(stderr):
        text += f" ± {fixed(stderr, 2)}"
    if interval and all(is_number(bound) for bound in interval):
        text += f" [{fixed(interval[0], 3)}, {fixed(interval[1], 3)}]"
    return text
