"""Readable names for arms: ``--label 'method.name=baseline,ssl.name=none:Baseline'`` or a JSON file of them.

A rule names the arm whose runs all have those settings (param values; numbers compare as numbers, so
``ssl.weight=0`` matches a logged ``0.0``). When several rules match one arm the one with the most settings wins.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reid.reporting.errors import ReportError

Settings = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LabelRule:
    name: str
    settings: Settings

    def matches(self, params: Mapping[str, str]) -> bool:
        return all(key in params and values_equal(params[key], value) for key, value in self.settings)


def canonical(value: str) -> tuple[int, float | str]:
    """What makes two logged values the same setting: numbers by value (``0`` = ``0.0`` = ``0e0``), else the text."""
    try:
        number = float(value)
    except ValueError:
        return (1, value)
    return (0, number) if not math.isnan(number) else (1, value)


def values_equal(a: str, b: str) -> bool:
    return canonical(a) == canonical(b)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets, so ``erase_area=[0.3, 0.4]`` stays one pair."""
    parts, depth, current = [], 0, []
    for ch in text:
        depth += ch in "[({"
        depth -= ch in "])}"
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_settings(text: str, what: str = "settings") -> Settings:
    """``key=value,key=value`` -> ((key, value), ...); one clear error for a part without ``=``."""
    pairs = []
    for part in _split_top_level(text):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip():
            raise ReportError(f"{what} {text!r}: {part.strip()!r} is not KEY=VALUE")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def parse_label_spec(spec: str) -> LabelRule:
    """``key=value,...:Readable name`` (the name is everything after the first ``:``)."""
    settings, sep, name = spec.partition(":")
    if not sep or not name.strip():
        raise ReportError(f"label {spec!r} is not KEY=VALUE[,KEY=VALUE...]:NAME")
    return LabelRule(name.strip(), parse_settings(settings, what=f"label {spec!r}"))


def load_label_file(path: str | Path) -> list[LabelRule]:
    """A JSON object ``{"Readable name": {"param.key": value, ...}, ...}``; its order is the table's order."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"labels file {path} not found") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"labels file {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and v for v in data.values()):
        raise ReportError(f'labels file {path} must hold {{"name": {{"param.key": value, ...}}, ...}}')
    return [
        LabelRule(str(name), tuple((str(k), _as_param(v)) for k, v in settings.items()))
        for name, settings in data.items()
    ]


def _as_param(value: object) -> str:
    """A JSON value as MLflow logged it (``str`` of the Python value: true -> ``True``, null -> ``None``)."""
    return value if isinstance(value, str) else str(value)


def name_for(params: Mapping[str, str], rules: Sequence[LabelRule]) -> str | None:
    """The name of the most specific matching rule (None when none matches; two equally specific: an error)."""
    hits = [r for r in rules if r.matches(params)]
    if not hits:
        return None
    best = max(len(r.settings) for r in hits)
    names = sorted({r.name for r in hits if len(r.settings) == best})
    if len(names) > 1:
        raise ReportError(
            f"labels {', '.join(map(repr, names))} match the same arm equally well; make one more specific"
        )
    return names[0]
