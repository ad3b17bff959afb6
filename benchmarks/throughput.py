"""Model throughput: stage-2 training step, stage-1 feature caching and test-time extraction, in images/s.

Builds the ReID model with RANDOM weights from the architecture alone (no checkpoint needed): ViT-B/16 from the
HF ``CLIPConfig`` of openai/clip-vit-base-patch16 written out below, RN50 from ``reid.models.rn50``'s OpenAI RN50
architecture, clip_tiny from conf/backbone/clip_tiny.yaml. Inputs are synthetic uint8 batches already decoded
(the input pipeline is benchmarks/data_loading.py), handed over from pinned host memory on CUDA as the loader does.

What each phase runs is the project's own code path:

- train: ``StageLoop`` (reid/engine/loop.py) with ``image_step`` (reid/engine/stage2.py): batched augmentation on
  the device, forward, the image objective from the loss-term registry (CLIP-ReID's ID + triplet x3 +
  image-to-text against a random text classifier), backward through the precision's scaler, gradient norm, Adam
  with CLIP-ReID's per-parameter groups; PK batches of ``batch / num_instances`` identities x ``num_instances``
  (16 x 4 for the default 64);
- cache: ``cache_image_features`` (reid/engine/stage1.py): projected features, kept on the device;
- extract: ``extract_features`` (reid/engine/features.py): no grad, descriptors copied to the host per batch.

Timing brackets every phase with ``torch.cuda.synchronize()``; peak memory is ``torch.cuda.max_memory_allocated``
over the timed steps (after the warm-up, which includes any compilation). One markdown row per phase on stdout:

    python benchmarks/throughput.py --backbone vit_b16 --precision bf16 --device cuda --what all
    python benchmarks/throughput.py --backbone clip_tiny --device cpu --steps 3 --warmup 1   # a CPU smoke run
    python benchmarks/throughput.py --backbone vit_b16 --device cuda --what train --steps 10 --profile
"""
from __future__ import annotations

import argparse
import contextlib
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from machine import cpu_model  # noqa: E402  (benchmarks/machine.py, beside this script)
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reid.build import build_model  # noqa: E402
from reid.build.training import objective_factory  # noqa: E402
from reid.data.transforms import TestTransform, TrainAugment  # noqa: E402
from reid.engine.checkpoint import Checkpointer  # noqa: E402
from reid.engine.faults import NonFinitePolicy  # noqa: E402
from reid.engine.features import extract_features  # noqa: E402
from reid.engine.loop import StageLoop  # noqa: E402
from reid.engine.optim import build_optimizer  # noqa: E402
from reid.engine.precision import Precision  # noqa: E402
from reid.engine.schedules import build_scheduler  # noqa: E402
from reid.engine.speed import COMPILE_MODES, apply_speed_settings, fused_optimizer_flag  # noqa: E402
from reid.engine.stage1 import cache_image_features  # noqa: E402
from reid.engine.stage2 import Stage2Net, image_step  # noqa: E402
from reid.losses.id_loss import classifier_accuracy  # noqa: E402
from reid.models.reid_model import ReIDModel  # noqa: E402
from reid.tracking import build_tracker  # noqa: E402

CONF = ROOT / "conf"
GIB = 1024.0**3

# openai/clip-vit-base-patch16's config.json (the architecture fields), written out so that no download is needed.
VIT_B16_CLIP: dict[str, Any] = {
    "projection_dim": 512,
    "vision": {
        "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
        "image_size": 224, "patch_size": 16, "num_channels": 3, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
        "projection_dim": 512,
    },
    "text": {
        "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8,
        "max_position_embeddings": 77, "vocab_size": 49408, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
        "projection_dim": 512, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 1,
    },
}


