"""Checks of a composed training config, run before any data, model or run folder is touched.

**Types**: the config merged into the structured schema (reid.config.schema); a wrong type or an unset required value
is a :class:`ConfigError` naming the full dotted key. **Values**: each field's own rule (declared with it in the
schema), then the rules relating several keys (here); every problem is collected and one ConfigError lists them all,
one per line, as ``<dotted.key> must be <rule>, got <value>``.
"""
from __future__ import annotations

import functools
import math
import re
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from reid.config import schema

RESUME_WORDS = ("auto", "true", "false", "never")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
STAGE_KEYS = {"prompt": ("feature_batch_size",), "image": ("num_instances", "eval_period")}  # required per stage kind


class ConfigError(ValueError):
    """The training config has a wrong type or an invalid value; the message names each offending key."""


def _raise(errors: list[str]) -> None:
    """One ConfigError for all problems found: the message itself for one, a numbered header and a line each else."""
    if len(errors) == 1:
        raise ConfigError(errors[0])
    if errors:
        raise ConfigError(f"{len(errors)} config errors:\n" + "\n".join(f"  {e}" for e in errors))


def _method(name: Any):
    from reid.methods import method_class

    try:
        return method_class(str(name))
    except ValueError:
        return None


def _section_type(annotation: Any) -> type | None:
    """The dataclass behind ``X`` or ``Optional[X]``."""
    return next(
        (c for c in (annotation, *typing.get_args(annotation)) if isinstance(c, type) and is_dataclass(c)), None
    )


# ---------------------------------------------------------------------------------------------- pass 1: types


def _check_sections(cls: type, raw: dict, prefix: str) -> None:
    """A section given as a scalar or list (``method.stage2=5``) would only fail as an anonymous merge error."""
    for name, annotation in typing.get_type_hints(cls).items():
        sub, value = _section_type(annotation), raw.get(name)
        if sub is None or value is None or value == "???" or (isinstance(value, str) and value.startswith("${")):
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{prefix}{name} must be a config section (a mapping), got {value!r}")
        _check_sections(sub, value, f"{prefix}{name}.")


@functools.lru_cache(maxsize=1)
def _schema() -> DictConfig:
    """The structured schema, open to extra keys (built once: it takes a good part of a validation)."""

    def open_(node: DictConfig) -> None:  # structured sections are closed by default, each on its own
        OmegaConf.set_struct(node, False)
        for key in node:
            if not OmegaConf.is_missing(node, key) and isinstance(node[key], DictConfig):
                open_(node[key])

    typed = OmegaConf.structured(schema.Train)
    open_(typed)
    return typed


def _missing(node: Any, key: str) -> list[str]:
    """Dotted keys left at ``???`` in a plain container (interpolations are not resolved)."""
    if node == "???":
        return [key]
    if isinstance(node, dict):
        return [k for child, v in node.items() for k in _missing(v, f"{key}.{child}")]
    if isinstance(node, list):
        return [k for i, v in enumerate(node) for k in _missing(v, f"{key}[{i}]")]
    return []


def _as_config_error(err: OmegaConfBaseException) -> ConfigError:
    key = getattr(err, "full_key", None) or getattr(err, "key", None) or "<config>"
    detail = (getattr(err, "msg", None) or str(err)).splitlines()[0]
    if "is not a ListConfig" in detail:  # OmegaConf's wording for a scalar given where a list belongs
        detail = f"expected a list, got {getattr(err, 'value', None)!r}"
    return ConfigError(f"{key} has the wrong type: {detail}")


def _unused_sections(merged: DictConfig) -> set[str]:
    """Sections the selected method / SSL never reads (``experiment=demo method=baseline`` leaves a partial
    ``method.stage1`` behind): neither a missing value nor a bad one there is an error."""
    method = _method(OmegaConf.select(merged, "method.name", throw_on_resolution_failure=False))
    unused = {f"method.{s}" for s in ("stage1", "stage2") if method is None or s not in method.stages}
    if method is None or not method.uses_text:
        unused.add("method.prompt")
    if OmegaConf.select(merged, "ssl.name", throw_on_resolution_failure=False) == "none":
        unused |= {"ssl.lang", "ssl.vision"}
    return unused


