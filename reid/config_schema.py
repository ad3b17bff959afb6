"""Typed schema and value checks for the training config, run before any data, model or run folder is touched.

:func:`validate_config` runs in two passes:

1. **Types.** The composed config is merged into the structured configs below (plain dataclasses). OmegaConf
   converts what it safely can (``"64"`` -> 64) and raises a ``ValidationError`` for a wrong type
   (``method.stage2.batch_size=abc``); that becomes a :class:`ConfigError` naming the full dotted key.
   A required value left at ``???`` (``dataset.root`` of ``dataset=folder``) is reported the same way.
2. **Values.** Ranges, choices and cross-field rules (``num_instances`` must divide ``batch_size``, milestones must
   increase, the dataset must be registered, ...). Every problem is collected and one :class:`ConfigError` lists
   them all, one per line, each as ``<dotted.key> must be <rule>, got <value>``.

The schema describes only what this check reads: extra keys are allowed (Hydra already rejects a key that is not
in the composed config unless it is added with ``+``), so a config group that gains a key does not need a schema
change. Importing this module is cheap (no torch), so ``python -m reid.train`` can validate before it loads the
training stack.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

__all__ = ["ConfigError", "TrainSchema", "validate_config"]


class ConfigError(ValueError):
    """The training config has a wrong type or an invalid value; the message names each offending key."""


# Choices the training code accepts. They live here (not imported) so validation never imports torch;
# tests/faults/test_config_validation.py checks them against the implementing modules.
PRECISIONS = ("fp32", "bf16", "fp16")  # reid.engine.precision.Precision
NONFINITE_ACTIONS = ("stop", "skip")  # reid.engine.faults.NonFinitePolicy
OPTIMIZERS = ("adam", "adamw", "sgd")  # reid.engine.optim.build_optimizer
SCHEDULER_PARAMS = {  # reid.engine.schedules.build_scheduler: name -> the parameters it takes
    "warmup_multistep": ("warmup_epochs", "warmup_factor", "milestones", "gamma"),
    "cosine": ("warmup_epochs", "warmup_lr_init", "lr_min"),
}
EVAL_BACKENDS = ("auto", "faiss_cpu", "faiss_gpu", "torch")  # reid.evaluation.knn.BACKENDS
METHODS = ("baseline", "clipreid")  # reid.pipeline
STAGES = ("stage1", "stage2")
BACKBONE_ARCHS = ("vit", "rn50")  # reid.builders.build_model
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")
NECK_FEATS = ("before", "after")  # reid.models.reid_model.ReIDModel
TRIPLET_TAPS = ("mid", "last", "proj")  # reid.engine.objectives
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # reid.engine.speed
SSL_NAMES = ("none", "simclr", "simsiam", "simsiam_projector")
SSL_FAMILIES = ("simclr", "simsiam")
RESUME_WORDS = ("auto", "true", "false", "never")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
MAX_SEED = 2**32 - 1  # numpy's seed range


# ---------------------------------------------------------------------------------------------------------------
# Schema (types). MISSING = the composed config must provide the key.
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class SpeedSchema:
    compile: bool = False
    compile_mode: str = "default"
    channels_last: bool = False
    fused_optimizer: Any = "auto"  # auto | bool
    extract_precision: str = "fp32"


@dataclass
class AugmentSchema:
    flip_p: float = MISSING
    pad: int = MISSING
    erase_p: float = MISSING
    erase_area: List[float] = MISSING
    erase_ratio: List[float] = MISSING


@dataclass
class CheckpointSchema:
    keep_last: int = MISSING
    period: int = MISSING


@dataclass
class NonFiniteSchema:
    action: str = MISSING
    max_skips: int = MISSING


@dataclass
class LimitsSchema:
    epochs: Optional[int] = None
    steps_per_epoch: int = 0
    eval_images: int = 0
    pretrain_steps: int = 0


@dataclass
class DatasetSchema:
    name: str = MISSING
    root: str = MISSING
    kind: str = MISSING
    size: List[int] = MISSING
    options: Optional[Dict[str, Any]] = None


@dataclass
class SieSchema:
    camera: bool = False
    view: bool = False
    coefficient: float = 3.0


@dataclass
class BackboneSchema:
    name: str = MISSING
    arch: str = MISSING
    pretrained: Optional[str] = None
    config: Any = None
    attn_implementation: str = "sdpa"
    stride: Optional[int] = None  # vit: patch stride (12 = overlapping patches)
    mid_depth: Optional[int] = None  # vit: the block whose class token is f_mid
    last_stride: Optional[int] = None  # rn50: stride of layer4
    sie: SieSchema = field(default_factory=SieSchema)
    pixel_mean: List[float] = MISSING
    pixel_std: List[float] = MISSING
    classifier_std: float = MISSING
    neck_feat: str = "before"
    pretrain: Any = None


@dataclass
class LossSchema:
    id_weight: float = MISSING
    triplet_weight: float = MISSING
    i2t_weight: float = 0.0
    label_smoothing: float = MISSING
    triplet_margin: float = MISSING
    triplet_on: List[str] = MISSING


@dataclass
class OptimizerSchema:
    name: str = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    weight_decay_bias: float = MISSING
    bias_lr_factor: float = MISSING
    betas: List[float] = MISSING


@dataclass
class SchedulerSchema:
    name: str = MISSING
    warmup_epochs: Optional[int] = None
    warmup_factor: Optional[float] = None
    milestones: Optional[List[int]] = None
    gamma: Optional[float] = None
    warmup_lr_init: Optional[float] = None
    lr_min: Optional[float] = None


@dataclass
class StageSchema:
    epochs: int = MISSING
    batch_size: int = MISSING
    optimizer: OptimizerSchema = field(default_factory=OptimizerSchema)
    scheduler: SchedulerSchema = field(default_factory=SchedulerSchema)


@dataclass
class Stage1Schema(StageSchema):
    feature_batch_size: int = MISSING


@dataclass
class Stage2Schema(StageSchema):
    num_instances: int = MISSING
    eval_period: int = MISSING


@dataclass
class PromptSchema:
    template: str = MISSING
    n_ctx: int = MISSING
    init_std: float = MISSING
    truncate_after_eot: bool = True


@dataclass
class MethodSchema:
    name: str = MISSING
    prompt: Optional[PromptSchema] = None
    stage1: Optional[Stage1Schema] = None
    stage2: Stage2Schema = field(default_factory=Stage2Schema)
    stages: Optional[List[str]] = None


@dataclass
class EvalSchema:
    normalize: bool = MISSING
    rerank: bool = MISSING
    k1: int = MISSING
    k2: int = MISSING
    lambda_value: float = MISSING
    backend: str = MISSING
    flip: bool = False
    batch_size: int = MISSING
    max_rank: int = MISSING
    at_start: bool = False
    plots: bool = True
    ranked_list_queries: int = 8


@dataclass
class ProjectorSchema:
    hidden: int = MISSING
    out: int = MISSING


@dataclass
class SslLangSchema:
    mask_prob: float = MISSING
    projector: ProjectorSchema = field(default_factory=ProjectorSchema)
    train_projector: bool = False


@dataclass
class SslVisionSchema:
    erase_p: float = MISSING
    erase_area: List[float] = MISSING
    erase_ratio: List[float] = MISSING
    projector: Optional[ProjectorSchema] = field(default_factory=ProjectorSchema)  # null: SimSiam on the raw feature
    svll_init: bool = True


@dataclass
class SslSchema:
    name: str = MISSING
    weight: float = 0.0
    lang_weight: float = 0.0
    family: Optional[str] = None
    temperature: Optional[float] = None
    lang: Optional[SslLangSchema] = None
    vision: Optional[SslVisionSchema] = None
    predictor_hidden: Optional[int] = None


@dataclass
class TrainSchema:
    """The sections of ``conf/train.yaml`` that training reads; other keys (paths, logger, ...) pass through."""

    seed: int = MISSING
    deterministic: bool = False
    device: str = "auto"
    precision: str = "fp32"
    num_workers: int = MISSING
    pin_memory: Any = "auto"  # "auto" | bool
    progress: bool = True
    speed: SpeedSchema = field(default_factory=SpeedSchema)
    augment: AugmentSchema = field(default_factory=AugmentSchema)
    resume: Any = "auto"  # auto | true | false | <checkpoint file or run folder>
    init_from: Optional[str] = None  # a run folder or checkpoint to start from (fine-tuning)
    checkpoint: CheckpointSchema = field(default_factory=CheckpointSchema)
    nonfinite: NonFiniteSchema = field(default_factory=NonFiniteSchema)
    grad_clip: float = 0.0
    limits: LimitsSchema = field(default_factory=LimitsSchema)
    dataset: DatasetSchema = field(default_factory=DatasetSchema)
    backbone: BackboneSchema = field(default_factory=BackboneSchema)
    loss: LossSchema = field(default_factory=LossSchema)
    method: MethodSchema = field(default_factory=MethodSchema)
    eval: EvalSchema = field(default_factory=EvalSchema)
    ssl: SslSchema = field(default_factory=SslSchema)


SECTIONS = tuple(f.name for f in fields(TrainSchema))


# ---------------------------------------------------------------------------------------------------------------
# Pass 1: types
# ---------------------------------------------------------------------------------------------------------------


def _open(node: Any) -> None:
    """Allow keys the schema does not list, at every level (structured configs are closed by default)."""
    if isinstance(node, DictConfig):
        OmegaConf.set_struct(node, False)
        for key in node.keys():
            _open(node._get_node(key))


def _check_sections(schema: type, node: Any, prefix: str) -> None:
    """A section given as a scalar or list (``method.stage2=5``) would only fail as an anonymous merge error."""
    for f in fields(schema):
        sub_type = _dataclass_of(f.type)
        value = node._get_node(f.name, validate_access=False) if sub_type is not None else None
        if value is None or value._is_none() or value._is_missing() or value._is_interpolation():
            continue
        key = f"{prefix}{f.name}"
        if not isinstance(value, DictConfig):
            raise ConfigError(f"{key} must be a config section (a mapping), got {value._value()!r}")
        _check_sections(sub_type, value, key + ".")


def _dataclass_of(annotation: Any) -> type | None:
    """The dataclass behind ``X`` or ``Optional[X]`` (annotations are strings under postponed evaluation)."""
    if isinstance(annotation, str):
        name = annotation.removeprefix("Optional[").removesuffix("]")
        candidate = globals().get(name)
        return candidate if isinstance(candidate, type) and is_dataclass(candidate) else None
    return annotation if isinstance(annotation, type) and is_dataclass(annotation) else None


@functools.lru_cache(maxsize=1)
def _schema() -> DictConfig:
    """The structured TrainSchema, open to extra keys (built once: it takes a good part of a validation)."""
    schema = OmegaConf.structured(TrainSchema)
    _open(schema)
    return schema


def _typed(cfg: DictConfig) -> DictConfig:
    """``cfg`` merged into the schema; wrong types and unset required values raise ConfigError."""
    _check_sections(TrainSchema, cfg, "")
    try:
        merged = OmegaConf.merge(_schema(), cfg)  # merge copies: the cached schema is never modified
    except OmegaConfBaseException as err:
        raise _as_config_error(err) from None
    unused = _unused_sections(merged)
    missing = [
        k for section in SECTIONS for k in _missing_keys(merged._get_node(section), section)
        if not any(k == u or k.startswith(u + ".") for u in unused)
    ]
    _raise([f"{k} is required but not set (give it on the command line: {k}=...)" for k in missing])
    return merged  # type: ignore[return-value]


def _unused_sections(merged: DictConfig) -> set[str]:
    """Sections the selected method / SSL never reads (e.g. ``experiment=demo method=baseline`` leaves a partial
    ``method.stage1`` behind): a value missing there is not an error."""
    unused: set[str] = set()
    method = merged.method._get_node("name")
    if method._is_interpolation() or method._value() != "clipreid":
        unused |= {"method.stage1", "method.prompt"}
    ssl = merged.ssl._get_node("name")
    if not ssl._is_interpolation() and ssl._value() == "none":
        unused |= {"ssl.lang", "ssl.vision"}
    return unused


def _missing_keys(node: Any, key: str) -> list[str]:
    """Dotted keys left at ``???`` under ``node``; unlike OmegaConf.missing_keys it resolves no interpolation."""
    if node is None or node._is_missing():
        return [key] if node is not None else []
    if isinstance(node, DictConfig) and not node._is_none() and not node._is_interpolation():
        return [k for child in node.keys() for k in _missing_keys(node._get_node(child), f"{key}.{child}")]
    if isinstance(node, ListConfig) and not node._is_none() and not node._is_interpolation():
        return [k for i in range(len(node)) for k in _missing_keys(node._get_node(i), f"{key}[{i}]")]
    return []


def _as_config_error(err: OmegaConfBaseException) -> ConfigError:
    key = getattr(err, "full_key", None) or getattr(err, "key", None) or "<config>"
    detail = (getattr(err, "msg", None) or str(err)).splitlines()[0]
    if "is not a ListConfig" in detail:  # OmegaConf's wording for a scalar given where a list belongs
        detail = f"expected a list, got {getattr(err, 'value', None)!r}"
    return ConfigError(f"{key} has the wrong type: {detail}")


def _raise(errors: list[str]) -> None:
    """One ConfigError for all problems found: the message itself for one, a numbered header and a line each else."""
    if len(errors) == 1:
        raise ConfigError(errors[0])
    if errors:
        raise ConfigError(f"{len(errors)} config errors:\n" + "\n".join(f"  {e}" for e in errors))


# ---------------------------------------------------------------------------------------------------------------
# Pass 2: values
# ---------------------------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    return repr(value)


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


class _Checks:
    """Collects ``<key> must be <rule>, got <value>`` messages."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, key: str, rule: str, value: Any) -> None:
        self.errors.append(f"{key} must be {rule}, got {_fmt(value)}")

    def number(
        self, key: str, value: Any, low: float | None = None, high: float | None = None,
        low_open: bool = False, high_open: bool = False,
    ) -> bool:
        """A finite number inside the given bounds (open or closed)."""
        if low is not None and high is not None:
            rule = f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}"
        elif low is not None:
            rule = f"{'>' if low_open else '>='} {_num(low)}"
        elif high is not None:
            rule = f"{'<' if high_open else '<='} {_num(high)}"
        else:
            rule = "a finite number"
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            self.fail(key, rule, value)
        return ok

    def choice(self, key: str, value: Any, options: tuple[Any, ...] | list[Any]) -> bool:
        if value not in options:
            self.fail(key, f"one of {', '.join(map(str, options))}", value)
            return False
        return True

    def length(self, key: str, value: Any, n: int) -> bool:
        if value is None or len(value) != n:
            self.fail(key, f"a list of {n} values", value)
            return False
        return True

    def interval(self, key: str, value: Any, low: float, high: float | None) -> None:
        """[lo, hi] with low < lo <= hi (<= high)."""
        if not self.length(key, value, 2):
            return
        lo, hi = value
        upper = math.inf if high is None else high
        if not (low < lo <= hi <= upper and math.isfinite(hi)):
            bound = f" <= {_num(high)}" if high is not None else ""
            self.fail(key, f"[lo, hi] with {_num(low)} < lo <= hi{bound}", value)


