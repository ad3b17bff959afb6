"""Config -> objects: the only code below the entry points that reads the Hydra config tree.

Everything built here takes plain values (docs/architecture.md): ``system`` (models, text side, SSL heads),
``data`` (dataset, augmentations, loaders), ``training`` (objectives from the loss-term registry, optimisers, the
methods' Toolkit), ``evaluation`` (EvalProtocol, Evaluator), ``init_from`` (fine-tuning checks).
"""
from reid.build.common import resolve_device, to_plain, value
from reid.build.data import build_dataset, limit_test_set
from reid.build.evaluation import build_evaluator, eval_protocol
from reid.build.init_from import architecture_overrides, check_init_backbone
from reid.build.system import build_model, build_system, build_text_side
from reid.build.training import build_toolkit, stage_settings

__all__ = [
    "architecture_overrides", "build_dataset", "build_evaluator", "build_model", "build_system", "build_text_side",
    "build_toolkit", "check_init_backbone", "eval_protocol", "limit_test_set", "resolve_device", "stage_settings",
    "to_plain", "value",
]