def _typed(cfg: DictConfig) -> tuple[DictConfig, set[str]]:
    """``cfg`` merged into the schema, and its unused sections; wrong types and unset values raise ConfigError."""
    _check_sections(schema.Train, OmegaConf.to_container(cfg, resolve=False), "")
    try:
        merged = OmegaConf.merge(_schema(), cfg)  # merge copies: the cached schema is never modified
    except OmegaConfBaseException as err:
        raise _as_config_error(err) from None
    unused = _unused_sections(merged)
    raw = OmegaConf.to_container(merged, resolve=False)
    missing = [
        k
        for f in fields(schema.Train)
        for k in _missing(raw.get(f.name), f.name)
        if not any(k == u or k.startswith(u + ".") for u in unused)
    ]
    _raise([f"{k} is required but not set (give it on the command line: {k}=...)" for k in missing])
    return merged, unused


# --------------------------------------------------------------------------------------------- pass 2: values


def _fmt(value: Any) -> str:
    return repr(OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value)


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


class _Checks:
    """Collects ``<key> must be <rule>, got <value>`` messages."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, key: str, rule: str, value: Any) -> None:
        self.errors.append(f"{key} must be {rule}, got {_fmt(value)}")

    def number(
        self,
        key: str,
        value: Any,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        **_: Any,
    ) -> bool:
        """A finite number inside the given bounds (open or closed)."""
        if low is not None and high is not None:
            rule = f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}"
        else:
            rule = f"{'>' if low_open else '>='} {_num(low)}" if low is not None else "a finite number"
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (low is None or (value > low if low_open else value >= low))
        ok = ok and (high is None or (value < high if high_open else value <= high))
        if not ok:
            self.fail(key, rule, value)
        return ok

    def choice(self, key: str, value: Any, options: Any) -> bool:
        options = tuple(options)
        if value not in options:
            self.fail(key, f"one of {', '.join(map(str, options))}", value)
        return value in options

    def interval(self, key: str, value: Any, low: float, high: float | None) -> None:
        """[lo, hi] with low < lo <= hi (<= high)."""
        if len(value) != 2:
            return self.fail(key, "a list of 2 values", value)
        lo, hi = value
        if not (low < lo <= hi <= (math.inf if high is None else high) and math.isfinite(hi)):
            self.fail(
                key, f"[lo, hi] with {_num(low)} < lo <= hi{f' <= {_num(high)}' if high is not None else ''}", value
            )

    def fields(self, cls: type, node: DictConfig, prefix: str, unused: set[str]) -> None:
        """Every field's own rule (schema.rule), recursively; unused sections and null values are skipped."""
        for f in fields(cls):
            key, sub, meta = f"{prefix}{f.name}", _section_type(typing.get_type_hints(cls)[f.name]), f.metadata
            if key in unused or (sub is None and "choices" not in meta):
                continue  # a value without a rule is not read (it may need Hydra's runtime to resolve)
            value = node.get(f.name)
            if value is None:
                continue
            if sub is not None:
                self.fields(sub, value, key + ".", unused)
            elif "choices" in meta:
                items = list(enumerate(value)) if meta["each"] else [(None, value)]
                if meta["n"] and len(value) != meta["n"]:
                    self.fail(key, f"a list of {meta['n']} values", value)
                    continue
                for i, item in items:
                    name = key if i is None else f"{key}[{i}]"
                    if meta["choices"] is not None:
                        self.choice(name, item, meta["choices"]())
                    else:
                        self.number(name, item, **meta)