def _check_top(c: _Checks, m: DictConfig) -> None:
    c.number("seed", m.seed, 0, MAX_SEED)
    if not DEVICE_PATTERN.match(m.device):
        c.fail("device", "auto, cpu, cuda, cuda:N or mps", m.device)
    c.choice("precision", m.precision, PRECISIONS)
    c.number("num_workers", m.num_workers, 0)
    if m.pin_memory not in ("auto", True, False):
        c.fail("pin_memory", "auto, true or false", m.pin_memory)
    c.number("grad_clip", m.grad_clip, 0)
    c.choice("speed.compile_mode", m.speed.compile_mode, COMPILE_MODES)
    if m.speed.fused_optimizer not in ("auto", True, False):
        c.fail("speed.fused_optimizer", "auto, true or false", m.speed.fused_optimizer)
    c.choice("speed.extract_precision", m.speed.extract_precision, PRECISIONS)
    _check_resume(c, m.resume)
    if m.init_from is not None and not Path(str(m.init_from)).expanduser().exists():
        c.fail("init_from", "an existing run folder or checkpoint file", m.init_from)
    c.number("checkpoint.keep_last", m.checkpoint.keep_last, 1)
    c.number("checkpoint.period", m.checkpoint.period, 1)
    c.choice("nonfinite.action", m.nonfinite.action, NONFINITE_ACTIONS)
    c.number("nonfinite.max_skips", m.nonfinite.max_skips, 0)
    lim = m.limits
    if lim.epochs is not None:
        c.number("limits.epochs", lim.epochs, 0)
    for name in ("steps_per_epoch", "eval_images", "pretrain_steps"):
        c.number(f"limits.{name}", lim[name], 0)
    a = m.augment
    c.number("augment.flip_p", a.flip_p, 0, 1)
    c.number("augment.pad", a.pad, 0)
    c.number("augment.erase_p", a.erase_p, 0, 1)
    c.interval("augment.erase_area", a.erase_area, 0, 1)
    c.interval("augment.erase_ratio", a.erase_ratio, 0, None)


