"""A finished training run, ready for inference: its config, its trained model, feature extraction.

``load_run`` accepts what a user has at hand after training: the run folder
(``outputs/<task>/runs/<time>/``), one of its checkpoint files
(``<run>/checkpoints/ckpt_stage2_eNNNN.pt``) or the MLflow run id (looked up
through the run's ``run_dir`` tag). The model is rebuilt from the run's own
``.hydra/config.yaml`` through :func:`reid.build.build_system`, then the
checkpoint's weights are loaded; ``TrainedRun.extract`` encodes images exactly
as the training run's evaluation did (same loader, transform and descriptor).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from reid.build.run_config import RunLoadError, load_run_config
from reid.data.records import ImageRecord

log = logging.getLogger(__name__)

# The project root: the folder that holds conf/ and the reid package (paths.root_dir of a run started there).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = "checkpoints"
MLFLOW_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
# Sub-modules of a run's system that inference rebuilds; anything else in a checkpoint (SSL heads) is ignored.
IMAGE_PREFIX = "image."




def default_tracking_uri(root_dir: str | Path = PROJECT_ROOT) -> str:
    """The store ``logger=mlflow`` writes to by default (conf/logger/mlflow.yaml)."""
    return f"sqlite:///{Path(root_dir).resolve()}/mlflow.db"


@dataclass(frozen=True)
class RunLocation:
    """Where a run lives: its folder, a checkpoint chosen by the caller (if any), its MLflow id (if known)."""

    run_dir: Path
    checkpoint: Path | None = None
    mlflow_run_id: str | None = None


def locate_run(run: str | Path, tracking_uri: str | None = None, root_dir: str | Path = PROJECT_ROOT) -> RunLocation:
    """Resolve a run folder, a checkpoint file (run folder two levels up) or an MLflow run id.

    Raises ``FileNotFoundError`` naming the path when nothing exists there (and the
    text is not an MLflow id), ``RunLoadError`` for an id MLflow does not know.
    """
    text = str(run).strip()
    if not text:
        raise FileNotFoundError("run is empty: give a run folder, a checkpoint file or an MLflow run id")
    path = Path(text).expanduser()
    if path.is_dir():
        return RunLocation(path.resolve())
    if path.is_file():
        ckpt = path.resolve()
        return RunLocation(ckpt.parent.parent, checkpoint=ckpt)
    if MLFLOW_RUN_ID.match(text):
        return _locate_mlflow_run(text, tracking_uri or default_tracking_uri(root_dir))
    raise FileNotFoundError(
        f"run {path}: no such run folder or checkpoint file (nor an MLflow run id, which is 32 hex characters)"
    )


def _locate_mlflow_run(run_id: str, tracking_uri: str) -> RunLocation:
    """The ``run_dir`` tag of an MLflow training run (reid.pipeline.train sets it)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        info = MlflowClient(tracking_uri).get_run(run_id)
    except MlflowException as err:
        raise RunLoadError(f"MLflow run {run_id} not found in {tracking_uri}: {err.message}") from None
    tags = info.data.tags
    if "run_dir" not in tags:
        hint = f" (it evaluates training run {tags['evaluates']})" if "evaluates" in tags else ""
        raise RunLoadError(
            f"MLflow run {run_id} in {tracking_uri} has no run_dir tag: not a training run{hint}"
        )
    run_dir = Path(tags["run_dir"])
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"run folder {run_dir} of MLflow run {run_id} does not exist (moved or on another machine?)"
        )
    return RunLocation(run_dir.resolve(), mlflow_run_id=run_id)


def select_checkpoint(run_dir: str | Path, checkpoint: str | Path | None = None) -> Path:
    """The given checkpoint (a path, or a file name in the run's checkpoints folder), else the newest stage-2 one."""
    from reid.engine.checkpoint import list_checkpoints

    folder = Path(run_dir) / CHECKPOINT_DIR
    if checkpoint is not None:
        given = Path(checkpoint).expanduser()
        candidates = [given] if given.is_absolute() else [given, folder / given]
        for candidate in candidates:
            if candidate.is_file():
                return candidate.resolve()
        raise FileNotFoundError(f"checkpoint {checkpoint}: no such file (looked at {', '.join(map(str, candidates))})")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no checkpoints folder in run {run_dir}")
    found = list_checkpoints(folder)
    stage2 = [p for p in found if p.name.startswith("ckpt_stage2_")]
    if not stage2:
        others = f" (it holds {', '.join(p.name for p in found)}; pass one as the checkpoint)" if found else ""
        raise FileNotFoundError(f"{folder}: no stage-2 checkpoint ckpt_stage2_eNNNN.pt{others}")
    return stage2[-1]


