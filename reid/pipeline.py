"""One training job from a resolved config: data, model, stages, evaluation, tracking, resume.

``reid.train`` (the Hydra app) calls :func:`train`; so do the tests, with a composed config.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel

from reid.builders import (
    build_dataset, build_model, build_text_side, limit_test_set, seed_everything, to_plain, check_init_backbone,
)
from reid.config_schema import ineffective_settings, validate_config
from reid.data import summary_metrics
from reid.data.formats.folder import write_label_maps
from reid.data.loader import build_test_loader, build_train_loader
from reid.data.transforms import TestTransform, TrainAugment
from reid.engine.checkpoint import Checkpointer, latest_checkpoint, rng_state, set_rng_state
from reid.engine.distributed import DistContext, broadcast_module_state, cleanup, gather_features, init_distributed, shard
from reid.engine.evaluator import EvalResult, score
from reid.engine.faults import NonFinitePolicy, Preempted
from reid.engine.init_weights import covers_pretrained, load_initial_weights, read_source
from reid.engine.features import extract_features
from reid.engine.loop import StageLoop
from reid.engine.objectives import ImageLossConfig, ImageObjective
from reid.engine.optim import build_optimizer
from reid.engine.precision import Precision
from reid.engine.schedules import build_scheduler
from reid.engine.speed import apply_speed_settings, fused_optimizer_flag
from reid.engine.stage1 import cache_image_features, prompt_step, stage1_batches, text_classifier
from reid.engine.ssl_terms import SSLHead, language_term
from reid.engine.stage2 import Stage2Net, stage2_step
from reid.models.ssl_heads import ProjectionMLP, SimSiamPredictor
from reid.tracking import PARENT_RUN_ENV, build_tracker, flatten_config
from reid.tracking.base import NullTracker, Tracker
from reid.tracking.run_info import git_commit

FINAL_METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")


def find_resume_checkpoint(resume: Any, run_dir: Path) -> Path | None:
    """Resolve the ``resume`` setting to a checkpoint file (or None to start fresh)."""
    if resume in (False, None, "false", "never"):
        return None
    if resume in (True, "auto", "true"):
        found = latest_checkpoint(run_dir / "checkpoints")
        if resume in (True, "true") and found is None:
            raise FileNotFoundError(f"resume=true but {run_dir / 'checkpoints'} holds no checkpoint")
        return found
    path = Path(str(resume)).expanduser()
    if path.is_dir():
        found = latest_checkpoint(path / "checkpoints") or latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"resume={path}: no ckpt_*.pt in {path} or {path / 'checkpoints'}")
        return found
    if not path.is_file():
        raise FileNotFoundError(f"resume={path}: no such checkpoint file or run folder")
    return path


class Evaluator:
    """Extracts query/gallery descriptors and scores them with the configured protocol.

    Under DDP (``dist`` with world size R > 1) rank r extracts ``query[r::R]`` and
    ``gallery[r::R]`` after taking rank 0's weights and buffers (BatchNorm running
    statistics differ per rank after training steps), the shards are all-gathered
    back into the full, ordered arrays, rank 0 scores them and every rank returns
    rank 0's metrics (and CMC; ``distmat`` is rank 0's only, empty elsewhere).
    """

    def __init__(
        self, cfg: DictConfig, model: torch.nn.Module, query, gallery, device: torch.device, pin: bool,
        dist: DistContext | None = None,
    ):
        e = cfg.eval
        size = tuple(cfg.dataset.size)
        self.cfg, self.model, self.device = e, model, device
        self.dist = dist if dist is not None else DistContext(device=device)
        self.query, self.gallery = query, gallery
        q_local, self.q_index = shard(query, self.dist)
        g_local, self.g_index = shard(gallery, self.dist)
        # A rank whose shard is empty (fewer images than ranks) extracts nothing but still joins the gather.
        self.q_loader = build_test_loader(q_local, size, e.batch_size, cfg.num_workers, pin_memory=pin) if q_local else None
        self.g_loader = build_test_loader(g_local, size, e.batch_size, cfg.num_workers, pin_memory=pin) if g_local else None
        self.transform = TestTransform(cfg.backbone.pixel_mean, cfg.backbone.pixel_std).to(device)
        self.side_info = bool(cfg.backbone.sie.camera or cfg.backbone.sie.view)
        self.progress = bool(cfg.progress) and self.dist.is_main
        self.precision = Precision(cfg.speed.extract_precision, device)

    def _extract(self, loader, index: np.ndarray, desc: str) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        e = self.cfg
        if loader is None:
            empty = np.zeros(0, dtype=np.int64)
            feats, pids, cams = torch.zeros(0, int(self.model.descriptor_dim)), empty, empty
        else:
            with self.precision.autocast():
                feats, pids, cams = extract_features(
                    self.model, loader, transform=self.transform, device=self.device, flip=e.flip,
                    use_side_info=self.side_info, desc=desc, progress=self.progress,
                )
        if not self.dist.distributed:
            return feats, pids, cams
        return gather_features(feats, pids, cams, index)

    def __call__(self) -> EvalResult:
        e = self.cfg
        if self.dist.distributed:
            broadcast_module_state(self.model)
        qf, q_pids, q_cams = self._extract(self.q_loader, self.q_index, "query")
        gf, g_pids, g_cams = self._extract(self.g_loader, self.g_index, "gallery")
        result = None
        if self.dist.is_main:
            result = score(
                qf, gf, q_pids, g_pids, q_cams, g_cams, normalize=e.normalize, rerank=e.rerank, k1=e.k1, k2=e.k2,
                lambda_value=e.lambda_value, backend=e.backend, max_rank=e.max_rank,
            )
        if not self.dist.distributed:
            return result
        metrics, cmc = self.dist.broadcast_object((result.metrics, result.cmc) if result is not None else None)
        return result if result is not None else EvalResult(metrics=metrics, cmc=cmc, distmat=np.zeros((0, 0), np.float32))


def format_metrics(metrics: dict[str, float], title: str) -> str:
    names = [m for m in FINAL_METRICS if m in metrics]
    head = " | ".join(f"{n:>7}" for n in names)
    row = " | ".join(f"{100 * metrics[n]:6.2f}%" for n in names)
    rule = "-" * len(head)
    return f"{title}\n{head}\n{rule}\n{row}"


def _stage_epochs(cfg: DictConfig, configured: int) -> int:
    return int(cfg.limits.epochs) if cfg.limits.epochs else int(configured)


def _resume_checkpoint(resume: Any, run_dir: Path, dist: DistContext) -> Path | None:
    """Rank 0 resolves ``resume`` and every rank gets its answer (the same file, or the same error)."""
    found, error = None, None
    if dist.is_main:
        try:
            found = find_resume_checkpoint(resume, run_dir)
        except (FileNotFoundError, OSError) as err:
            error = err
    found, error = dist.broadcast_object((found, error))
    if error is not None:
        raise error
    return found


def train(cfg: DictConfig) -> float:
    """Run one job; returns the final mAP (what a sweeper maximises).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank runs this and returns the same mAP;
    see docs/distributed.md for what each rank does.
    """
    validate_config(cfg)  # types and values, before any folder, data or tracker is touched (raises ConfigError)
    check_init_backbone(cfg)  # init_from=<run>: its weights fit only its own architecture
    dist = init_distributed(str(cfg.device))
    final = _job(cfg, dist)
    # Only after success: on an error the process exits with the group (destroying it while other ranks still
    # wait in a collective can hang, and torchrun stops the other ranks when one fails).
    cleanup(dist)
    return final


def _job(cfg: DictConfig, dist: DistContext) -> float:
    # Every rank composes its own Hydra run folder (${now:} may differ by a second); all use rank 0's.
    run_dir = Path(dist.broadcast_object(str(cfg.paths.output_dir)))
    run_dir.mkdir(parents=True, exist_ok=True)
    device = dist.device
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    resume_from = _resume_checkpoint(cfg.resume, run_dir, dist)
    resume_state = Checkpointer.load(resume_from) if resume_from else None  # every rank reads the same file

    if dist.is_main:  # one MLflow run per job: rank 0 logs, the other ranks track nothing
        tracker = build_tracker(cfg.logger.kind, **{k: v for k, v in to_plain(cfg.logger).items() if k in ("tracking_uri", "experiment_name")})
    else:
        tracker = NullTracker()
    tags = {
        "git_commit": git_commit(cfg.paths.root_dir),
        "dataset": cfg.dataset.name,
        "backbone": cfg.backbone.name,
        "method": cfg.method.name,
        "ssl": cfg.ssl.name,
        "run_dir": str(run_dir),
    }
    if dist.distributed:
        tags["world_size"] = str(dist.world_size)
    notes = ineffective_settings(cfg)
    for note in notes if dist.is_main else ():
        print(f"WARNING: {note}", flush=True)
    if notes:  # on the run too, where a sweep's results are compared
        tags["config_warnings"] = " | ".join(notes)
    parent = os.environ.get(PARENT_RUN_ENV)
    run_id = tracker.start(
        cfg.logger.get("run_name") or f"{cfg.method.name}-{cfg.dataset.name}-{cfg.backbone.name}",
        tags,
        run_id=(resume_state or {}).get("mlflow_run_id"),
        parent_run_id=parent,
    )
    status = "FAILED"
    try:
        tracker.log_params(flatten_config(to_plain(cfg)))
        tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/resolved.yaml")
        final = _train(cfg, device, run_dir, tracker, run_id, resume_from, resume_state, dist)
        status = "FINISHED"
        return final
    except (KeyboardInterrupt, Preempted):
        status = "KILLED"
        raise
    finally:
        tracker.end(status)


def _resume_into(loop_objects: dict[str, Any], state: dict[str, Any]) -> tuple[int, int]:
    """Load a stage's checkpoint into its objects; returns (start_epoch, start_batch) for StageLoop.run."""
    loop_objects["optimizer"].load_state_dict(state["optimizer"])
    loop_objects["scheduler"].load_state_dict(state["scheduler"])
    loop_objects["precision"].scaler.load_state_dict(state["scaler"])
    loop_objects["nonfinite"].skipped = int(state.get("nonfinite_skipped", 0))
    set_rng_state(state["rng"])
    if state["complete"]:
        return int(state["epoch"]), 0
    return int(state["epoch"]) - 1, int(state["batch"])


