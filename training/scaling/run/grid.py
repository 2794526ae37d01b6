"""The model sizes of a study's grid: presets, each with config overrides of its own (the grid's data sizes D
are parsed with the options: `wenlm.training.args.parse_data_sizes`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from wenlm.modeling import PRESETS
from wenlm.training.model_config import parse_override_value

__all__ = ["ModelSpec", "parse_model_specs"]


@dataclass
class ModelSpec:
    """One model size of the grid: a preset plus optional config overrides of its own."""

    label: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The label made safe for a file name (``nano:num_hidden_layers=2`` -> ``nano-num_hidden_layers-2``)."""
        return re.sub(r"[^A-Za-z0-9._]+", "-", self.label).strip("-")


def parse_model_specs(text: str) -> list[ModelSpec]:
    """``"nano,micro:num_hidden_layers=3"``: presets, each optionally followed by ``:field=value`` overrides."""
    specs = []
    for entry in (part.strip() for part in str(text).split(",")):
        if not entry:
            continue
        preset, *assignments = entry.split(":")
        if preset not in PRESETS:
            raise ValueError(
                f"--presets: {preset!r} (in {entry!r}) is not a preset; valid: {', '.join(PRESETS)}"
            )
        overrides = {}
        for assignment in assignments:
            name, equals, value = assignment.partition("=")
            if not equals or not name.strip():
                raise ValueError(
                    f"--presets: {assignment!r} in {entry!r} is not of the form field=value "
                    "(e.g. nano:num_hidden_layers=2)"
                )
            overrides[name.strip()] = parse_override_value(value.strip())
        specs.append(ModelSpec(label=entry, preset=preset, overrides=overrides))
    if not specs:
        raise ValueError("--presets is empty; give e.g. nano,micro")
    slugs = [spec.slug for spec in specs]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"--presets lists the same model twice: {text}")
    return specs