def _cross_rules(c: _Checks, m: DictConfig, unused: set[str]) -> None:
    """The rules that relate several keys, or check more than a value."""
    from reid.data.errors import DatasetError
    from reid.data.registry import check_options

    if not DEVICE_PATTERN.match(m.device):
        c.fail("device", "auto, cpu, cuda, cuda:N or mps", m.device)
    for key, value in (("pin_memory", m.pin_memory), ("speed.fused_optimizer", m.speed.fused_optimizer)):
        if value not in ("auto", True, False):
            c.fail(key, "auto, true or false", value)
    paths = [("init_from", m.init_from, "an existing run folder or checkpoint file")]
    if not isinstance(m.resume, bool) and m.resume not in RESUME_WORDS:
        paths.append(("resume", m.resume, "auto, true, false or an existing checkpoint file / run folder"))
    for key, value, rule in paths:
        if value is not None and (
            not isinstance(value, str) or not value.strip() or not Path(value).expanduser().exists()
        ):
            c.fail(key, rule, value)
    c.interval("augment.erase_area", m.augment.erase_area, 0, 1)
    c.interval("augment.erase_ratio", m.augment.erase_ratio, 0, None)
    d = m.dataset
    options = OmegaConf.to_container(d.options, resolve=True) if d.options is not None else {}
    if not any(e.startswith("dataset.name ") for e in c.errors):
        try:
            check_options(d.name, options)
        except DatasetError as err:
            c.errors.append(f"dataset.options: {err}")
    for flag in ("verify_images", "skip_corrupt"):
        if flag in options and not isinstance(options[flag], bool):
            c.fail(f"dataset.options.{flag}", "true or false", options[flag])
    fraction = options.get("val_fraction", 0)
    if fraction:
        c.number("dataset.options.val_fraction", fraction, 0, 1, low_open=True, high_open=True)
    has_val = bool(fraction)
    if str(m.objective).startswith("val/") and not has_val:
        c.fail(
            "objective",
            "a test metric (mAP, rank1, ...) without a validation split (dataset.options.val_fraction)",
            m.objective,
        )
    if m.eval.select_best is not None and (not str(m.eval.select_best).startswith("val/") or not has_val):
        c.fail(
            "eval.select_best",
            "a validation metric (val/mAP, val/rank1, ...) of a validation split (dataset.options.val_fraction > 0)",
            m.eval.select_best,
        )
    if not d.kind.strip():
        c.fail("dataset.kind", "a non-empty noun (person, vehicle)", d.kind)
    b = m.backbone
    if b.arch == "vit":
        c.errors.extend(
            f"backbone.{k} is required by backbone.arch=vit" for k in ("stride", "mid_depth") if b[k] is None
        )
    elif b.arch == "rn50":
        if b.last_stride is None:
            c.errors.append("backbone.last_stride is required by backbone.arch=rn50")
        for side in ("camera", "view"):
            if b.sie[side]:
                c.fail(
                    f"backbone.sie.{side}", "false for backbone.arch=rn50 (it has no side-information embedding)", True
                )
    raw = OmegaConf.to_container(b, resolve=False)
    if raw.get("pretrained") is None and raw.get("config") is None:
        c.errors.append("backbone.pretrained and backbone.config are both null: give weights or an architecture")
    loss, ssl_weight = m.loss, (m.ssl.weight if m.ssl.name != "none" else 0.0)
    weights = [loss[k] for k in ("id_weight", "triplet_weight", "i2t_weight")]
    if all(isinstance(w, (int, float)) and w >= 0 for w in weights) and sum(weights) + max(ssl_weight, 0.0) == 0:
        c.errors.append(
            "loss.id_weight, loss.triplet_weight, loss.i2t_weight (and ssl.weight) are all 0: nothing to train"
        )
    if isinstance(loss.triplet_weight, (int, float)) and loss.triplet_weight > 0 and len(loss.triplet_on) == 0:
        c.fail("loss.triplet_on", "non-empty when loss.triplet_weight > 0", loss.triplet_on)


def _method_rules(c: _Checks, meth: DictConfig) -> None:
    from reid.engine.schedules import schedule_parameters

    method = _method(meth.name)
    if method is None:
        return  # the name's own rule reported it
    stages = list(meth.stages) if meth.stages else list(method.stages)
    for i, st in enumerate(stages):
        c.choice(f"method.stages[{i}]", st, method.stages)
    if method.uses_text and meth.prompt is None:
        c.errors.append(f"method.prompt is required by method {meth.name}")
    elif method.uses_text and ("{ctx}" not in meth.prompt.template or "{noun}" not in meth.prompt.template):
        c.fail("method.prompt.template", "a template with {ctx} and {noun}", meth.prompt.template)
    for st in (s for s in stages if s in method.stages):
        s, key, kind = meth[st], f"method.{st}", method.stages[st]
        if s is None:
            c.errors.append(f"{key} is required by method {meth.name} ({kind} stage)")
            continue
        c.errors.extend(f"{key}.{name} is required by a {kind} stage" for name in STAGE_KEYS[kind] if s[name] is None)
        sch, skey = s.scheduler, f"{key}.scheduler"
        if f"{skey}.name must" not in " ".join(c.errors):
            takes = schedule_parameters(sch.name)
            given = {k for k in sch.keys() if k != "name" and sch[k] is not None}
            c.errors.extend(f"{skey}.{k} is required by the {sch.name} scheduler" for k in sorted(set(takes) - given))
            c.errors.extend(
                f"{skey}.{k} is not a parameter of the {sch.name} scheduler (it takes {', '.join(takes)})"
                for k in sorted(given - set(takes))
            )
        ms = list(sch.milestones or [])
        if any(x < 1 for x in ms) or any(b <= a for a, b in zip(ms, ms[1:])):
            c.fail(f"{skey}.milestones", "strictly increasing epochs >= 1", ms)
        k = s.num_instances
        if (
            kind == "image"
            and k is not None
            and c.number(f"{key}.num_instances", k, 1)
            and isinstance(s.batch_size, int)
        ):
            if k > s.batch_size >= 1:
                c.fail(f"{key}.num_instances", f"<= {key}.batch_size ({s.batch_size})", k)
            elif s.batch_size >= 1 and s.batch_size % k:
                c.errors.append(
                    f"{key}.batch_size must be a multiple of {key}.num_instances "
                    f"({k} images per identity), got {s.batch_size}"
                )