def _check_resume(c: _Checks, resume: Any) -> None:
    if resume is None or isinstance(resume, bool):
        return
    if not isinstance(resume, str) or not resume.strip():
        c.fail("resume", "auto, true, false or a checkpoint file / run folder", resume)
    elif resume not in RESUME_WORDS and not Path(resume).expanduser().exists():
        c.fail("resume", "auto, true, false or an existing checkpoint file / run folder", resume)


def _check_dataset(c: _Checks, d: DictConfig) -> None:
    from reid.data.registry import _REGISTRY, _check_options, registered_datasets  # no torch, no file access

    known = registered_datasets()
    if c.choice("dataset.name", d.name, known):
        from reid.data.errors import DatasetError

        options = OmegaConf.to_container(d.options, resolve=True) if d.options is not None else {}
        loader_options = {k: v for k, v in options.items() if k not in ("verify_images", "skip_corrupt")}
        try:
            _check_options(d.name, _REGISTRY[d.name], Path("."), loader_options)
        except DatasetError as err:
            c.errors.append(f"dataset.options: {err}")
        for flag in ("verify_images", "skip_corrupt"):
            if flag in options and not isinstance(options[flag], bool):
                c.fail(f"dataset.options.{flag}", "true or false", options[flag])
    if not d.kind.strip():
        c.fail("dataset.kind", "a non-empty noun (person, vehicle)", d.kind)
    if c.length("dataset.size", d.size, 2):
        for i, v in enumerate(d.size):
            c.number(f"dataset.size[{i}]", v, 1)


