"""One training job from a resolved config: data, model, stages, evaluation, tracking, resume.

``reid.train`` (the Hydra app) calls :func:`train`; so do the tests, with a composed config.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from reid.builders import build_dataset, build_model, build_text_side, limit_test_set, resolve_device, seed_everything, to_plain
from reid.data import summary_metrics
from reid.data.formats.folder import write_label_maps
from reid.data.loader import build_test_loader, build_train_loader
from reid.data.transforms import TestTransform, TrainAugment
from reid.engine.checkpoint import Checkpointer, latest_checkpoint, set_rng_state
from reid.engine.evaluator import EvalResult, score
from reid.engine.faults import NonFinitePolicy
from reid.engine.features import extract_features
from reid.engine.loop import StageLoop
from reid.engine.objectives import ImageLossConfig, ImageObjective
from reid.engine.optim import build_optimizer
from reid.engine.precision import Precision
from reid.engine.schedules import build_scheduler
from reid.engine.speed import apply_speed_settings, fused_optimizer_flag
from reid.engine.stage1 import cache_image_features, prompt_step, stage1_batches, text_classifier
from reid.engine.ssl_terms import SSLHead, language_term, vision_term
from reid.engine.stage2 import image_step
from reid.models.ssl_heads import ProjectionMLP, SimSiamPredictor
from reid.tracking import PARENT_RUN_ENV, build_tracker, flatten_config
from reid.tracking.base import Tracker

FINAL_METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")


def git_commit(root: str) -> str:
    """The checkout's commit, or REID_GIT_COMMIT (set in images built without .git), else "unknown"."""
    if os.environ.get("REID_GIT_COMMIT"):
        return os.environ["REID_GIT_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except Exception:  # not a git checkout (e.g. an installed wheel): record that rather than fail
        return "unknown"


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
    """Extracts query/gallery descriptors and scores them with the configured protocol."""

    def __init__(self, cfg: DictConfig, model: torch.nn.Module, query, gallery, device: torch.device, pin: bool):
        e = cfg.eval
        size = tuple(cfg.dataset.size)
        self.cfg, self.model, self.device = e, model, device
        self.query, self.gallery = query, gallery
        self.q_loader = build_test_loader(query, size, e.batch_size, cfg.num_workers, pin_memory=pin)
        self.g_loader = build_test_loader(gallery, size, e.batch_size, cfg.num_workers, pin_memory=pin)
        self.transform = TestTransform(cfg.backbone.pixel_mean, cfg.backbone.pixel_std).to(device)
        self.side_info = bool(cfg.backbone.sie.camera or cfg.backbone.sie.view)
        self.progress = bool(cfg.progress)
        self.precision = Precision(cfg.speed.extract_precision, device)

    def __call__(self) -> EvalResult:
        e = self.cfg
        kw = dict(transform=self.transform, device=self.device, flip=e.flip, use_side_info=self.side_info, progress=self.progress)
        with self.precision.autocast():
            qf, q_pids, q_cams = extract_features(self.model, self.q_loader, desc="query", **kw)
            gf, g_pids, g_cams = extract_features(self.model, self.g_loader, desc="gallery", **kw)
        return score(
            qf, gf, q_pids, g_pids, q_cams, g_cams, normalize=e.normalize, rerank=e.rerank, k1=e.k1, k2=e.k2,
            lambda_value=e.lambda_value, backend=e.backend, max_rank=e.max_rank,
        )


def format_metrics(metrics: dict[str, float], title: str) -> str:
    names = [m for m in FINAL_METRICS if m in metrics]
    head = " | ".join(f"{n:>7}" for n in names)
    row = " | ".join(f"{100 * metrics[n]:6.2f}%" for n in names)
    rule = "-" * len(head)
    return f"{title}\n{head}\n{rule}\n{row}"


def _stage_epochs(cfg: DictConfig, configured: int) -> int:
    return int(cfg.limits.epochs) if cfg.limits.epochs else int(configured)


def train(cfg: DictConfig) -> float:
    """Run one job; returns the final mAP (what a sweeper maximises)."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    resume_from = find_resume_checkpoint(cfg.resume, run_dir)
    resume_state = Checkpointer.load(resume_from) if resume_from else None

    tracker = build_tracker(cfg.logger.kind, **{k: v for k, v in to_plain(cfg.logger).items() if k in ("tracking_uri", "experiment_name")})
    tags = {
        "git_commit": git_commit(cfg.paths.root_dir),
        "dataset": cfg.dataset.name,
        "backbone": cfg.backbone.name,
        "method": cfg.method.name,
        "ssl": cfg.ssl.name,
        "run_dir": str(run_dir),
    }
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
        final = _train(cfg, device, run_dir, tracker, run_id, resume_from, resume_state)
        status = "FINISHED"
        return final
    except KeyboardInterrupt:
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
    proj = ProjectionMLP(in_dim, int(branch.projector.hidden), int(branch.projector.out), svll_init=svll_init)
    predictor = None
    if ssl.family == "simsiam":
        predictor = SimSiamPredictor(int(branch.projector.out), int(ssl.predictor_hidden))
    return SSLHead(ssl.family, proj, float(ssl.temperature), predictor)


def _optimizer_and_scheduler(stage_cfg: DictConfig, named, epochs: int, fused: bool | None = None):
    o = stage_cfg.optimizer
    optimizer = build_optimizer(
        named, o.name, o.lr, o.weight_decay, o.bias_lr_factor, o.weight_decay_bias, tuple(o.betas), fused=fused
    )
    params = {k: v for k, v in to_plain(stage_cfg.scheduler).items() if k != "name"}
    return optimizer, build_scheduler(optimizer, stage_cfg.scheduler.name, epochs, **params)


def _train(cfg, device, run_dir, tracker: Tracker, run_id, resume_from, resume_state) -> float:
    started = time.perf_counter()
    ds = build_dataset(cfg)  # the registry logs the summary table
    if "label_maps" in ds.meta:  # a user's own data: keep the string <-> integer label maps with the run
        tracker.log_artifact(write_label_maps(ds, run_dir / "label_maps.json"))
    tracker.log_metrics({k: float(v) for k, v in summary_metrics(ds).items()})
    test = limit_test_set(ds, int(cfg.limits.eval_images))
    num_classes = ds.num_train_pids
    model, clip = build_model(cfg, num_classes, ds.num_cams, ds.num_views)
    system = torch.nn.ModuleDict({"image": model})
    uses_text = cfg.method.name == "clipreid"
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
    sp = cfg.speed
    apply_speed_settings(model, bool(sp.compile), str(sp.compile_mode), bool(sp.channels_last))
    pin = device.type == "cuda" if cfg.pin_memory == "auto" else bool(cfg.pin_memory)
    evaluator = Evaluator(cfg, model, test.query, test.gallery, device, pin)
    checkpointer = Checkpointer(run_dir / "checkpoints", cfg.checkpoint.keep_last)
    common = dict(
        tracker=tracker, checkpointer=checkpointer, checkpoint_period=int(cfg.checkpoint.period),
        grad_clip=float(cfg.grad_clip), max_steps_per_epoch=int(cfg.limits.steps_per_epoch), progress=bool(cfg.progress),
    )
    stages = list(cfg.method.get("stages") or (["stage1", "stage2"] if uses_text else ["stage2"]))
    resumed_stage = resume_state["stage"] if resume_state is not None else None
    if resume_state is not None:
        print(f"[resume] from {resume_from} (stage {resumed_stage}, epoch {resume_state['epoch']})", flush=True)
        system.load_state_dict(resume_state["system"])
    elif cfg.get("init_from"):
        init = Checkpointer.load(Path(cfg.init_from))
        system.load_state_dict(init["system"])
        print(f"[init] weights from {cfg.init_from} (stage {init['stage']}, epoch {init['epoch']})", flush=True)
    if resume_state is None and cfg.eval.at_start:
        untrained = evaluator()
        tracker.log_metrics({f"untrained/{k}": v for k, v in untrained.metrics.items()})
        print(format_metrics(untrained.metrics, "untrained model"), flush=True)

    text_weights = None
    if "stage1" in stages and resumed_stage != "stage2":
        _run_stage1(cfg, device, system, ds.train, pin, common, resume_state if resumed_stage == "stage1" else None, run_id)
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
    loader = build_train_loader(
        ds.train, tuple(cfg.dataset.size), s2.batch_size, s2.num_instances, cfg.num_workers, seed=int(cfg.seed),
        pin_memory=pin,
    )
    sampler = loader.sampler
    for p in model.parameters():
        p.requires_grad_(True)
    for head in (model.head, model.head_proj):
        head.bn.bias.requires_grad_(False)
    trainable = list(model.named_parameters())
    extra_terms = None
    if use_vis_ssl:
        v = ssl.vision
        ssl_augment = TrainAugment(
            cfg.backbone.pixel_mean, cfg.backbone.pixel_std, flip_p=a.flip_p, pad=a.pad, erase_p=v.erase_p,
            erase_area=tuple(v.erase_area), erase_ratio=tuple(v.erase_ratio),
        ).to(device)
        extra_terms = vision_term(model.encoder, ssl_augment, system["ssl_image"], float(ssl.weight), device)
        trainable += [(f"ssl_image.{n}", p) for n, p in system["ssl_image"].named_parameters()]
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

    def batches(epoch: int, begin: int):
        sampler.set_epoch(epoch)
        sampler.start_batch = begin  # mid-epoch resume: the epoch plan is a pure function of (seed, epoch)
        return iter(loader)

    last_eval: dict[str, Any] = {}

    def eval_fn(epoch: int) -> dict[str, float]:
        result = evaluator()
        last_eval["result"] = result
        tracker.log_metrics(result.metrics, step=epoch)
        print(format_metrics(result.metrics, f"evaluation after stage2 epoch {epoch}"), flush=True)
        return result.metrics

    loop = StageLoop(
        name="stage2", epochs=epochs, model=system, params=[p for _, p in trainable if p.requires_grad],
        optimizer=optimizer, scheduler=scheduler, batches=batches, steps_per_epoch=len(loader),
        step=image_step(model, augment, objective, device, side_info, extra_terms), precision=precision, nonfinite=nonfinite,
        state=lambda: {"mlflow_run_id": run_id, "text_classifier": text_weights},
        eval_fn=eval_fn, eval_period=int(s2.eval_period), **common,
    )
    metrics = loop.run(start_epoch, start_batch)
    if "result" not in last_eval:  # resumed after the last epoch's checkpoint: evaluate now
        metrics = eval_fn(epochs)
    result: EvalResult = last_eval["result"]
    tracker.log_metrics({k: metrics[k] for k in FINAL_METRICS if k in metrics})
    tracker.log_metrics({"train_time_s": time.perf_counter() - started})
    if cfg.eval.plots:
        _log_plots(cfg, tracker, result, test, run_dir)
    print(format_metrics(metrics, f"final ({cfg.method.name} on {cfg.dataset.name})"), flush=True)
    return float(metrics["mAP"])


def _run_stage1(cfg, device, system, records, pin, common, resume_state, run_id) -> None:
    """Prompt learning: only the prompt tokens train; image and text encoders are frozen."""
    s1 = cfg.method.stage1
    model: Any = system["image"]
    for p in system.parameters():
        p.requires_grad_(False)
    system["prompt"].cls_ctx.requires_grad_(True)
    transform = TestTransform(cfg.backbone.pixel_mean, cfg.backbone.pixel_std).to(device)
    loader = build_test_loader(records, tuple(cfg.dataset.size), int(s1.feature_batch_size), cfg.num_workers, pin_memory=pin)
    model.eval()
    with Precision(cfg.speed.extract_precision, device).autocast():
        feats, labels = cache_image_features(model.encode_projected, loader, transform, device, progress=bool(cfg.progress))
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
        nonfinite=nonfinite, state=lambda: {"mlflow_run_id": run_id}, **common,
    )
    loop.run(start_epoch, start_batch)
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