def architecture_config(cfg: DictConfig) -> DictConfig:
    """The run's config with the backbone built from its architecture alone when the config describes it.

    Every weight comes from the checkpoint, so a backbone with an explicit
    ``backbone.config`` is built randomly initialised: no pretrained files are
    needed and a self-pretrained backbone (``backbone.pretrain``) is never
    (re)made. A hub backbone without ``config`` (vit_b16) still loads its
    pretrained folder, which defines its architecture.
    """
    arch = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    assert isinstance(arch, DictConfig)
    backbone = arch.backbone
    if backbone.get("config") is not None:
        backbone.pretrained = None
        if "pretrain" in backbone:
            del backbone["pretrain"]
    return arch


def _side_info_sizes(
    cfg: DictConfig, state: dict[str, torch.Tensor], model_spec: dict[str, int] | None = None
) -> tuple[int, int]:
    """(num_cams, num_views) the run's SIE table was built for: as the checkpoint records them (``model_spec``), else
    read from the table's shape where that is unambiguous, else from the run's dataset (older checkpoints)."""
    sie = cfg.backbone.sie
    if not (sie.camera or sie.view):
        return 1, 1
    if model_spec is not None:
        return int(model_spec["num_cams"]), int(model_spec["num_views"])
    key = f"{IMAGE_PREFIX}encoder.sie.table"
    if key not in state:
        raise RunLoadError(f"the run uses SIE (backbone.sie) but the checkpoint has no {key}")
    rows = int(state[key].shape[0])
    if sie.camera and not sie.view:
        return rows, 1
    if sie.view and not sie.camera:
        return 1, rows
    from reid.build import build_dataset  # camera x view table: the factors come from the run's dataset

    ds = build_dataset(cfg)
    if ds.num_cams * ds.num_views != rows:
        raise RunLoadError(
            f"SIE table has {rows} rows but the run's dataset has {ds.num_cams} cameras x {ds.num_views} views"
        )
    return ds.num_cams, ds.num_views


def build_run_system(
    cfg: DictConfig, state: dict[str, torch.Tensor], model_spec: dict[str, int] | None = None
) -> torch.nn.ModuleDict:
    """Rebuild the run's image model (and CLIP-ReID's text side) with the shapes the checkpoint holds.

    ``model_spec`` (identities, cameras, views) is what checkpoints since the weights importer record; without it
    the sizes are read off the weights (and, for a camera x view SIE table, the run's dataset).
    """
    from reid.build import build_system
    from reid.methods import method_class

    key = f"{IMAGE_PREFIX}head.classifier.weight"
    if key not in state:
        raise RunLoadError(f"the checkpoint has no {key}: not a reid.train checkpoint")
    num_classes = int(state[key].shape[0])
    num_cams, num_views = _side_info_sizes(cfg, state, model_spec)
    arch = architecture_config(cfg)
    uses_text = method_class(str(cfg.method.name)).uses_text
    with torch.random.fork_rng(devices=[]):  # random init is overwritten; keep the caller's RNG stream untouched
        return build_system(arch, num_classes, num_cams, num_views, uses_text=uses_text, ssl=False)


