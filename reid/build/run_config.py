"""A run folder's composed config, read back with this machine's paths (for load_run, init_from, evaluation)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = Path(".hydra") / "config.yaml"
HYDRA_FILE = Path(".hydra") / "hydra.yaml"
_HYDRA_REF = re.compile(r"\$\{hydra:([^}]*)\}")


class RunLoadError(RuntimeError):
    """A run was found but cannot be used: unknown MLflow id, config that does not resolve, mismatched weights."""


def _substitute_hydra_refs(node: Any, hydra_cfg: DictConfig | None, source: Path) -> Any:
    """Replace ``${hydra:key}`` in a raw (unresolved) container with the run's own Hydra values.

    The ``hydra`` resolver would read the *current* process's Hydra state (an
    evaluate job's, or none), which is the wrong run; the run folder keeps its own
    in ``.hydra/hydra.yaml``.
    """
    if isinstance(node, dict):
        return {k: _substitute_hydra_refs(v, hydra_cfg, source) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_hydra_refs(v, hydra_cfg, source) for v in node]
    if not isinstance(node, str) or "${hydra:" not in node:
        return node

    def lookup(key: str) -> Any:
        if hydra_cfg is None:
            raise RunLoadError(f"{source} uses ${{hydra:{key}}} but {source.parent / HYDRA_FILE.name} is missing")
        value = OmegaConf.select(hydra_cfg, f"hydra.{key}", default=None, throw_on_resolution_failure=False)
        if value is None:
            raise RunLoadError(
                f"{source} uses ${{hydra:{key}}}, which {source.parent / HYDRA_FILE.name} does not define"
            )
        return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value

    whole = _HYDRA_REF.fullmatch(node)
    if whole:
        return lookup(whole.group(1).strip())
    return _HYDRA_REF.sub(lambda m: str(lookup(m.group(1).strip())), node)


def load_run_config(run_dir: str | Path, root_dir: str | Path = PROJECT_ROOT) -> DictConfig:
    """The run's composed config with ``paths.root_dir``/``paths.output_dir`` pointing at this machine's folders.

    Interpolations are kept (resolved on access) except ``${hydra:...}``, which is
    replaced by the run's recorded value; the sections inference needs are
    checked to resolve, so a broken config fails here naming the file.
    """
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no Hydra config, so {run_dir} is not a training run folder (made by python -m reid.train)"
        )
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if not isinstance(raw, dict):
        raise RunLoadError(f"{path}: expected a mapping at the top level")
    raw.setdefault("paths", {})
    raw["paths"]["root_dir"] = str(Path(root_dir).resolve())
    raw["paths"]["output_dir"] = str(run_dir.resolve())
    hydra_path = run_dir / HYDRA_FILE
    hydra_cfg = OmegaConf.load(hydra_path) if hydra_path.is_file() else None
    cfg = OmegaConf.create(_substitute_hydra_refs(raw, hydra_cfg, path))
    assert isinstance(cfg, DictConfig)
    for section in ("dataset", "backbone", "method", "eval"):
        if section not in cfg:
            raise RunLoadError(f"{path}: no '{section}' section; not a reid.train config")
        try:
            OmegaConf.to_container(cfg[section], resolve=True)
        except OmegaConfBaseException as err:
            raise RunLoadError(f"{path}: cannot resolve '{section}': {err}") from None
    return cfg