def _check_backbone(c: _Checks, b: DictConfig) -> None:
    c.choice("backbone.arch", b.arch, BACKBONE_ARCHS)
    if b.arch == "vit":
        for key, low, low_open in (("stride", 0, True), ("mid_depth", 1, False)):
            if b[key] is None:
                c.errors.append(f"backbone.{key} is required by backbone.arch=vit")
            else:
                c.number(f"backbone.{key}", b[key], low, low_open=low_open)
    elif b.arch == "rn50":
        if b.last_stride is None:
            c.errors.append("backbone.last_stride is required by backbone.arch=rn50")
        else:
            c.choice("backbone.last_stride", b.last_stride, (1, 2))
        for side in ("camera", "view"):
            if b.sie[side]:
                c.fail(f"backbone.sie.{side}", "false for backbone.arch=rn50 (it has no side-information embedding)", True)
    c.choice("backbone.attn_implementation", b.attn_implementation, ATTN_IMPLEMENTATIONS)
    c.number("backbone.sie.coefficient", b.sie.coefficient, 0)
    if c.length("backbone.pixel_mean", b.pixel_mean, 3):
        for i, v in enumerate(b.pixel_mean):
            c.number(f"backbone.pixel_mean[{i}]", v)
    if c.length("backbone.pixel_std", b.pixel_std, 3):
        for i, v in enumerate(b.pixel_std):
            c.number(f"backbone.pixel_std[{i}]", v, 0, low_open=True)
    c.number("backbone.classifier_std", b.classifier_std, 0, low_open=True)
    c.choice("backbone.neck_feat", b.neck_feat, NECK_FEATS)
    if _is_null(b, "pretrained") and _is_null(b, "config"):
        c.errors.append("backbone.pretrained and backbone.config are both null: give weights or an architecture")


