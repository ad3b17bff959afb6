"""python -m reid.export: ONNX (onnxruntime vs torch), TorchScript, and CLIP-ReID's layout; a native run's export
imports back to the same descriptors; init_from fine-tunes from an imported run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch

from reid.export import ExportError, export_run
from reid.import_weights import import_checkpoint
from reid.inference import load_run
from reid.weights.export import Descriptor, example_inputs, id_inputs
from tests.shared import TINY_WORLD
from tests.weights.clipreid_checkpoints import Spec, layout_shapes
from tests.weights.clipreid_checkpoints import clipreid_state_dict as generated

ROOT = Path(__file__).resolve().parents[2]
RUNS = {  # name: (layout, --dataset, the id inputs the graph must take)
    "vit": (Spec(), "market1501", ()),
    "vit-camera-olp": (Spec(stride=12, sie_rows=6), "market1501", ("camids",)),
    "vit-view": (Spec(size=(256, 256), sie_rows=8), "veri776", ("viewids",)),
    "vit-both": (Spec(size=(256, 256), sie_rows=160), "veri776", ("camids", "viewids")),
    "rn50": (Spec(arch="rn50"), "market1501", ()),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    out = {}
    for seed, (name, (spec, dataset, _)) in enumerate(RUNS.items()):
        torch.save(generated(spec, seed=10 + seed), base / f"{name}.pth")
        out[name] = import_checkpoint("clipreid", base / f"{name}.pth", base / name, dataset=dataset).out_dir
    return out


def _torch_descriptor(run: Path, inputs) -> torch.Tensor:
    trained = load_run(run, device="cpu", root_dir=ROOT)
    module = Descriptor(trained.model, id_inputs(*trained.model.side_info))
    with torch.no_grad():
        return module(*inputs)


@pytest.mark.parametrize("name", list(RUNS))
def test_onnx_matches_torch_with_a_dynamic_batch(runs, name):
    spec, _, ids = RUNS[name]
    path, lines = export_run(runs[name], "onnx", root_dir=ROOT)
    assert path == runs[name] / "export" / "model.onnx" and "max |difference|" in lines[-1]
    model = onnx.load(str(path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    graph_inputs = [i.name for i in model.graph.input]
    assert graph_inputs == ["images", *ids]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named (dynamic) batch axis
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["reid.input_size"] == f"[{spec.size[0]}, {spec.size[1]}]" and meta["reid.neck_feat"] == "before"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        inputs = example_inputs(spec.size, ids, batch=batch, seed=batch)
        (ours,) = session.run(["descriptor"], {n: t.numpy() for n, t in zip(graph_inputs, inputs)})
        reference = _torch_descriptor(runs[name], inputs)
        assert ours.shape == (batch, spec.f_last + spec.proj)
        assert float((torch.from_numpy(ours) - reference).abs().max()) <= 1e-4


@pytest.mark.parametrize("name", ["vit-camera-olp", "rn50"])
def test_torchscript_matches_torch(runs, name):
    spec, _, ids = RUNS[name]
    path, _ = export_run(runs[name], "torchscript", root_dir=ROOT)
    loaded = torch.jit.load(str(path))
    inputs = example_inputs(spec.size, ids, batch=4, seed=3)
    with torch.no_grad():
        assert float((loaded(*inputs) - _torch_descriptor(runs[name], inputs)).abs().max()) <= 1e-5


def test_clipreid_export_from_the_command_line_is_the_public_layout(runs, tmp_path):
    spec, _, _ = RUNS["vit-both"]
    out = tmp_path / "model.pth"
    cmd = [sys.executable, "-m", "reid.export", f"run={runs['vit-both']}", "format=clipreid", f"out={out}",
           f"hydra.run.dir={tmp_path / 'hydra'}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(out, weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == layout_shapes(spec)  # what CLIP-ReID's load_param fills
    bad = subprocess.run([*cmd[:3], "run=/nowhere", "format=onnx", f"hydra.run.dir={tmp_path / 'h2'}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    with pytest.raises(ExportError, match="format='tflite'"):
        export_run(runs["vit"], "tflite", root_dir=ROOT)


# A tiny CLIP that follows OpenAI's head rule (width // 64 heads), as CLIP-ReID's code derives it from the weights.
OPENAI_RULE_TINY = (
    "backbone=clip_tiny", "backbone.config.projection_dim=32", "backbone.mid_depth=1",
    "backbone.config.vision.hidden_size=128", "backbone.config.vision.intermediate_size=512",
    "backbone.config.vision.num_hidden_layers=2", "backbone.config.vision.num_attention_heads=2",
    "backbone.config.text.hidden_size=64", "backbone.config.text.intermediate_size=256",
    "backbone.config.text.num_hidden_layers=1", "backbone.config.text.num_attention_heads=1",
)
NATIVE = Spec(size=(128, 64), width=128, layers=2, proj=32, text_width=64, text_layers=1, num_ids=8)


def _native(base: Path, *backbone: str) -> Path:
    from hydra import compose, initialize_config_dir

    from reid.pipeline import train

    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("train", overrides=[
            "experiment=demo", "debug=fast", *backbone, "logger=none", "eval.plots=false",
            "method.stage2.batch_size=16", *TINY_WORLD, f"paths.data_dir={base / 'data'}",
            f"paths.model_dir={base / 'models'}", f"paths.root_dir={ROOT}", f"paths.output_dir={base / 'run'}",
        ])
    _save_config(cfg, base / "run")
    train(cfg)
    return base / "run"


def _save_config(cfg, run_dir: Path) -> None:
    """What the Hydra app writes into every run folder (load_run reads it); in-process runs write it themselves."""
    from omegaconf import OmegaConf

    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")


@pytest.fixture(scope="module")
def native_run(tmp_path_factory):
    """A run trained here (tiny CLIP, both CLIP-ReID stages, a few steps) on the tiny synthetic world."""
    base = tmp_path_factory.mktemp("native")
    _native(base, *OPENAI_RULE_TINY)
    return base


def test_a_native_run_exports_to_clipreid_and_imports_back_to_the_same_descriptors(native_run):
    from reid.data import load_dataset

    exported, _ = export_run(native_run / "run", "clipreid", root_dir=ROOT)
    state = torch.load(exported, weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == layout_shapes(NATIVE)
    again = import_checkpoint("clipreid", exported, native_run / "reimported", dataset="synthetic")
    first = load_run(native_run / "run", device="cpu", root_dir=ROOT)
    second = load_run(again.out_dir, device="cpu", root_dir=ROOT)
    records = load_dataset(
        "synthetic", native_run / "data", num_train_ids=8, num_test_ids=8, num_distractors=8, num_junk=8
    ).query[:6]
    a, b = first.extract(records, flip=False), second.extract(records, flip=False)
    assert float((a - b).abs().max()) <= 1e-5


def test_an_architecture_clipreids_code_would_misread_is_not_exported(tmp_path):
    run = _native(tmp_path, "backbone=clip_tiny")  # 96 wide with 4 heads: CLIP-ReID derives 96 // 64 = 1 head
    with pytest.raises(ExportError, match="4 attention heads.*derives width // 64 = 1"):
        export_run(run, "clipreid", root_dir=ROOT)


def test_init_from_an_imported_run_starts_from_its_weights(tmp_path, capsys):
    from hydra import compose, initialize_config_dir

    from reid.build import build_dataset, build_evaluator, check_init_backbone, limit_test_set
    from reid.config import ConfigError
    from reid.pipeline import train

    spec = Spec(size=(128, 64), width=128, layers=3, num_ids=5)  # a "released" model: 5 identities, 128x64 inputs
    torch.save(generated(spec, seed=20), tmp_path / "released.pth")
    source = import_checkpoint("clipreid", tmp_path / "released.pth", tmp_path / "released", dataset="synthetic")
    assert f"  fine-tune:   python -m reid.train {' '.join(source.fine_tune)}" in source.lines
    assert "backbone.config.vision.hidden_size=128" in source.fine_tune  # not ViT-B/16: the printed command says so
    with initialize_config_dir(str(ROOT / "conf")):  # the printed command, plus a smoke-run's size and a tiny world
        cfg = compose("train", overrides=[
            *source.fine_tune, "debug=fast", "logger=none", "eval.plots=false", "eval.at_start=true", "num_workers=0",
            "method.stage2.batch_size=16", *TINY_WORLD, f"paths.data_dir={tmp_path / 'data'}",
            f"paths.model_dir={tmp_path / 'models'}", f"paths.root_dir={ROOT}", f"paths.output_dir={tmp_path / 'run'}",
        ])
        mismatched = compose("train", overrides=["experiment=demo", f"init_from={source.out_dir}",
                                                  f"paths.root_dir={ROOT}"])
    with pytest.raises(ConfigError, match="another architecture.*add: .*backbone.config.vision.hidden_size=128"):
        check_init_backbone(mismatched)
    _save_config(cfg, tmp_path / "run")
    train(cfg)
    out = capsys.readouterr().out
    assert (
        "[init] sized for another training set, freshly initialised: image.head.classifier.weight (5, 128) -> (8, 128)"
        in out
    )
    trained = load_run(tmp_path / "run", device="cpu", root_dir=ROOT)
    assert trained.config.backbone.config.vision.hidden_size == 128  # the source's architecture, not clip_tiny's
    assert int(trained.system["image"].head.classifier.weight.shape[0]) == 8  # re-initialised for the 8-id world
    # The untrained evaluation (before any step) is the source model's own on this test set.
    released = load_run(source.out_dir, device="cpu", root_dir=ROOT)
    test = limit_test_set(build_dataset(trained.config), int(trained.config.limits.eval_images))
    expected = build_evaluator(trained.config, released.model, test.query, test.gallery, torch.device("cpu"))()
    untrained = out[out.index("untrained model"):].splitlines()[3]
    assert f"{100 * expected.metrics['mAP']:6.2f}%" == untrained.split("|")[0].strip().rjust(7)


def test_an_imported_run_evaluates_and_searches_from_the_command_line(tmp_path):
    """python -m reid.evaluate run=OUT and python -m reid.search --run OUT, on the synthetic world (no other files)."""
    from reid.data import load_dataset

    spec = Spec(size=(128, 64), width=128, layers=2, num_ids=9)
    torch.save(generated(spec, seed=30), tmp_path / "m.pth")
    run = import_checkpoint("clipreid", tmp_path / "m.pth", tmp_path / "run", dataset="synthetic").out_dir
    data = tmp_path / "data"
    world = load_dataset("synthetic", data)  # the run's own dataset settings are the group defaults
    env_paths = [f"paths.data_dir={data}", f"paths.output_root={tmp_path / 'outputs'}", "logger=none"]
    done = subprocess.run([sys.executable, "-m", "reid.evaluate", f"run={run}", *env_paths, "progress=false"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mAP" in done.stdout and "rank1" in done.stdout
    query = world.query[0].path
    found = subprocess.run([sys.executable, "-m", "reid.search", "--run", str(run), "--query", query, "--gallery",
                            str(Path(world.gallery[0].path).parent), "--topk", "5", "--out", str(tmp_path / "r.png")],
                           cwd=ROOT, capture_output=True,
                           text=True, timeout=600)
    assert found.returncode == 0, found.stderr[-3000:]
    assert found.stdout.count(".jpg") >= 5