def _ssl_head(ssl: DictConfig, branch: DictConfig, in_dim: int, svll_init: bool) -> SSLHead:
    proj, out_dim = None, in_dim
    if branch.get("projector") is not None:
        out_dim = int(branch.projector.out)
        proj = ProjectionMLP(in_dim, int(branch.projector.hidden), out_dim, svll_init=svll_init)
    predictor = None
    if ssl.family == "simsiam":
        predictor = SimSiamPredictor(out_dim, int(ssl.predictor_hidden))
    temperature = float(ssl.temperature) if ssl.get("temperature") is not None else None
    return SSLHead(ssl.family, proj, temperature, predictor)


def _optimizer_and_scheduler(stage_cfg: DictConfig, named, epochs: int, fused: bool | None = None):
    o = stage_cfg.optimizer
    optimizer = build_optimizer(
        named, o.name, o.lr, o.weight_decay, o.bias_lr_factor, o.weight_decay_bias, tuple(o.betas), fused=fused
    )
    params = {k: v for k, v in to_plain(stage_cfg.scheduler).items() if k != "name"}
    return optimizer, build_scheduler(optimizer, stage_cfg.scheduler.name, epochs, **params)


def _say(dist: DistContext, text: str) -> None:
    """Print on rank 0 only (every rank runs the same job)."""
    if dist.is_main:
        print(text, flush=True)