def _is_null(node: DictConfig, key: str) -> bool:
    """``node.key`` is null, without resolving an interpolation (``${paths.model_dir}/...`` needs Hydra's runtime)."""
    child = node._get_node(key)
    return child is None or (not child._is_interpolation() and child._is_none())


def _check_loss(c: _Checks, loss: DictConfig, ssl_weight: float) -> None:
    weights = {}
    for name in ("id_weight", "triplet_weight", "i2t_weight"):
        if c.number(f"loss.{name}", loss[name], 0):
            weights[name] = loss[name]
    if len(weights) == 3 and sum(weights.values()) + max(ssl_weight, 0.0) == 0:
        c.errors.append("loss.id_weight, loss.triplet_weight, loss.i2t_weight (and ssl.weight) are all 0: nothing to train")
    c.number("loss.label_smoothing", loss.label_smoothing, 0, 1, high_open=True)
    c.number("loss.triplet_margin", loss.triplet_margin)  # <= 0 selects the soft-margin triplet
    for i, tap in enumerate(loss.triplet_on):
        c.choice(f"loss.triplet_on[{i}]", tap, TRIPLET_TAPS)
    if weights.get("triplet_weight", 0) > 0 and len(loss.triplet_on) == 0:
        c.fail("loss.triplet_on", "non-empty when loss.triplet_weight > 0", loss.triplet_on)