class SkipBenchmark(Exception):
    """The requested configuration cannot run here (e.g. a backbone whose code is not available)."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = cpu_model()
    return f"CPU {model} ({torch.get_num_threads()} torch threads)"


def versions() -> str:
    import transformers

    cuda = f", CUDA {torch.version.cuda}" if torch.version.cuda else ""
    return f"torch {torch.__version__}{cuda}, transformers {transformers.__version__}"


# --- model ---------------------------------------------------------------------------------------


def load_group(group: str, name: str):
    """conf/<group>/<name>.yaml over the entries of its own ``defaults`` list from the same group, as Hydra composes
    them (``_self_`` last), without Hydra, which a lent GPU machine lacks."""
    node = OmegaConf.load(CONF / group / f"{name}.yaml")
    parents = [d for d in node.pop("defaults", []) if d != "_self_"]
    return OmegaConf.merge(*(load_group(group, parent) for parent in parents), node)


def backbone_config(name: str, attn: str):
    b = OmegaConf.load(CONF / "backbone" / f"{name}.yaml")
    b.attn_implementation = attn
    b.pretrained = None
    if name == "vit_b16":
        b.config = VIT_B16_CLIP
    return b


def build(args: argparse.Namespace, device: torch.device) -> tuple[ReIDModel, Any]:
    """The ReID image model with random weights, on ``device``, and its backbone config node."""
    b = backbone_config(args.backbone, args.attn)
    size = tuple(args.size)
    if b.arch == "rn50":
        try:
            from reid.models.rn50 import rn50_backbone
        except ImportError as err:  # the module, or open_clip behind it, is not available
            raise SkipBenchmark(f"backbone=rn50 skipped: {err}") from err
        try:
            encoder, _ = rn50_backbone(None, {}, size, int(b.last_stride), attn_implementation=args.attn)
        except ModuleNotFoundError as err:
            raise SkipBenchmark(f"backbone=rn50 skipped: {err}") from err
        model = ReIDModel(encoder, args.num_classes, float(b.classifier_std), str(b.neck_feat))
    else:
        cfg = OmegaConf.create({"backbone": b, "dataset": {"size": list(size)}, "device": str(device)})
        model, _ = build_model(cfg, args.num_classes, num_cams=6, num_views=1)
    return model.to(device), b


def forward_gflops(model: ReIDModel, size: tuple[int, int], device: torch.device) -> float:
    """Matmul/conv/attention GFLOP of one test-time forward of one image (torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, *size, device=device))
    model.train(was)
    return counter.get_total_flops() / 1e9


# --- synthetic batches ---------------------------------------------------------------------------