def _train(cfg, device, run_dir, tracker: Tracker, run_id, resume_from, resume_state, dist: DistContext) -> float:
    started = time.perf_counter()
    with dist.main_first():  # rank 0 renders the synthetic world (once) before the other ranks read it
        ds = build_dataset(cfg)  # the registry logs the summary table
    if "label_maps" in ds.meta and dist.is_main:  # a user's own data: keep the string <-> integer label maps with the run
        tracker.log_artifact(write_label_maps(ds, run_dir / "label_maps.json"))
    tracker.log_metrics({k: float(v) for k, v in summary_metrics(ds).items()})
    if ds.meta.get("skipped_corrupt"):  # skip_corrupt=true dropped unreadable images: say how many, here and in MLflow
        print(f"[data] skipped {ds.meta['skipped_corrupt']} corrupt image(s)", flush=True)
    tracker.log_metrics({"data.skipped_corrupt": float(ds.meta.get("skipped_corrupt", 0))})
    test = limit_test_set(ds, int(cfg.limits.eval_images))
    num_classes = ds.num_train_pids
    uses_text = cfg.method.name == "clipreid"
    init = read_source(cfg.init_from) if cfg.get("init_from") and resume_state is None else None
    # Every weight comes from init_from when it holds the encoders: build the architecture alone (no CLIP file needed).
    arch_only = init is not None and cfg.backbone.get("config") is not None and covers_pretrained(init[1], uses_text)
    with dist.main_first():  # a self-pretrained backbone (clip_tiny_synthetic) is made once, by rank 0
        model, clip = build_model(cfg, num_classes, ds.num_cams, ds.num_views, architecture_only=arch_only)
    system = torch.nn.ModuleDict({"image": model})
    if uses_text:
        prompt_learner, text_encoder = build_text_side(cfg, clip, num_classes)
        system["prompt"] = prompt_learner
        system["text"] = text_encoder
    ssl = cfg.ssl
    use_lang_ssl = ssl.name != "none" and uses_text and float(ssl.lang_weight) != 0
    use_vis_ssl = ssl.name != "none" and float(ssl.weight) != 0
    if use_lang_ssl:
        system["ssl_text"] = _ssl_head(ssl, ssl.lang, system["text"].text_projection.out_features, svll_init=False)
    if use_vis_ssl:
        system["ssl_image"] = _ssl_head(ssl, ssl.vision, model.encoder.width, svll_init=bool(ssl.vision.svll_init))
    system.to(device)
    # What a checkpoint's weights alone cannot say (the SIE table's camera x view split): load_run reads it.
    model_spec = {"num_classes": num_classes, "num_cams": ds.num_cams, "num_views": ds.num_views}
    sp = cfg.speed
    apply_speed_settings(model, bool(sp.compile), str(sp.compile_mode), bool(sp.channels_last))
    pin = device.type == "cuda" if cfg.pin_memory == "auto" else bool(cfg.pin_memory)
    evaluator = Evaluator(cfg, model, test.query, test.gallery, device, pin, dist)
    # Rank 0 alone writes checkpoints; on resume every rank reads the same file.
    checkpointer = Checkpointer(run_dir / "checkpoints", cfg.checkpoint.keep_last, enabled=dist.is_main)
    common = dict(
        tracker=tracker, checkpointer=checkpointer, checkpoint_period=int(cfg.checkpoint.period),
        grad_clip=float(cfg.grad_clip), max_steps_per_epoch=int(cfg.limits.steps_per_epoch),
        progress=bool(cfg.progress) and dist.is_main, verbose=dist.is_main,
    )
    stages = list(cfg.method.get("stages") or (["stage1", "stage2"] if uses_text else ["stage2"]))
    resumed_stage = resume_state["stage"] if resume_state is not None else None
    if resume_state is not None:
        _say(dist, f"[resume] from {resume_from} (stage {resumed_stage}, epoch {resume_state['epoch']})")
        system.load_state_dict(resume_state["system"])
    elif init is not None:
        for line in load_initial_weights(system, *init).lines():
            _say(dist, line)
    if dist.distributed:  # ranks built their models from the same seed; make the start identical regardless
        broadcast_module_state(system)
    if resume_state is None and cfg.eval.at_start:
        untrained = evaluator()
        tracker.log_metrics({f"untrained/{k}": v for k, v in untrained.metrics.items()})
        _say(dist, format_metrics(untrained.metrics, "untrained model"))

    text_weights = None
    if "stage1" in stages and resumed_stage != "stage2":
        _run_stage1(
            cfg, device, system, ds.train, pin, common, resume_state if resumed_stage == "stage1" else None,
            {"mlflow_run_id": run_id, "model_spec": model_spec}, dist,
        )
    if uses_text:
        for p in list(system["prompt"].parameters()) + list(system["text"].parameters()):
            p.requires_grad_(False)
        text_weights = text_classifier(system["prompt"], system["text"], int(cfg.method.stage2.batch_size), device)

    # ---- stage 2: the image encoder (the whole of the baseline) ----
    s2 = cfg.method.stage2
    loss = cfg.loss
    objective = ImageObjective(
        ImageLossConfig(
            id_weight=loss.id_weight, triplet_weight=loss.triplet_weight, i2t_weight=loss.i2t_weight,
            label_smoothing=loss.label_smoothing, triplet_margin=loss.triplet_margin, triplet_on=tuple(loss.triplet_on),
        ),
        text_classifier=text_weights,
    )
    a = cfg.augment
    augment = TrainAugment(
        cfg.backbone.pixel_mean, cfg.backbone.pixel_std, flip_p=a.flip_p, pad=a.pad, erase_p=a.erase_p,
        erase_area=tuple(a.erase_area), erase_ratio=tuple(a.erase_ratio),
    ).to(device)
    # Under DDP each rank loads its own P/R identities of every global P×K batch (batch_size stays global).
    loader = build_train_loader(
        ds.train, tuple(cfg.dataset.size), s2.batch_size, s2.num_instances, cfg.num_workers, seed=int(cfg.seed),
        pin_memory=pin, distributed=(dist.world_size, dist.rank) if dist.distributed else None,
    )
    sampler = loader.sampler
    for p in model.parameters():
        p.requires_grad_(True)
    for head in (model.head, model.head_proj):
        head.bn.bias.requires_grad_(False)
    trainable = list(model.named_parameters())
    ssl_augment = None
    if use_vis_ssl:
        v = ssl.vision
        ssl_augment = TrainAugment(
            cfg.backbone.pixel_mean, cfg.backbone.pixel_std, flip_p=a.flip_p, pad=a.pad, erase_p=v.erase_p,
            erase_area=tuple(v.erase_area), erase_ratio=tuple(v.erase_ratio),
        ).to(device)
        trainable += [(f"ssl_image.{n}", p) for n, p in system["ssl_image"].named_parameters()]
    # One module, one forward per step (main view + SVLL's two SSL views): what DistributedDataParallel wraps.
    net: torch.nn.Module = Stage2Net(model, system["ssl_image"] if use_vis_ssl else None)
    if dist.distributed:
        # Every trainable parameter gets a gradient every step: the SIE table exists only when backbone.sie is on,
        # and then every batch feeds camera/view ids; the classifiers feed the ID loss (even at weight 0); the frozen
        # BNNeck biases and the text side are not trainable here, which DDP skips. So find_unused_parameters=False
        # (no per-step graph search); tests/distributed/test_ddp_units.py checks it for each stage-2 variant.
        # Buffers: DDP's default syncs rank 0's (BatchNorm running statistics) at every forward.
        net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False
        )
    epochs = _stage_epochs(cfg, s2.epochs)
    optimizer, scheduler = _optimizer_and_scheduler(s2, trainable, epochs, fused_optimizer_flag(cfg.speed.fused_optimizer, device))
    precision = Precision(cfg.precision, device)
    nonfinite = NonFinitePolicy(cfg.nonfinite.action, int(cfg.nonfinite.max_skips))
    side_info = bool(cfg.backbone.sie.camera or cfg.backbone.sie.view)
    start_epoch, start_batch = 0, 0
    if resumed_stage == "stage2":
        start_epoch, start_batch = _resume_into(
            dict(optimizer=optimizer, scheduler=scheduler, precision=precision, nonfinite=nonfinite), resume_state
        )
        per_rank = resume_state.get("rng_per_rank")
        if dist.distributed and per_rank is not None and len(per_rank) == dist.world_size:
            set_rng_state(per_rank[dist.rank])  # each rank continues its own augmentation stream
        else:
            dist.decorrelate_rng(int(cfg.seed), start_epoch, start_batch)
    else:
        dist.decorrelate_rng(int(cfg.seed))  # ranks > 0 draw their own augmentations (rank 0 as a single process)

    def extra_state() -> dict[str, Any]:
        state: dict[str, Any] = {"mlflow_run_id": run_id, "text_classifier": text_weights, "model_spec": model_spec}
        if dist.distributed:  # a collective: StageLoop builds the state on every rank, rank 0 writes it
            state["rng_per_rank"] = dist.all_gather_object(rng_state())
        return state

    def batches(epoch: int, begin: int):
        sampler.set_epoch(epoch)
        sampler.start_batch = begin  # mid-epoch resume: the epoch plan is a pure function of (seed, epoch)
        return iter(loader)

    last_eval: dict[str, Any] = {}

    def eval_fn(epoch: int) -> dict[str, float]:
        result = evaluator()
        last_eval["result"] = result
        tracker.log_metrics(result.metrics, step=epoch)
        _say(dist, format_metrics(result.metrics, f"evaluation after stage2 epoch {epoch}"))
        return result.metrics

    loop = StageLoop(
        name="stage2", epochs=epochs, model=system, params=[p for _, p in trainable if p.requires_grad],
        optimizer=optimizer, scheduler=scheduler, batches=batches, steps_per_epoch=len(loader),
        step=stage2_step(net, augment, objective, device, side_info, ssl_augment, float(ssl.weight)),
        precision=precision, nonfinite=nonfinite, state=extra_state,
        eval_fn=eval_fn, eval_period=int(s2.eval_period), dist=dist if dist.distributed else None, **common,
    )
    metrics = loop.run(start_epoch, start_batch)
    if "result" not in last_eval:  # resumed after the last epoch's checkpoint: evaluate now
        metrics = eval_fn(epochs)
    result: EvalResult = last_eval["result"]
    tracker.log_metrics({k: metrics[k] for k in FINAL_METRICS if k in metrics})
    tracker.log_metrics({"train_time_s": time.perf_counter() - started})
    if cfg.eval.plots and dist.is_main:
        _log_plots(cfg, tracker, result, test, run_dir)
    _say(dist, format_metrics(metrics, f"final ({cfg.method.name} on {cfg.dataset.name})"))
    if dist.distributed:
        print(f"[rank {dist.rank}/{dist.world_size}] final mAP={float(metrics['mAP']):.10f}", flush=True)
    return float(metrics["mAP"])


