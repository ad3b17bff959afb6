"""Training methods as plug-ins: a method is one module here plus one conf/method/<name>.yaml (docs/extending.md)."""
from reid.methods.base import (
    Method,
    Stage,
    StagePlan,
    StageSettings,
    Toolkit,
    method_class,
    register_method,
    registered_methods,
)

__all__ = [
    "Method",
    "Stage",
    "StagePlan",
    "StageSettings",
    "Toolkit",
    "method_class",
    "register_method",
    "registered_methods",
]
