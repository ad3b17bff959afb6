"""The synthetic study's report (experiments/synthetic_study/run.sh step 3) on runs whose params are what its arms
really log: each arm's config composed from conf/ as run.sh's overrides give it, resolved and flattened as
reid.pipeline logs it. The ablation's halves must be arms of their own and every arm must get its label."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from reid.report import main
from reid.reporting.labels import load_label_file, name_for
from reid.tracking.flatten import flatten_config
from tests.report.store import Store

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "experiments" / "synthetic_study"
LABELS = STUDY / "labels.json"
BASELINE = "Baseline (CLIP fine-tuning)"
# run.sh's arms (step 1), in its order, by the label they should get.
ARMS = {
    BASELINE: ["method=baseline", "ssl=none"],
    "CLIP-ReID": ["method=clipreid", "ssl=none"],
    "SVLL-ReID (SimCLR)": ["method=clipreid", "ssl=simclr"],
    "SVLL-ReID, language SSL only": ["method=clipreid", "ssl=simclr", "ssl.weight=0"],
    "SVLL-ReID, vision SSL only": ["method=clipreid", "ssl=simclr", "ssl.lang_weight=0"],
    "SVLL-ReID with SimSiam": ["method=clipreid", "ssl=simsiam"],
}
SEEDS = (1, 2, 3)


def logged_params(overrides: list[str], run: int) -> dict[str, str]:
    """The flattened resolved config a run of ``experiment=demo <overrides>`` logs (paths as in a run folder)."""
    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("train", overrides=["experiment=demo", "logger.experiment_name=synthetic_study", *overrides])
    OmegaConf.update(cfg, "paths.root_dir", "/work/project")  # ${hydra:runtime.cwd}
    OmegaConf.update(cfg, "paths.output_dir", f"/work/project/outputs/demo/multiruns/2026-01-01_00-00-00/{run}")
    params = flatten_config(OmegaConf.to_container(cfg, resolve=True))
    return {**params, **{f"override.{o.split('=')[0]}": o.split("=")[1] for o in overrides}}


@pytest.fixture(scope="module")
def study(study_store: Store) -> Store:
    """Experiment ``synthetic_study``: each arm a sweep parent with one child per seed (mAP = arm index / 10 +
    seed / 100); a CLIP-ReID seed run again; the Optuna search's parent and one trial."""
    store = study_store
    store.experiment("synthetic_study")
    n = 0
    for i, overrides in enumerate(ARMS.values()):
        parent = f"study-parent-{i}"
        store.add(parent, params={"sweep.seed": "1,2,3"}, tags={"reid.sweep": "parent"})
        for seed in SEEDS:
            n += 1
            value = i / 10 + seed / 100
            store.add(f"study-{i}-{seed}", logged_params([*overrides, f"seed={seed}"], n),
                      {"mAP": value, "rank1": value, "mINP": value}, {"reid.sweep": "child"}, parent=parent)
    n += 1
    store.add("study-rerun", logged_params(["method=clipreid", "ssl=none", "seed=2"], n),
              {"mAP": 0.5, "rank1": 0.5, "mINP": 0.5}, {"reid.sweep": "child"})
    store.add("study-optuna", params={"sweeper.n_trials": "20"},
              metrics={"study_trials_complete": 20, "study_best_value": 0.1815},
              tags={"reid.sweep": "parent", "optuna.study_name": "clipreid_loss_weights-synthetic-clip_tiny_synthetic",
                    "study_best_trial": "19", "study_best_params": json.dumps({"loss.i2t_weight": 0.19087})})
    store.add("study-trial", logged_params(["hparams_search=clipreid_loss_weights", "loss.id_weight=0.6471"], n + 1),
              {"mAP": 0.99, "rank1": 0.99, "mINP": 0.99},
              {"reid.sweep": "child", "optuna.trial_number": "19", "optuna.study_name": "clipreid_loss_weights"},
              parent="study-optuna")
    return store


def test_run_sh_reports_with_the_labels_and_the_baseline_tested_here() -> None:
    script = (STUDY / "run.sh").read_text()
    call = re.search(r'-m reid\.report (.*?)(?<!\\)\n', script, re.S).group(1)
    assert "--labels experiments/synthetic_study/labels.json" in call
    assert f'--baseline "{BASELINE}"' in call and "--readme experiments/synthetic_study/README.md" in call
    assert not (STUDY / "report.py").exists()