def load_weights(system: torch.nn.ModuleDict, state: dict[str, torch.Tensor], checkpoint: Path) -> list[str]:
    """Load ``state`` non-strictly; every ``image.*`` key must match. Returns the ignored keys' names.

    SSL heads are not rebuilt for inference, so their keys are expected to be left
    over; a missing or unexpected image key means the checkpoint does not belong
    to this config, and extracting with half-loaded weights would be silently wrong.
    """
    try:
        result = system.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches raise even when not strict
        raise RunLoadError(f"checkpoint {checkpoint} does not fit the run's model: {err}") from None
    missing = [k for k in result.missing_keys if k.startswith(IMAGE_PREFIX)]
    unexpected = [k for k in result.unexpected_keys if k.startswith(IMAGE_PREFIX)]
    if missing or unexpected:
        raise RunLoadError(
            f"checkpoint {checkpoint} does not match the run's image model: "
            f"missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )
    other_missing = [k for k in result.missing_keys if not k.startswith(IMAGE_PREFIX)]
    if other_missing:
        log.warning(
            "checkpoint %s lacks %d text-side weights (not used for extraction): %s",
            checkpoint,
            len(other_missing),
            other_missing[:5],
        )
    return list(result.unexpected_keys) + other_missing


def as_records(items: Sequence[ImageRecord | str | Path]) -> tuple[list[ImageRecord], bool]:
    """(records, labelled): image paths become records with pid 0 and camera 0, and are flagged unlabelled."""
    records: list[ImageRecord] = []
    labelled = True
    for item in items:
        if isinstance(item, ImageRecord):
            records.append(item)
        elif isinstance(item, (str, Path)):
            records.append(ImageRecord(str(item), 0, 0, 0))
            labelled = False
        else:
            raise TypeError(f"expected ImageRecord or image path, got {type(item).__name__}")
    return records, labelled


@dataclass
class TrainedRun:
    """A training run's config and trained model on ``device``; ``extract`` encodes images."""

    run_dir: Path
    checkpoint: Path
    config: DictConfig
    system: torch.nn.ModuleDict
    device: torch.device
    mlflow_run_id: str | None = None
    stage: str | None = None
    epoch: int | None = None
    complete: bool = True
    ignored_keys: list[str] = field(default_factory=list)

    @property
    def model(self) -> torch.nn.Module:
        return self.system["image"]

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) the model was built for (the position table is sized for it)."""
        return int(self.config.dataset.size[0]), int(self.config.dataset.size[1])

    @property
    def uses_side_info(self) -> bool:
        """Whether the model adds camera/view embeddings (SIE), so extraction needs true camera ids (asked of it)."""
        return any(self.model.side_info)

    @property
    def protocol(self):
        """The run's own evaluation protocol (reid.evaluation.protocol.EvalProtocol)."""
        from reid.build import eval_protocol

        return eval_protocol(self.config.eval)

    @property
    def dataset_name(self) -> str:
        return str(self.config.dataset.name)

    def describe(self) -> str:
        state = "" if self.complete else ", mid-epoch"
        return f"{self.run_dir} ({self.checkpoint.name}: {self.stage} epoch {self.epoch}{state})"

    def extract(
        self,
        items: Sequence[ImageRecord | str | Path],
        *,
        batch_size: int | None = None,
        flip: bool | None = None,
        side_info: bool | None = None,
        num_workers: int = 0,
        progress: bool = False,
        desc: str = "features",
    ) -> torch.Tensor:
        """(N, D) float32 CPU descriptors of ``items`` (records or image paths), in their order.

        Defaults follow the run's own evaluation (``eval.batch_size``, ``eval.flip``,
        SIE when the model has it), so features equal the ones its evaluation
        computed. Side information is used only for records (plain paths have no
        camera) and only when ``side_info`` is not False. Decoding workers only
        pay off beyond one batch, so a single batch is decoded in this process.
        """
        from reid.data.loader import build_test_loader
        from reid.data.transforms import TestTransform
        from reid.engine.features import extract_features

        records, labelled = as_records(items)
        if not records:
            raise ValueError("nothing to extract: no images given")
        e = self.config.eval
        size = int(batch_size or e.batch_size)
        workers = int(num_workers) if len(records) > size else 0
        use_side = self.uses_side_info and labelled and side_info is not False
        loader = build_test_loader(records, self.input_size, size, workers, pin_memory=self.device.type == "cuda")
        transform = TestTransform(self.config.backbone.pixel_mean, self.config.backbone.pixel_std).to(self.device)
        feats, _, _ = extract_features(
            self.model,
            loader,
            transform,
            self.device,
            flip=bool(e.flip if flip is None else flip),
            use_side_info=use_side,
            desc=desc,
            progress=progress,
        )
        return feats


def load_run(
    run: str | Path,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "auto",
    tracking_uri: str | None = None,
    root_dir: str | Path = PROJECT_ROOT,
) -> TrainedRun:
    """Load a training run for inference.

    Args:
        run: run folder, checkpoint file (its run folder is two levels up) or MLflow run id.
        checkpoint: a checkpoint file, or a file name inside ``<run>/checkpoints``; default the
            newest stage-2 checkpoint (or the file ``run`` names).
        device: "auto", "cpu", "cuda[:N]" or a torch device.
        tracking_uri: MLflow store for run ids; default ``sqlite:///<root_dir>/mlflow.db``.
        root_dir: the project root the run's ``paths.root_dir`` is replaced with.
    """
    from reid.build import resolve_device
    from reid.engine.checkpoint import Checkpointer

    where = locate_run(run, tracking_uri, root_dir)
    if where.checkpoint is not None and checkpoint is not None:
        raise ValueError(f"run={run} is already a checkpoint file; do not also pass checkpoint={checkpoint}")
    cfg = load_run_config(where.run_dir, root_dir)
    ckpt_path = where.checkpoint or select_checkpoint(where.run_dir, checkpoint)
    state = Checkpointer.load(ckpt_path)
    if not isinstance(state, dict) or "system" not in state:
        raise RunLoadError(f"checkpoint {ckpt_path} has no 'system' weights: not a reid.train checkpoint")
    system = build_run_system(cfg, state["system"], state.get("model_spec"))
    ignored = load_weights(system, state["system"], ckpt_path)
    dev = device if isinstance(device, torch.device) else resolve_device(str(device))
    system.to(dev).eval()
    return TrainedRun(
        run_dir=where.run_dir,
        checkpoint=ckpt_path,
        config=cfg,
        system=system,
        device=dev,
        mlflow_run_id=where.mlflow_run_id or state.get("mlflow_run_id"),
        stage=state.get("stage"),
        epoch=state.get("epoch"),
        complete=bool(state.get("complete", True)),
        ignored_keys=ignored,
    )
