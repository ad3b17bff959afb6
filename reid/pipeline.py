"""One training job from a resolved config: the run folder, tracking, resume, DDP and evaluation around the
stages of the configured method (reid.methods), which reid.build assembles and reid.engine.stage_runner runs.

``reid.train`` (the Hydra app) calls :func:`train`; so do the tests, with a composed config.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from reid.build import (
    build_dataset,
    build_evaluator,
    build_system,
    build_toolkit,
    check_init_backbone,
    limit_test_set,
    to_plain,
)
from reid.build.training import check_batches_fit
from reid.config import ineffective_settings, validate_config
from reid.data import summary_metrics
from reid.data.formats.folder import write_label_maps
from reid.engine.checkpoint import Checkpointer, write_json
from reid.engine.determinism import seed_everything
from reid.engine.distributed import DistContext, broadcast_module_state, cleanup, init_distributed
from reid.engine.faults import Preempted
from reid.engine.init_weights import covers_pretrained, load_initial_weights, read_source
from reid.engine.resume import resolve_resume
from reid.engine.run_evaluation import RunEvaluation, camera_diagnostics, log_result_plots
from reid.engine.run_evaluation import format_metrics as _format
from reid.engine.speed import apply_speed_settings
from reid.engine.stage_runner import RunSettings, run_stage
from reid.methods import method_class
from reid.tracking import OPTUNA_TRIAL_ENV, PARENT_RUN_ENV, build_tracker, flatten_config
from reid.tracking.base import NullTracker, Tracker
from reid.tracking.run_info import git_commit
from reid.tracking.run_log import RunLog, where_lines

FINAL_METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")


def format_metrics(metrics: dict[str, float], title: str) -> str:
    return _format(metrics, title, FINAL_METRICS)


def train(cfg: DictConfig) -> float:
    """Run one job; returns the final mAP (what a sweeper maximises).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank runs this and returns the same mAP (docs/distributed.md).
    """
    validate_config(cfg)  # types and values, before any folder, data or tracker is touched (raises ConfigError)
    check_init_backbone(cfg)  # init_from=<run>: its weights fit only its own architecture
    dist = init_distributed(str(cfg.device))
    final = _job(cfg, dist)
    # Only after success: on an error the process exits with the group (destroying it while other ranks still
    # wait in a collective can hang, and torchrun stops the other ranks when one fails).
    cleanup(dist)
    return final


def _say(dist: DistContext, text: str) -> None:
    if dist.is_main:  # every rank runs the same job; rank 0 speaks
        print(text, flush=True)


def _job(cfg: DictConfig, dist: DistContext) -> float:
    # Every rank composes its own Hydra run folder (${now:} may differ by a second); all use rank 0's.
    run_dir = Path(dist.broadcast_object(str(cfg.paths.output_dir)))
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    config = OmegaConf.to_container(cfg, resolve=False)
    # resume=auto may continue an earlier, unfinished run folder of the same config
    resume_from, resume_state, run_dir = resolve_resume(cfg.resume, run_dir, config, dist)
    if resume_from is not None and run_dir != Path(str(cfg.paths.output_dir)):
        _say(dist, f"[resume] continuing the unfinished run {run_dir} (same config); resume=false starts afresh")
    with RunLog(run_dir / "run.log", enabled=dist.is_main) as log:  # stdout and stderr, kept with the run
        return _tracked(cfg, dist, run_dir, resume_from, resume_state, log)


def _tracked(cfg, dist: DistContext, run_dir: Path, resume_from, resume_state, log: RunLog) -> float:
    logger = {k: v for k, v in to_plain(cfg.logger).items() if k in ("tracking_uri", "experiment_name")}
    tracker = build_tracker(cfg.logger.kind, **logger) if dist.is_main else NullTracker()  # rank 0 logs
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
    if os.environ.get(OPTUNA_TRIAL_ENV) and not str(cfg.objective).startswith("val/"):
        notes.append(
            f"this Optuna trial optimises {cfg.objective} of the test split (model selection on test): use "
            "objective=val/mAP with dataset.options.val_fraction=0.2, as the hparams_search presets do"
        )
    for note in notes:
        _say(dist, f"WARNING: {note}")
    if notes:  # on the run too, where a sweep's results are compared
        tags["config_warnings"] = " | ".join(notes)
    ssl = f"+{cfg.ssl.name}" if cfg.ssl.name != "none" else ""
    run_id = tracker.start(
        cfg.logger.get("run_name") or f"{cfg.dataset.name} {cfg.method.name}{ssl} {cfg.backbone.name}",
        tags,
        run_id=(resume_state or {}).get("mlflow_run_id"),
        parent_run_id=os.environ.get(PARENT_RUN_ENV),
    )
    status = "FAILED"
    try:
        tracker.log_params(flatten_config(to_plain(cfg)))
        tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/resolved.yaml")
        final = _train(cfg, dist, run_dir, tracker, run_id, resume_from, resume_state)
        status = "FINISHED"
        for line in where_lines(run_dir, run_id, logger.get("tracking_uri"), getattr(tracker, "experiment_id", None)):
            _say(dist, line)
        return final
    except (KeyboardInterrupt, Preempted) as stop:
        status = "KILLED"
        stop.run_dir = run_dir  # the entry point prints the command that continues it
        raise
    except Exception as err:  # the reason goes with the failed run, where its metrics are compared
        tracker.set_tags({"failure": str(err).splitlines()[0][:5000] if str(err) else type(err).__name__})
        tracker.log_text(f"{type(err).__name__}: {err}\n", "failure.txt")
        raise
    finally:
        log.flush()
        if dist.is_main and log.path.is_file():
            tracker.log_artifact(log.path)
        tracker.end(status)


def _train(cfg, dist: DistContext, run_dir: Path, tracker: Tracker, run_id, resume_from, resume_state) -> float:
    started, device = time.perf_counter(), dist.device
    method = method_class(str(cfg.method.name))()
    stages = list(cfg.method.get("stages") or method.stages)
    with dist.main_first():  # rank 0 renders the synthetic world (once) before the other ranks read it
        ds = build_dataset(cfg)  # the registry logs the summary table
    if "label_maps" in ds.meta and dist.is_main:  # a user's own data: keep the string <-> integer label maps
        tracker.log_artifact(write_label_maps(ds, run_dir / "label_maps.json"))
    # dataset counts are facts about the run, not curves: params (the metric views stay for metrics)
    tracker.log_params({**summary_metrics(ds), "data.skipped_corrupt": int(ds.meta.get("skipped_corrupt", 0))})
    if ds.meta.get("skipped_corrupt"):  # skip_corrupt=true dropped unreadable images: say how many
        print(f"[data] skipped {ds.meta['skipped_corrupt']} corrupt image(s)", flush=True)
    check_batches_fit(cfg, stages, method.stages, ds.num_train_pids)
    test = limit_test_set(ds, int(cfg.limits.eval_images))
    init = read_source(cfg.init_from) if cfg.get("init_from") and resume_state is None else None
    # Every weight comes from init_from when it holds the encoders: build the architecture alone (no CLIP file).
    arch_only = (
        init is not None and cfg.backbone.get("config") is not None and covers_pretrained(init[1], method.uses_text)
    )
    with dist.main_first():  # a self-pretrained backbone (clip_tiny_synthetic) is made once, by rank 0
        system = build_system(
            cfg, ds.num_train_pids, ds.num_cams, ds.num_views, uses_text=method.uses_text, architecture_only=arch_only
        )
    model = system["image"]
    system.to(device)
    # What a checkpoint's weights alone cannot say (the SIE table's camera x view split): load_run reads it.
    model_spec = {"num_classes": ds.num_train_pids, "num_cams": ds.num_cams, "num_views": ds.num_views}
    sp = cfg.speed
    apply_speed_settings(model, bool(sp.compile), str(sp.compile_mode), bool(sp.channels_last))
    evaluator = build_evaluator(cfg, model, test.query, test.gallery, device, dist)
    checkpointer = Checkpointer(run_dir / "checkpoints", cfg.checkpoint.keep_last, enabled=dist.is_main)
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

    val = build_evaluator(cfg, model, ds.val_query, ds.val_gallery, device, dist) if ds.has_validation else None
    evals = RunEvaluation(
        evaluator, val, tracker, lambda t: _say(dist, t), system, FINAL_METRICS, cfg.eval.get("select_best")
    )

    kit = build_toolkit(cfg, system, ds.train, device, dist, stages)
    run = RunSettings(
        system=system,
        device=device,
        tracker=tracker,
        checkpointer=checkpointer,
        checkpoint_period=int(cfg.checkpoint.period),
        precision=str(cfg.precision),
        nonfinite_action=str(cfg.nonfinite.action),
        nonfinite_max_skips=int(cfg.nonfinite.max_skips),
        grad_clip=float(cfg.grad_clip),
        max_steps_per_epoch=int(cfg.limits.steps_per_epoch),
        progress=bool(cfg.progress) and dist.is_main,
        verbose=dist.is_main,
        dist=dist if dist.distributed else None,
        state=lambda: {"mlflow_run_id": run_id, "model_spec": model_spec},
    )
    plans = method.plans(kit, stages)
    names = [p.name for p in plans]
    skip = names.index(resumed_stage) if resumed_stage in names else 0  # stages before the resumed one are done
    for plan in plans[skip:]:
        stage = plan.build()
        period = int(cfg.eval.val_period) if val is not None and method.stages[plan.name] == "image" else None
        run_stage(
            stage,
            run,
            resume_state if plan.name == resumed_stage else None,
            lambda e, s=stage.name: evals.periodic(s, e),
            eval_period=period,
        )
    result, metrics = evals.final(stages[-1], kit.settings[stages[-1]].epochs)
    tracker.log_metrics({k: metrics[k] for k in FINAL_METRICS if k in metrics})
    if cfg.eval.get("diagnostics") and dist.is_main:
        metrics.update(camera_diagnostics(result))
        tracker.log_metrics({k: v for k, v in metrics.items() if k.startswith("diag/")})
    tracker.log_metrics({"train_time_s": time.perf_counter() - started})
    if dist.is_main:  # the run folder says how it ended, for scripts and sweeps (the tables interleave on a pipe)
        write_json(
            run_dir / "metrics.json",
            {
                "method": str(cfg.method.name),
                "dataset": str(cfg.dataset.name),
                "mlflow_run_id": run_id,
                "metrics": metrics,
            },
        )
    if cfg.eval.plots and dist.is_main:
        log_result_plots(
            tracker, result, test.query, test.gallery, run_dir / "plots", int(cfg.eval.ranked_list_queries)
        )
    _say(dist, format_metrics(metrics, f"final ({cfg.method.name} on {cfg.dataset.name})"))
    objective = str(cfg.get("objective") or "mAP")
    if objective not in metrics:
        raise ValueError(f"objective={objective}: the run has no such metric (it has {', '.join(sorted(metrics))})")
    if dist.distributed:
        print(f"[rank {dist.rank}/{dist.world_size}] final {objective}={float(metrics[objective]):.10f}", flush=True)
    return float(metrics[objective])