def test_each_arm_gets_its_label_and_its_seeds(study: Store, tmp_path: Path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Study\n<!-- results:start -->\nold\n<!-- results:end -->\n## What the table says\n")
    args = ["--tracking-uri", study.uri, "--experiment", "synthetic_study", "--labels", str(LABELS),
            "--baseline", BASELINE, "--readme", str(readme)]
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    table = lines[lines.index("| Arm | Settings | n | seeds | mAP | rank-1 | mINP |") + 2:][:len(ARMS)]
    assert [row.split(" | ")[0].lstrip("| ") for row in table] == list(ARMS)
    # Seeds 1, 2, 3 of arm i: i/10 + 0.01, 0.02, 0.03 (std 0.01); CLIP-ReID's seed 2 re-run: 0.11, 0.50, 0.13, mean
    # 0.24667, std sqrt((0.13667² + 0.25333² + 0.11667²) / 2) = 0.21962.
    means = ["2.00 ± 1.00", "24.67 ± 21.96", "22.00 ± 1.00", "32.00 ± 1.00", "42.00 ± 1.00", "52.00 ± 1.00"]
    for row, mean in zip(table, means):
        assert row.endswith(f" | 3 | 1, 2, 3 | {mean} | {mean} | {mean} |")
    # The settings column says what the arms differ by; the ablation halves differ by one weight each.
    assert [row.split(" | ")[1] for row in table] == [
        "method.name=baseline ssl.name=none ssl.lang_weight=0.0 ssl.weight=0.0",
        "method.name=clipreid ssl.name=none ssl.lang_weight=0.0 ssl.weight=0.0",
        "method.name=clipreid ssl.name=simclr ssl.lang_weight=0.8 ssl.weight=0.8",
        "method.name=clipreid ssl.name=simclr ssl.lang_weight=0.8 ssl.weight=0",
        "method.name=clipreid ssl.name=simclr ssl.lang_weight=0 ssl.weight=0.8",
        "method.name=clipreid ssl.name=simsiam ssl.lang_weight=0.0 ssl.weight=0.8",
    ]
    # Every seed of an arm is 10 points of mAP above the previous arm's: the paired differences are exact.
    assert "| SVLL-ReID (SimCLR) | mAP | 3 | +20.00 | [+20.00, +20.00] |" in lines
    assert "| SVLL-ReID with SimSiam | mINP | 3 | +50.00 | [+50.00, +50.00] |" in lines
    assert ("| clipreid_loss_weights-synthetic-clip_tiny_synthetic | 20 | 18.15 | 19 | `loss.i2t_weight=0.1909` |"
            in lines)
    assert "99.00" not in out  # the Optuna trial is no seed of CLIP-ReID
    text = readme.read_text()
    assert text == f"# Study\n<!-- results:start -->\n{out}<!-- results:end -->\n## What the table says\n"


def test_the_study_readme_has_the_results_block() -> None:
    text = (STUDY / "README.md").read_text()
    assert text.count("<!-- results:start -->") == 1 and text.count("<!-- results:end -->") == 1
    assert text.index("<!-- results:start -->") < text.index("<!-- results:end -->")


# run.sh's other parts: the SVLL diagnosis, the dose-response and the retrained Optuna weights, by their label.
OTHER_ARMS = {
    "SVLL-ReID, vision SSL on detached features": ["method=clipreid", "ssl=simclr", "ssl.detach=true"],
    "SVLL-ReID, same identity masked from NT-Xent": ["method=clipreid", "ssl=simclr", "ssl.mask_same_identity=true"],
    "SVLL-ReID, λ_vis 0.05, lr 3.5e-4": ["method=clipreid", "ssl=simclr", "ssl.weight=0.05",
                                         "method.stage2.optimizer.lr=3.5e-4"],
    "SVLL-ReID, λ_vis 0.4, lr 1e-4": ["method=clipreid", "ssl=simclr", "ssl.weight=0.4",
                                      "method.stage2.optimizer.lr=1e-4"],
    "CLIP-ReID, Optuna's weights (selected on val), fresh seeds": [
        "method=clipreid", "ssl=none", "task_name=optuna_retrain", "loss.id_weight=0.6", "loss.i2t_weight=0.2"],
}


@pytest.mark.parametrize("label", [*ARMS, *OTHER_ARMS])
def test_every_arm_of_run_sh_gets_its_own_label(label: str) -> None:
    overrides = {**ARMS, **OTHER_ARMS}[label]
    for world in ("dataset=synthetic", "dataset=synthetic_hard"):
        assert name_for(logged_params([world, *overrides], 1), load_label_file(LABELS)) == label


def test_run_sh_runs_the_labelled_arms() -> None:
    script = (STUDY / "run.sh").read_text()
    for flag in ("ssl.detach=true", "ssl.mask_same_identity=true", "ssl.weight=0.05,0.1,0.2,0.4",
                 "method.stage2.optimizer.lr=3.5e-4,1e-4", "task_name=optuna_retrain", "dataset=synthetic_hard",
                 "hparams_search=clipreid_loss_weights", "eval.diagnostics=true"):
        assert flag in script, flag