def make_batches(n: int, batch: int, num_instances: int, num_classes: int, size, device, seed: int) -> list[dict]:
    """``n`` distinct decoded batches as the loader yields them: uint8 images and int64 labels (PK when K > 1)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randperm(num_classes, generator=g)[: batch // num_instances]
        pids = ids.repeat_interleave(num_instances)
        b = {
            "image": torch.randint(0, 256, (len(pids), 3, *size), dtype=torch.uint8, generator=g),
            "pid": pids,
            "camid": torch.randint(0, 6, (len(pids),), generator=g),
            "viewid": torch.zeros(len(pids), dtype=torch.int64),
        }
        if device.type == "cuda":
            b = {k: v.pin_memory() for k, v in b.items()}
        out.append(b)
    return out


def cycle(batches: list[dict], n: int):
    for i in range(n):
        yield batches[i % len(batches)]


# --- phases: each returns run(n) -> images processed ---------------------------------------------


def train_phase(model: ReIDModel, b, args, device: torch.device) -> Callable[[int], int]:
    method = OmegaConf.load(CONF / "method" / "clipreid.yaml").method.stage2
    terms_cfg = OmegaConf.create({"loss": load_group("loss", "clipreid"), "ssl": load_group("ssl", "none")})
    aug = OmegaConf.load(CONF / "train.yaml").augment
    if args.batch % args.num_instances:
        raise ValueError(f"--batch {args.batch} is not a multiple of --num-instances {args.num_instances}")
    for p in model.parameters():
        p.requires_grad_(True)
    for head in (model.head, model.head_proj):  # as reid.pipeline: the BNNecks' shift is frozen
        head.bn.bias.requires_grad_(False)
    trainable = list(model.named_parameters())
    o = method.optimizer
    optimizer = build_optimizer(
        trainable, o.name, o.lr, o.weight_decay, o.bias_lr_factor, o.weight_decay_bias, tuple(o.betas),
        fused=fused_optimizer_flag(args.fused, device),
    )
    sched = {k: v for k, v in OmegaConf.to_container(method.scheduler).items() if k != "name"}
    scheduler = build_scheduler(optimizer, method.scheduler.name, 10**6, **sched)
    g = torch.Generator().manual_seed(args.seed + 1)
    text = torch.randn(args.num_classes, model.encoder.proj_dim, generator=g).to(device)
    # the image stage's objective from the loss-term registry, as reid.methods.stages.image_stage builds it
    objective = objective_factory(terms_cfg)("image", {"text_classifier"}, monitors={"acc": classifier_accuracy})
    augment = TrainAugment(b.pixel_mean, b.pixel_std, flip_p=aug.flip_p, pad=aug.pad, erase_p=aug.erase_p,
                           erase_area=tuple(aug.erase_area), erase_ratio=tuple(aug.erase_ratio)).to(device)
    batches = make_batches(4, args.batch, args.num_instances, args.num_classes, tuple(args.size), device, args.seed)
    state = {"epoch": 0, "n": 0}
    loop = StageLoop(
        name="stage2", epochs=0, model=model, params=[p for _, p in trainable if p.requires_grad],
        optimizer=optimizer, scheduler=scheduler, batches=lambda epoch, begin: cycle(batches, state["n"]),
        steps_per_epoch=0, step=image_step(Stage2Net(model), augment, objective, device, False, text_weights=text),
        precision=Precision(args.precision, device), tracker=build_tracker("none"),
        checkpointer=Checkpointer(Path(tempfile.gettempdir()), 1, enabled=False),
        nonfinite=NonFinitePolicy("stop", 0), state=dict, progress=False,
    )

    def run(n: int) -> int:
        state["n"] = n
        loop.steps_per_epoch = n
        loop.epochs = state["epoch"] + 1
        with contextlib.redirect_stdout(sys.stderr):  # StageLoop's one summary line per epoch
            loop.run(start_epoch=state["epoch"])
        state["epoch"] += 1
        return n * args.batch

    return run


def cache_phase(model: ReIDModel, b, args, device: torch.device) -> Callable[[int], int]:
    transform = TestTransform(b.pixel_mean, b.pixel_std).to(device)
    batches = make_batches(4, args.cache_batch, 1, args.num_classes, tuple(args.size), device, args.seed + 2)
    precision = Precision(args.extract_precision, device)

    def run(n: int) -> int:
        model.eval()
        with precision.autocast():
            feats, _ = cache_image_features(
                model.encode_projected, list(cycle(batches, n)), transform, device, progress=False
            )
        model.train()
        return int(feats.shape[0])

    return run


def extract_phase(model: ReIDModel, b, args, device: torch.device) -> Callable[[int], int]:
    transform = TestTransform(b.pixel_mean, b.pixel_std).to(device)
    batches = make_batches(4, args.eval_batch, 1, args.num_classes, tuple(args.size), device, args.seed + 3)
    precision = Precision(args.extract_precision, device)

    def run(n: int) -> int:
        with precision.autocast():
            feats, _, _ = extract_features(
                model, list(cycle(batches, n)), transform, device, use_side_info=False, progress=False
            )
        return int(feats.shape[0])

    return run


PHASES = {"train": train_phase, "cache": cache_phase, "extract": extract_phase}


def measure(run: Callable[[int], int], args, device: torch.device) -> dict[str, float]:
    sync(device)
    t0 = time.perf_counter()
    if args.warmup:
        run(args.warmup)
    sync(device)
    warmup_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    images = run(args.steps)
    sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else float("nan")
    return {"images": images, "seconds": seconds, "ips": images / seconds, "ms_step": 1000 * seconds / args.steps,
            "warmup_s": warmup_s, "peak_gib": peak}


def profile(run: Callable[[int], int], what: str, args, device: torch.device) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    steps = max(1, min(args.steps, args.profile_steps))
    sync(device)
    with torch_profile(activities=activities, record_shapes=False) as prof:
        run(steps)
        sync(device)
    averages = prof.key_averages()
    # GPU time shows which kernels dominate; self CPU time shows the host-side overhead (launches, Python, syncs
    # such as aten::item / cudaStreamSynchronize) that leaves the GPU idle between them.
    keys = (["self_cuda_time_total"] if device.type == "cuda" else []) + ["self_cpu_time_total"]
    for key in keys:
        print(f"\n### profile: {what}, {steps} steps, top 15 ops by {key}\n")
        print(averages.table(sort_by=key, row_limit=15))


HEADER = ("| device | backbone | phase | batch | H x W | precision | attn | compile | channels_last | fused | "
          "img/s | ms/batch | warm-up s | peak GiB | fwd GFLOP/img | TFLOP/s | versions | command |")


def row(args, device: torch.device, what: str, r: dict[str, float], gflop: float, fused, command: str) -> str:
    batch = {"train": args.batch, "cache": args.cache_batch, "extract": args.eval_batch}[what]
    prec = args.precision if what == "train" else args.extract_precision
    factor = 3.0 if what == "train" else 1.0  # backward ~ 2x forward: an estimate, labelled in the docs
    tflops = r["ips"] * gflop * factor / 1e3
    peak = f"{r['peak_gib']:.2f}" if device.type == "cuda" else "n/a (CPU)"
    compile_txt = args.compile_mode if args.compile else "off"
    return (
        f"| {device_name(device)} | {args.backbone} | {what} | {batch} | {args.size[0]} x {args.size[1]} | {prec} | "
        f"{args.attn} | {compile_txt} | {'on' if args.channels_last else 'off'} | {fused} | {r['ips']:.1f} | "
        f"{r['ms_step']:.1f} | {r['warmup_s']:.1f} | {peak} | {gflop:.3g} | {tflops:.3g} | {versions()} | `{command}` |"
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", choices=["vit_b16", "rn50", "clip_tiny"], default="vit_b16")
    p.add_argument("--batch", type=int, default=64, help="stage-2 PK batch (identities x --num-instances)")
    p.add_argument("--num-instances", type=int, default=4, help="K images per identity in a training batch")
    p.add_argument(
        "--cache-batch", type=int, default=64, help="stage-1 feature-cache batch (method.stage1.feature_batch_size)"
    )
    p.add_argument("--eval-batch", type=int, default=128, help="test-time extraction batch (eval.batch_size)")
    p.add_argument("--size", type=int, nargs=2, default=[256, 128], metavar=("H", "W"))
    p.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="bf16")
    p.add_argument("--extract-precision", choices=["bf16", "fp16", "fp32"], default=None,
                   help="cache / extract precision (default: --precision; the pipeline's default is fp32)")
    p.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    p.add_argument("--compile", action="store_true", help="torch.compile the image encoder (speed.compile)")
    p.add_argument("--compile-mode", choices=list(COMPILE_MODES), default="default")
    p.add_argument("--channels-last", action="store_true", help="speed.channels_last")
    p.add_argument("--fused", choices=["auto", "true", "false"], default="auto", help="speed.fused_optimizer")
    p.add_argument("--num-classes", type=int, default=751, help="training identities (Market-1501: 751)")
    p.add_argument("--steps", type=int, default=50, help="timed batches per phase")
    p.add_argument("--warmup", type=int, default=10, help="untimed batches first (compilation happens here)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--what", choices=["train", "extract", "cache", "all"], default="all")
    p.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, profile each phase (torch.profiler): top-15 ops by self GPU time and by self CPU time",
    )
    p.add_argument("--profile-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.extract_precision is None:
        args.extract_precision = args.precision
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    command = "python benchmarks/throughput.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: CUDA is not available here (use --device cpu)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    try:
        model, b = build(args, device)
    except SkipBenchmark as err:
        print(f"skipped: {err}")
        return 0
    gflop = forward_gflops(model, tuple(args.size), device)
    apply_speed_settings(model, args.compile, args.compile_mode, args.channels_last)
    fused = fused_optimizer_flag(args.fused, device)
    phases = ["train", "cache", "extract"] if args.what == "all" else [args.what]
    rows, runs = [], {}
    for what in phases:
        runs[what] = PHASES[what](model, b, args, device)
        result = measure(runs[what], args, device)
        rows.append(
            row(args, device, what, result, gflop, f"{args.fused}: {fused}" if what == "train" else "-", command)
        )
        print(f"# {what}: {result['ips']:.1f} img/s", file=sys.stderr, flush=True)
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    for line in rows:
        print(line)
    if device.type == "cpu":
        print(f"\npeak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GiB")
    if args.profile:
        for what in phases:
            profile(runs[what], what, args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
