"""The training config's schema: each key's type and rule in one declaration, in Hydra's ConfigStore.

The yaml groups of conf/ hold the values; a field here says what type a key the code reads has (``MISSING``: the
composed config must give it) and, through :func:`rule`, which values it accepts. Choices are the code's registries,
looked up when checked. Keys not listed pass through, so a group that gains a key needs no change here; the rules that
relate several keys are in reid.config.validate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

SCHEMA_NAME = "reid_train_schema"


def rule(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False,
         choices: Callable[[], Any] | None = None, default: Any = MISSING, each: bool = False, n: int = 0) -> Any:
    """A field with a value rule: a number in [low, high] (open ends as flagged), or one of ``choices()``;
    ``each``: the rule applies to every element of a list, which must have ``n`` elements when ``n`` is given."""
    meta = {"low": low, "high": high, "low_open": low_open, "high_open": high_open, "choices": choices, "each": each,
            "n": n}
    return field(default=default, metadata=meta) if not isinstance(default, list) else field(
        default_factory=lambda: list(default), metadata=meta)


def _registry(module: str, name: str) -> Callable[[], Any]:
    def choices() -> Any:
        import importlib

        found = getattr(importlib.import_module(module), name)
        return found() if callable(found) else found
    return choices


PRECISIONS = _registry("reid.engine.precision", "PRECISIONS")


@dataclass
class Speed:
    compile: bool = False
    compile_mode: str = rule(choices=_registry("reid.engine.speed", "COMPILE_MODES"), default="default")
    channels_last: bool = False
    fused_optimizer: Any = "auto"  # auto | bool
    extract_precision: str = rule(choices=PRECISIONS, default="fp32")


@dataclass
class Augment:
    flip_p: float = rule(0, 1)
    pad: int = rule(0)
    erase_p: float = rule(0, 1)
    erase_area: List[float] = MISSING
    erase_ratio: List[float] = MISSING


@dataclass
class Checkpoint:
    keep_last: int = rule(1)
    period: int = rule(1)


@dataclass
class NonFinite:
    action: str = rule(choices=_registry("reid.engine.faults", "NONFINITE_ACTIONS"))
    max_skips: int = rule(0)


@dataclass
class Limits:
    epochs: Optional[int] = rule(0, default=None)
    steps_per_epoch: int = rule(0, default=0)
    eval_images: int = rule(0, default=0)
    pretrain_steps: int = rule(0, default=0)


@dataclass
class Dataset:
    name: str = rule(choices=_registry("reid.data.registry", "registered_datasets"))
    root: str = MISSING
    kind: str = MISSING
    size: List[int] = rule(1, each=True, n=2)
    options: Optional[Dict[str, Any]] = None


@dataclass
class Sie:
    camera: bool = False
    view: bool = False
    coefficient: float = rule(0, default=3.0)


@dataclass
class Backbone:
    name: str = MISSING
    arch: str = rule(choices=_registry("reid.build.system", "ARCHITECTURES"))
    pretrained: Optional[str] = None
    config: Any = None
    attn_implementation: str = rule(
        choices=_registry("reid.models.clip_loader", "ATTN_IMPLEMENTATIONS"), default="sdpa"
    )
    stride: Optional[int] = rule(0, low_open=True, default=None)  # vit: patch stride (12 = overlapping patches)
    mid_depth: Optional[int] = rule(1, default=None)  # vit: the block whose class token is f_mid
    last_stride: Optional[int] = rule(choices=lambda: (1, 2), default=None)  # rn50: stride of layer4
    sie: Sie = field(default_factory=Sie)
    pixel_mean: List[float] = rule(each=True, n=3)
    pixel_std: List[float] = rule(0, low_open=True, each=True, n=3)
    classifier_std: float = rule(0, low_open=True)
    neck_feat: str = rule(choices=_registry("reid.models.reid_model", "NECK_FEATS"), default="before")
    pretrain: Any = None


@dataclass
class Loss:
    id_weight: float = rule(0)
    triplet_weight: float = rule(0)
    i2t_weight: float = rule(0, default=0.0)
    label_smoothing: float = rule(0, 1, high_open=True)
    triplet_margin: float = rule()  # <= 0 selects the soft-margin triplet
    triplet_on: List[str] = rule(choices=_registry("reid.losses.triplet", "TAPS"), each=True)


@dataclass
class Optimizer:
    name: str = rule(choices=_registry("reid.engine.optim", "OPTIMIZERS"))
    lr: float = rule(0, low_open=True)
    weight_decay: float = rule(0)
    weight_decay_bias: float = rule(0)
    bias_lr_factor: float = rule(0, low_open=True)
    betas: List[float] = rule(0, 1, high_open=True, each=True, n=2)


@dataclass
class Scheduler:
    name: str = rule(choices=_registry("reid.engine.schedules", "SCHEDULES"))
    warmup_epochs: Optional[int] = rule(0, default=None)
    warmup_factor: Optional[float] = rule(0, 1, low_open=True, default=None)
    milestones: Optional[List[int]] = None
    gamma: Optional[float] = rule(0, low_open=True, default=None)
    warmup_lr_init: Optional[float] = rule(0, default=None)
    lr_min: Optional[float] = rule(0, default=None)


@dataclass
class Stage:
    epochs: int = rule(1)
    batch_size: int = rule(1)
    optimizer: Optimizer = field(default_factory=Optimizer)
    scheduler: Scheduler = field(default_factory=Scheduler)
    feature_batch_size: Optional[int] = rule(1, default=None)  # prompt stages
    num_instances: Optional[int] = None  # image stages (checked with batch_size)
    eval_period: Optional[int] = rule(0, default=None)  # image stages


@dataclass
class Prompt:
    template: str = MISSING
    n_ctx: int = rule(1)
    init_std: float = rule(0, low_open=True)
    truncate_after_eot: bool = True


@dataclass
class Method:
    name: str = rule(choices=_registry("reid.methods", "registered_methods"))
    prompt: Optional[Prompt] = None
    stage1: Optional[Stage] = None
    stage2: Optional[Stage] = None
    stages: Optional[List[str]] = None


@dataclass
class Eval:
    normalize: bool = MISSING
    rerank: bool = MISSING
    k1: int = rule(1)
    k2: int = rule(1)
    lambda_value: float = rule(0, 1)
    backend: str = rule(choices=_registry("reid.evaluation.knn", "BACKENDS"))
    rerank_dtype: str = rule(choices=_registry("reid.evaluation.rerank", "OUTPUT_DTYPES"), default="float64")
    flip: bool = False
    batch_size: int = rule(1)
    max_rank: int = rule(1)
    at_start: bool = False
    plots: bool = True
    ranked_list_queries: int = rule(0, default=8)
    val_period: int = rule(1, default=1)
    diagnostics: bool = False
    select_best: Optional[str] = None


@dataclass
class Projector:
    hidden: int = rule(1)
    out: int = rule(1)


@dataclass
class SslLang:
    mask_prob: float = rule(0, 1, high_open=True)
    projector: Optional[Projector] = field(default_factory=Projector)
    train_projector: bool = False


@dataclass
class SslVision:
    erase_p: float = rule(0, 1)
    erase_area: List[float] = MISSING
    erase_ratio: List[float] = MISSING
    projector: Optional[Projector] = field(default_factory=Projector)  # null: SimSiam on the raw feature
    svll_init: bool = True


@dataclass
class Ssl:
    name: str = MISSING
    weight: float = rule(0, default=0.0)
    lang_weight: float = rule(0, default=0.0)
    family: Optional[str] = rule(choices=_registry("reid.engine.ssl_terms", "SSL_FAMILIES"), default=None)
    temperature: Optional[float] = rule(0, low_open=True, default=None)
    lang: Optional[SslLang] = None
    vision: Optional[SslVision] = None
    predictor_hidden: Optional[int] = rule(1, default=None)
    detach: bool = False
    mask_same_identity: bool = False


@dataclass
class Train:
    """The sections of ``conf/train.yaml`` that training reads; other keys (paths, logger, ...) pass through."""

    seed: int = rule(0, 2**32 - 1)  # numpy's seed range
    objective: str = "mAP"
    deterministic: bool = False
    device: str = "auto"
    precision: str = rule(choices=PRECISIONS, default="fp32")
    num_workers: int = rule(0)
    pin_memory: Any = "auto"  # "auto" | bool
    progress: bool = True
    traceback: bool = False  # a user error prints one line; true (debug=true) prints the full traceback
    speed: Speed = field(default_factory=Speed)
    augment: Augment = field(default_factory=Augment)
    resume: Any = "auto"  # auto | true | false | <checkpoint file or run folder>
    init_from: Optional[str] = None  # a run folder or checkpoint to start from (fine-tuning)
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    nonfinite: NonFinite = field(default_factory=NonFinite)
    grad_clip: float = rule(0, default=0.0)
    limits: Limits = field(default_factory=Limits)
    dataset: Dataset = field(default_factory=Dataset)
    backbone: Backbone = field(default_factory=Backbone)
    loss: Loss = field(default_factory=Loss)
    method: Method = field(default_factory=Method)
    eval: Eval = field(default_factory=Eval)
    ssl: Ssl = field(default_factory=Ssl)


ConfigStore.instance().store(name=SCHEMA_NAME, node=Train)