def _cache_stage1_features(cfg, device, model, records, pin, dist: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 1's image features; under DDP each rank encodes ``records[rank::R]`` and the shards are all-gathered."""
    s1 = cfg.method.stage1
    transform = TestTransform(cfg.backbone.pixel_mean, cfg.backbone.pixel_std).to(device)
    local, index = shard(records, dist)
    progress = bool(cfg.progress) and dist.is_main
    if local:
        loader = build_test_loader(local, tuple(cfg.dataset.size), int(s1.feature_batch_size), cfg.num_workers, pin_memory=pin)
        with Precision(cfg.speed.extract_precision, device).autocast():
            feats, labels = cache_image_features(model.encode_projected, loader, transform, device, progress=progress)
    else:
        feats = torch.zeros(0, int(model.encoder.proj_dim), device=device)
        labels = torch.zeros(0, dtype=torch.int64, device=device)
    if not dist.distributed:
        return feats, labels
    pids = labels.cpu().numpy()
    feats, pids, _ = gather_features(feats, pids, pids, index)
    return feats.to(device), torch.as_tensor(pids, device=device)


def _run_stage1(cfg, device, system, records, pin, common, resume_state, extra: dict, dist: DistContext) -> None:
    """Prompt learning: only the prompt tokens train; image and text encoders are frozen.

    Under DDP the feature cache is sharded and all-gathered, then every rank runs the same (cheap) prompt
    training on the same cached features from the same seed, and rank 0's prompts (and language-SSL projector)
    are broadcast at the end, so the text classifier of stage 2 is bit-identical on all ranks.
    """
    s1 = cfg.method.stage1
    model: Any = system["image"]
    for p in system.parameters():
        p.requires_grad_(False)
    system["prompt"].cls_ctx.requires_grad_(True)
    model.eval()
    feats, labels = _cache_stage1_features(cfg, device, model, records, pin, dist)
    epochs = _stage_epochs(cfg, s1.epochs)
    trainable = list(system["prompt"].named_parameters())
    extra_terms = None
    if "ssl_text" in system:
        ssl = cfg.ssl
        extra_terms = language_term(
            system["prompt"], system["text"], system["ssl_text"], float(ssl.lang_weight), float(ssl.lang.mask_prob)
        )
        if ssl.lang.train_projector:
            for p in system["ssl_text"].parameters():
                p.requires_grad_(True)
            trainable += [(f"ssl_text.{n}", p) for n, p in system["ssl_text"].named_parameters()]
    optimizer, scheduler = _optimizer_and_scheduler(s1, trainable, epochs, fused_optimizer_flag(cfg.speed.fused_optimizer, device))
    precision = Precision(cfg.precision, device)
    nonfinite = NonFinitePolicy(cfg.nonfinite.action, int(cfg.nonfinite.max_skips))
    start_epoch, start_batch = 0, 0
    if resume_state is not None:
        start_epoch, start_batch = _resume_into(
            dict(optimizer=optimizer, scheduler=scheduler, precision=precision, nonfinite=nonfinite), resume_state
        )
    steps = -(-len(feats) // int(s1.batch_size))
    loop = StageLoop(
        name="stage1", epochs=epochs, model=system, params=[p for _, p in trainable], optimizer=optimizer,
        scheduler=scheduler, batches=stage1_batches(feats, labels, int(s1.batch_size), int(cfg.seed)),
        steps_per_epoch=steps, step=prompt_step(system["prompt"], system["text"], extra_terms), precision=precision,
        nonfinite=nonfinite, state=lambda: dict(extra), **common,
    )
    loop.run(start_epoch, start_batch)
    if dist.distributed:
        broadcast_module_state(system["prompt"])
        if "ssl_text" in system:
            broadcast_module_state(system["ssl_text"])
    system.train()


def _log_plots(cfg, tracker: Tracker, result: EvalResult, test, run_dir: Path) -> None:
    from reid.evaluation.plots import plot_cmc, ranked_list_figure

    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    cmc_path = plots / "cmc.png"
    plot_cmc(result.cmc, cmc_path)
    tracker.log_artifact(cmc_path, "plots")
    ranked = plots / "ranked_list.png"
    ranked_list_figure(
        [r.path for r in test.query], [r.path for r in test.gallery], result.distmat,
        [r.pid for r in test.query], [r.pid for r in test.gallery],
        [r.camid for r in test.query], [r.camid for r in test.gallery],
        ranked, topk=10, num_queries=int(cfg.eval.ranked_list_queries),
    )
    tracker.log_artifact(ranked, "plots")