def _ssl_rules(c: _Checks, s: DictConfig) -> None:
    if s.name == "none":
        return
    if s.family == "simsiam" and s.predictor_hidden is None:
        c.errors.append("ssl.predictor_hidden is required by the simsiam family")
    if s.family == "simclr" and s.temperature is None:
        c.errors.append(f"ssl.temperature is required by ssl {s.name}")
    for branch, weight_key in (("lang", "lang_weight"), ("vision", "weight")):
        node = s[branch]
        if node is None and isinstance(s[weight_key], (int, float)) and s[weight_key] != 0:
            c.errors.append(f"ssl.{branch} is required by ssl {s.name} when ssl.{weight_key} is not 0")
        elif node is not None and node.projector is None and s.family == "simclr":
            c.errors.append(f"ssl.{branch}.projector is required by the simclr family")
    if s.vision is not None:
        c.interval("ssl.vision.erase_area", s.vision.erase_area, 0, 1)
        c.interval("ssl.vision.erase_ratio", s.vision.erase_ratio, 0, None)


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` if ``cfg`` (a composed ``train`` config) has a wrong type or value.

    Reads nothing but the config (and whether a ``resume`` / ``init_from`` path exists): call it before any data,
    model or output is touched. The message names every offending key with its full dotted name.
    """
    merged, unused = _typed(cfg)
    c = _Checks()
    try:
        for f in fields(schema.Train):  # section by section: each one's field rules, then its cross-key rules
            cls = _section_type(typing.get_type_hints(schema.Train)[f.name])
            if cls is None:
                c.fields(schema.Train, OmegaConf.masked_copy(merged, [f.name]), "", unused)
            else:
                c.fields(cls, merged[f.name], f"{f.name}.", unused)
            if f.name == "method":
                _method_rules(c, merged.method)
        _cross_rules(c, merged, unused)
        _ssl_rules(c, merged.ssl)
    except MissingMandatoryValue as err:
        raise ConfigError(
            f"{err.full_key} is required but not set (give it on the command line: {err.full_key}=...)"
        ) from None
    except OmegaConfBaseException as err:  # an interpolation that resolves to a wrong type
        raise _as_config_error(err) from None
    _raise(c.errors)


def ineffective_settings(cfg: DictConfig) -> list[str]:
    """Valid settings that change nothing in this composition: one sentence each, saying what to do instead.

    A sweep such as ``-m ssl.weight=0.1,0.5`` on ``ssl=none`` would otherwise train identical runs without a word.
    Call after :func:`validate_config`.
    """
    notes: list[str] = []
    ssl, method = cfg.ssl, str(cfg.method.name)
    if ssl.name == "none":
        notes += [
            f"ssl.{key}={ssl[key]} has no effect with ssl=none (plain {method}): "
            "add ssl=simclr (SVLL-ReID) or ssl=simsiam to train with self-supervision"
            for key in ("weight", "lang_weight")
            if float(ssl[key]) != 0.0
        ]
    elif not _method(method).uses_text and float(ssl.lang_weight) != 0.0:
        notes.append(
            f"ssl.lang_weight={ssl.lang_weight} has no effect with method={method} (no text side, no stage 1): "
            "only the vision term (ssl.weight) trains; use method=clipreid for the language term"
        )
    return notes