def _check_stage(c: _Checks, s: DictConfig, key: str) -> None:
    c.number(f"{key}.epochs", s.epochs, 1)
    c.number(f"{key}.batch_size", s.batch_size, 1)
    o, ok = s.optimizer, f"{key}.optimizer"
    c.choice(f"{ok}.name", o.name, OPTIMIZERS)
    c.number(f"{ok}.lr", o.lr, 0, low_open=True)
    c.number(f"{ok}.weight_decay", o.weight_decay, 0)
    c.number(f"{ok}.weight_decay_bias", o.weight_decay_bias, 0)
    c.number(f"{ok}.bias_lr_factor", o.bias_lr_factor, 0, low_open=True)
    if c.length(f"{ok}.betas", o.betas, 2):
        for i, beta in enumerate(o.betas):
            c.number(f"{ok}.betas[{i}]", beta, 0, 1, high_open=True)
    _check_scheduler(c, s.scheduler, f"{key}.scheduler")


def _check_scheduler(c: _Checks, sch: DictConfig, key: str) -> None:
    if not c.choice(f"{key}.name", sch.name, tuple(SCHEDULER_PARAMS)):
        return
    takes = SCHEDULER_PARAMS[sch.name]
    given = {k for k in sch.keys() if k != "name" and sch[k] is not None}
    for k in sorted(set(takes) - given):
        c.errors.append(f"{key}.{k} is required by the {sch.name} scheduler")
    for k in sorted(given - set(takes)):
        c.errors.append(f"{key}.{k} is not a parameter of the {sch.name} scheduler (it takes {', '.join(takes)})")
    if "warmup_epochs" in given:
        c.number(f"{key}.warmup_epochs", sch.warmup_epochs, 0)
    if sch.name == "warmup_multistep":
        if "warmup_factor" in given:
            c.number(f"{key}.warmup_factor", sch.warmup_factor, 0, 1, low_open=True)
        if "gamma" in given:
            c.number(f"{key}.gamma", sch.gamma, 0, low_open=True)
        if "milestones" in given:
            ms = list(sch.milestones)
            if any(m < 1 for m in ms) or any(b <= a for a, b in zip(ms, ms[1:])):
                c.fail(f"{key}.milestones", "strictly increasing epochs >= 1", ms)
    else:
        if "warmup_lr_init" in given:
            c.number(f"{key}.warmup_lr_init", sch.warmup_lr_init, 0)
        if "lr_min" in given:
            c.number(f"{key}.lr_min", sch.lr_min, 0)


def _check_method(c: _Checks, meth: DictConfig) -> None:
    if not c.choice("method.name", meth.name, METHODS):
        return
    uses_text = meth.name == "clipreid"
    stages = list(meth.stages) if meth.stages else (["stage1", "stage2"] if uses_text else ["stage2"])
    for i, st in enumerate(stages):
        c.choice(f"method.stages[{i}]", st, STAGES)
    if "stage2" not in stages:
        c.fail("method.stages", "a list that includes stage2", stages)
    if uses_text:
        if meth.prompt is None:
            c.errors.append("method.prompt is required by method clipreid")
        else:
            p = meth.prompt
            if "{ctx}" not in p.template or "{noun}" not in p.template:
                c.fail("method.prompt.template", "a template with {ctx} and {noun}", p.template)
            c.number("method.prompt.n_ctx", p.n_ctx, 1)
            c.number("method.prompt.init_std", p.init_std, 0, low_open=True)
    if "stage1" in stages:
        if not uses_text:
            c.errors.append(f"method.stages includes stage1, which needs the text side (method clipreid), not {meth.name}")
        elif meth.stage1 is None:
            c.errors.append("method.stage1 is required by method clipreid (prompt learning)")
        else:
            _check_stage(c, meth.stage1, "method.stage1")
            c.number("method.stage1.feature_batch_size", meth.stage1.feature_batch_size, 1)
    s2 = meth.stage2
    _check_stage(c, s2, "method.stage2")
    c.number("method.stage2.eval_period", s2.eval_period, 0)
    if c.number("method.stage2.num_instances", s2.num_instances, 1) and isinstance(s2.batch_size, int) and s2.batch_size >= 1:
        if s2.num_instances > s2.batch_size:
            c.fail("method.stage2.num_instances", f"<= method.stage2.batch_size ({s2.batch_size})", s2.num_instances)
        elif s2.batch_size % s2.num_instances:
            c.errors.append(
                f"method.stage2.batch_size must be a multiple of method.stage2.num_instances "
                f"({s2.num_instances} images per identity), got {s2.batch_size}"
            )


def _check_eval(c: _Checks, e: DictConfig) -> None:
    c.number("eval.k1", e.k1, 1)
    c.number("eval.k2", e.k2, 1)
    c.number("eval.lambda_value", e.lambda_value, 0, 1)
    c.choice("eval.backend", e.backend, EVAL_BACKENDS)
    c.number("eval.batch_size", e.batch_size, 1)
    c.number("eval.max_rank", e.max_rank, 1)
    c.number("eval.ranked_list_queries", e.ranked_list_queries, 0)


def _check_ssl(c: _Checks, s: DictConfig) -> None:
    if not c.choice("ssl.name", s.name, SSL_NAMES):
        return
    c.number("ssl.weight", s.weight, 0)
    c.number("ssl.lang_weight", s.lang_weight, 0)
    if s.name == "none":
        return
    if c.choice("ssl.family", s.family, SSL_FAMILIES) and s.family == "simsiam":
        if s.predictor_hidden is None:
            c.errors.append("ssl.predictor_hidden is required by the simsiam family")
        else:
            c.number("ssl.predictor_hidden", s.predictor_hidden, 1)
    if s.family == "simclr":
        if s.temperature is None:
            c.errors.append(f"ssl.temperature is required by ssl {s.name}")
        else:
            c.number("ssl.temperature", s.temperature, 0, low_open=True)
    weights = {"lang": s.lang_weight, "vision": s.weight}
    for branch in ("lang", "vision"):
        node = s[branch]
        if node is None:
            if isinstance(weights[branch], (int, float)) and weights[branch] != 0:
                key = "ssl.lang_weight" if branch == "lang" else "ssl.weight"
                c.errors.append(f"ssl.{branch} is required by ssl {s.name} when {key} is not 0")
            continue
        if node.projector is None:
            if s.family == "simclr":
                c.errors.append(f"ssl.{branch}.projector is required by the simclr family")
            continue
        c.number(f"ssl.{branch}.projector.hidden", node.projector.hidden, 1)
        c.number(f"ssl.{branch}.projector.out", node.projector.out, 1)
    if s.lang is not None:
        c.number("ssl.lang.mask_prob", s.lang.mask_prob, 0, 1, high_open=True)
    if s.vision is not None:
        c.number("ssl.vision.erase_p", s.vision.erase_p, 0, 1)
        c.interval("ssl.vision.erase_area", s.vision.erase_area, 0, 1)
        c.interval("ssl.vision.erase_ratio", s.vision.erase_ratio, 0, None)


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` if ``cfg`` (a composed ``train`` config) has a wrong type or value.

    Reads nothing but the config (and, for ``resume=<path>``, whether that path exists): call it before any data,
    model or output is touched. The message names every offending key with its full dotted name.
    """
    merged = _typed(cfg)
    c = _Checks()
    try:
        _check_top(c, merged)
        _check_dataset(c, merged.dataset)
        _check_backbone(c, merged.backbone)
        _check_loss(c, merged.loss, merged.ssl.weight if merged.ssl.name != "none" else 0.0)
        _check_method(c, merged.method)
        _check_eval(c, merged.eval)
        _check_ssl(c, merged.ssl)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key} is required but not set (give it on the command line: {err.full_key}=...)") from None
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
        for key in ("weight", "lang_weight"):
            if float(ssl[key]) != 0.0:
                notes.append(
                    f"ssl.{key}={ssl[key]} has no effect with ssl=none (plain {method}): "
                    f"add ssl=simclr (SVLL-ReID) or ssl=simsiam to train with self-supervision"
                )
    elif method == "baseline" and float(ssl.lang_weight) != 0.0:
        notes.append(
            f"ssl.lang_weight={ssl.lang_weight} has no effect with method=baseline (no text side, no stage 1): "
            f"only the vision term (ssl.weight) trains; use method=clipreid for the language term"
        )
    return notes
