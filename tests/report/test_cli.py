"""python -m reid.report on a throwaway MLflow store (tests/report/store.py): selection, exact tables, the four
files, artifacts on the parent, the README block, and one clear error line with exit status 2 for bad input."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from reid.report import default_tracking_uri, main
from tests.report.store import Store

ROOT = Path(__file__).resolve().parents[2]
T_975_DF2 = 4.302652729749462  # Student t, 97.5% quantile, 2 degrees of freedom
LANG_LABEL = "SVLL lang. only (λ_vis = 0 & 100%)"  # characters LaTeX must escape
LABELS = {
    "Baseline": {"method.name": "baseline"},
    "CLIP-ReID": {"method.name": "clipreid", "ssl.name": "none"},
    "SVLL-ReID": {"ssl.name": "simclr", "ssl.weight": 0.8},
    LANG_LABEL: {"ssl.name": "simclr", "ssl.weight": 0},
}
# Hand-computed: mean ± sample std in % of the values in tests/report/store.py, e.g. CLIP-ReID mAP 0.15, 0.22,
# 0.38: mean 0.25, std sqrt((0.1² + 0.03² + 0.13²) / 2) = 0.11790.
SUMMARY_ROWS = [
    "| Baseline | method.name=baseline ssl.name=none ssl.weight=0.0 | 3 | 1, 2, 3 | 20.00 ± 10.00 | 40.00 ± 20.00 | "
    "10.00 ± 5.00 |",
    "| CLIP-ReID | method.name=clipreid ssl.name=none ssl.weight=0.0 | 3 | 1, 2, 3 | 25.00 ± 11.79 | 41.67 ± 20.82 | "
    "10.00 ± 5.00 |",
    "| SVLL-ReID | method.name=clipreid ssl.name=simclr ssl.weight=0.8 | 2 | 4, 5 | 45.00 ± 7.07 | 55.00 ± 7.07 | "
    "25.00 ± 7.07 |",
    f"| {LANG_LABEL} | method.name=clipreid ssl.name=simclr ssl.weight=0 | 1 | 1 | 12.00 | 30.00 | 6.00 |",
]
# CLIP-ReID − Baseline per seed: mAP 0.05, 0.02, 0.08 (mean 0.05, std 0.03); rank-1 0.05, -0.05, 0.05
# (mean 1/60, std sqrt(1/300)); mINP 0, 0, 0.
MAP_HALF = T_975_DF2 * 0.03 / math.sqrt(3)
RANK1_HALF = T_975_DF2 * math.sqrt(1 / 300) / math.sqrt(3)
COMPARISON_ROWS = [
    f"| CLIP-ReID | mAP | 3 | +5.00 | [{100 * (0.05 - MAP_HALF):+.2f}, {100 * (0.05 + MAP_HALF):+.2f}] |",
    f"| CLIP-ReID | rank-1 | 3 | +1.67 | [{100 * (1 / 60 - RANK1_HALF):+.2f}, {100 * (1 / 60 + RANK1_HALF):+.2f}] |",
    "| CLIP-ReID | mINP | 3 | +0.00 | [+0.00, +0.00] |",
    "| SVLL-ReID | mAP | 0 | n/a (no shared seeds) | – |",
    f"| {LANG_LABEL} | mAP | 1 | +2.00 | n/a (1 pair) |",
]


def report(store: Store, capsys: pytest.CaptureFixture, *args: str) -> str:
    assert main(["--tracking-uri", store.uri, *args]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.json"
    path.write_text(json.dumps(LABELS))
    return path


def test_experiment_report_tables(study_store: Store, labels_file: Path, capsys) -> None:
    out = report(study_store, capsys, "--experiment", "study", "--labels", str(labels_file), "--baseline", "Baseline")
    lines = out.splitlines()
    assert lines[0] == (f"MLflow experiment `study` ({study_store.uri}): 9 FINISHED run(s) in 4 arm(s); "
                        "mean ± sample std over seeds, in %.")
    assert lines[2:8] == ["| Arm | Settings | n | seeds | mAP | rank-1 | mINP |", "|---|---|---:|---|---:|---:|---:|",
                          *SUMMARY_ROWS]
    for row in COMPARISON_ROWS:
        assert row in lines
    assert "| CLIP-ReID | mAP | 3 | +5.00 | [-2.45, +12.45] |" in lines  # the same, rounded by hand
    # Left out: the trial (99.00 would be its mAP), the parents, the RUNNING and FAILED runs, the superseded seed 1.
    assert "99.00 ±" not in out and "| w | 20 | 99.00 | 4 | `loss.id_weight=0.1235` |" in lines
    base1, first = study_store.ids["base1"][:8], study_store.ids["base1_first"][:8]
    assert lines[lines.index("Notes:") + 1:] == [
        "- left out 3 sweep parent run(s) (they summarise their children)",
        "- left out 1 Optuna trial run(s) (--include-trials adds them, one arm per trial)",
        "- left out 1 FAILED/KILLED run(s) (--include-failed lists them)",
        "- left out 1 run(s) not finished yet (RUNNING/SCHEDULED)",
        f"- Baseline, seed 1: run {base1} is a re-run; it replaces the earlier run {first}",
    ]


def test_labels_on_the_command_line_and_a_baseline_given_by_settings(study_store: Store, capsys) -> None:
    out = report(study_store, capsys, "--experiment", "study", "--label", "method.name=baseline:Base",
                 "--baseline", "method.name=clipreid,ssl.name=none", "--metrics", "mAP")
    assert "| Base | method.name=baseline ssl.name=none ssl.weight=0.0 | 3 | 1, 2, 3 | 20.00 ± 10.00 |" in out
    assert "against **method.name=clipreid ssl.name=none ssl.weight=0.0**" in out
    assert "| Base | mAP | 3 | -5.00 |" in out


def test_unlabelled_arms_are_their_settings(study_store: Store, capsys) -> None:
    out = report(study_store, capsys, "--experiment", "study", "--metrics", "mAP")
    assert "| Arm | n | seeds | mAP |" in out  # no Settings column: the labels are the settings
    assert "| method.name=clipreid ssl.name=simclr ssl.weight=0 | 1 | 1 | 12.00 |" in out


def test_bootstrap_is_seeded(study_store: Store, capsys) -> None:
    args = ("--experiment", "study", "--baseline", "method.name=baseline", "--bootstrap", "2000", "--metrics", "mAP")
    first = report(study_store, capsys, *args, "--bootstrap-seed", "5")
    assert report(study_store, capsys, *args, "--bootstrap-seed", "5") == first
    assert "95% CI (bootstrap) |" in first and "bootstrap: 2000 resamples of the pairs, seed 5" in first
    # Resampling the 3 mAP differences (0.05, 0.02, 0.08): the means lie within [2, 8] percentage points.
    row = next(
        line
        for line in first.splitlines()
        if line.startswith("| method.name=clipreid ssl.name=none ssl.weight=0.0 | mAP |")
    )
    boot = row.split("|")[-2].strip()
    low, high = (float(x) for x in boot.strip("[]").split(","))
    assert 2.0 <= low < 5.0 < high <= 8.0
    assert ("- bootstrap intervals from 3 pair(s) are too narrow to trust (fewer than 10: they cannot see beyond "
            "the pairs' own spread); read the t interval") in first.splitlines()


def test_files_written(study_store: Store, labels_file: Path, tmp_path: Path, capsys) -> None:
    out = report(study_store, capsys, "--experiment", "study", "--labels", str(labels_file), "--baseline", "Baseline",
                 "--out", str(tmp_path))
    assert (tmp_path / "report.md").read_text() == out
    rows = {(r["arm"], r["metric"]): r for r in csv.DictReader((tmp_path / "report.csv").open())}
    assert len(rows) == 12
    clip = rows[("CLIP-ReID", "mAP")]
    ids = study_store.ids
    assert (clip["n"], clip["seeds"], clip["values"]) == ("3", "1;2;3", "0.15;0.22;0.38")
    assert clip["run_ids"] == ";".join(ids[f"clip{s}"] for s in (1, 2, 3))
    assert float(clip["mean"]) == pytest.approx(0.25) and float(clip["std"]) == pytest.approx(math.sqrt(0.0278 / 2))
    assert (clip["baseline"], clip["pairs"], clip["paired_seeds"]) == ("Baseline", "3", "1;2;3")
    assert float(clip["diff_mean"]) == pytest.approx(0.05)
    assert float(clip["t_low"]) == pytest.approx(0.05 - MAP_HALF) and float(clip["t_high"]) == pytest.approx(
        0.05 + MAP_HALF
    )
    assert clip["bootstrap_low"] == clip["bootstrap_high"] == ""
    base = rows[("Baseline", "mAP")]
    assert base["run_ids"].split(";")[0] == ids["base1"] and base["baseline"] == base["pairs"] == ""
    svll = rows[("SVLL-ReID", "rank1")]
    assert (svll["pairs"], svll["diff_mean"], svll["t_low"]) == ("0", "", "")

    tex = (tmp_path / "report.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"    Arm & Settings & $n$ & mAP & rank-1 & mINP \\" in tex
    assert (r"    Baseline & method.name=baseline ssl.name=none ssl.weight=0.0 & 3 & $20.00 \pm 10.00$ & "
            r"$40.00 \pm 20.00$ & $10.00 \pm 5.00$ \\") in tex
    assert (
        r"    SVLL lang. only (λ\_vis = 0 \& 100\%) & method.name=clipreid ssl.name=simclr ssl.weight=0 & 1 & $12.00$"
        in tex
    )
    assert r"    CLIP-ReID & mAP & 3 & $+5.00$ & $[-2.45, +12.45]$ \\" in tex

    with Image.open(tmp_path / "report.png") as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 200
        image.verify()


def test_parent_selection_is_recursive_and_the_report_is_logged_to_the_parent(
    study_store: Store, tmp_path: Path, capsys
) -> None:
    parent = study_store.ids["P"]
    out = report(study_store, capsys, "--parent", parent, "--metrics", "mAP", "--out", str(tmp_path))
    # CLIP-ReID's seed 3 sits under Q, a sweep nested in P.
    assert "| method.name=clipreid | 3 | 1, 2, 3 | 25.00 ± 11.79 |" in out
    assert "| method.name=baseline | 3 | 1, 2, 3 | 20.00 ± 10.00 |" in out
    assert out.startswith(f"MLflow runs under parent {parent} (P) in experiment `study`")
    logged = {a.path: a.file_size for a in study_store.client.list_artifacts(parent, "report")}
    assert sorted(logged) == ["report/report.csv", "report/report.md", "report/report.png", "report/report.tex"]
    assert all(size > 0 for size in logged.values())
    local = study_store.client.download_artifacts(parent, "report/report.md", str(tmp_path / "download"))
    assert Path(local).read_text() == out


def test_log_to_a_new_run_which_later_reports_leave_out(study_store: Store, capsys) -> None:
    before = report(study_store, capsys, "--experiment", "study", "--metrics", "mAP")
    report(study_store, capsys, "--experiment", "study", "--metrics", "mAP", "--log-to", "new")
    made = study_store.client.search_runs([study_store.experiments["study"]], "tags.`reid.report` = '1'")
    assert len(made) >= 1
    assert (
        sorted(a.path for a in study_store.client.list_artifacts(made[0].info.run_id, "report"))[0]
        == "report/report.csv"
    )
    assert report(study_store, capsys, "--experiment", "study", "--metrics", "mAP") == before


def test_filter_is_passed_to_mlflow(study_store: Store, capsys) -> None:
    out = report(
        study_store, capsys, "--experiment", "study", "--filter", "params.`ssl.name` = 'simclr'", "--metrics", "mAP"
    )
    assert "3 FINISHED run(s) in 2 arm(s)" in out and "matching `params.`ssl.name` = 'simclr'`" in out
    assert "| ssl.weight=0 | 1 | 1 | 12.00 |" in out and "| ssl.weight=0.8 | 2 | 4, 5 | 45.00 ± 7.07 |" in out


def test_trials_and_failed_runs_when_asked_for(study_store: Store, capsys) -> None:
    out = report(study_store, capsys, "--experiment", "study", "--include-trials", "--include-failed",
                 "--label", "method.name=baseline:Baseline", "--metrics", "mAP")
    assert "10 FINISHED run(s) in 5 arm(s)" in out
    assert "| method.name=clipreid ssl.name=none loss.id_weight=0.6471 ssl.weight=0.0 | 1 | 1 | 99.00 |" in out
    assert f"| {study_store.ids['failed'][:8]} | failed | FAILED | Baseline | 4 |" in out
    assert "25.00 ± 11.79" in out  # the trial is an arm of its own, not a fourth seed of CLIP-ReID


def test_readme_block_is_replaced(study_store: Store, tmp_path: Path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold table\n<!-- results:end -->\noutro\n")
    out = report(study_store, capsys, "--experiment", "study", "--metrics", "mAP", "--readme", str(readme))
    assert readme.read_text() == f"intro\n<!-- results:start -->\n{out}<!-- results:end -->\noutro\n"


def test_default_store_is_the_projects(tmp_path: Path) -> None:
    from reid.inference import default_tracking_uri as inference_default

    assert default_tracking_uri() == inference_default()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reid.report", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_help_lists_the_options() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for option in ("--experiment", "--parent", "--filter", "--tracking-uri", "--include-failed", "--include-trials",
                   "--ignore", "--label", "--labels", "--metrics", "--baseline", "--bootstrap", "--out", "--log-to",
                   "--readme"):
        assert option in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--experiment", "nope"], "no MLflow experiment 'nope' in {uri} (experiments there: Default, only_failed, study)"),
    (["--experiment", "only_failed"], "no FINISHED training runs selected from experiment `only_failed` in {uri} "
                                      "(left out 1 FAILED/KILLED run(s) (--include-failed lists them))"),
    (["--experiment", "study", "--baseline", "Nope", "--metrics", "mAP"],
     "unknown baseline arm 'Nope' (arms: 'method.name=baseline ssl.name=none ssl.weight=0.0', "
     "'method.name=clipreid ssl.name=none ssl.weight=0.0', 'method.name=clipreid ssl.name=simclr ssl.weight=0', "
     "'method.name=clipreid ssl.name=simclr ssl.weight=0.8')"),
    (["--experiment", "study", "--metrics", "mAP,val/mAP"],
     "no selected run has the metric 'val/mAP' (their metrics: mAP, mINP, rank1)"),
    (["--parent", "0" * 32], "no MLflow run '00000000000000000000000000000000' in {uri}"),
    (["--label", "method.name=baseline"], "label 'method.name=baseline' is not KEY=VALUE[,KEY=VALUE...]:NAME"),
    (["--experiment", "study", "--readme", "{tmp}/plain.md"], "{tmp}/plain.md needs the markers <!-- results:start --> "
                                                              "and <!-- results:end -->, in that order"),
], ids=["unknown-experiment", "no-finished-runs", "unknown-baseline", "unknown-metric", "unknown-parent", "bad-label",
        "readme-without-markers"])
def test_bad_input_is_one_error_line_and_exit_status_2(
    study_store: Store, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "plain.md").write_text("no markers\n")
    done = cli("--tracking-uri", study_store.uri, *(a.format(tmp=tmp_path) for a in args))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: " + message.format(uri=study_store.uri, tmp=tmp_path)]


def test_a_store_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    done = cli("--tracking-uri", f"sqlite:///{tmp_path}/typo.db")
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: no MLflow store at {tmp_path}/typo.db (tracking URI sqlite:///{tmp_path}/typo.db)"
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--filter", "params.x ~ 1"], "MLflow rejected the filter 'params.x ~ 1': "),
        (["--log-to", "0123"], "no MLflow run '0123' in {uri} to log the report to"),
        (
            ["--baseline", "ssl.name=none"],
            "baseline 'ssl.name=none' matches 2 arms ('method.name=baseline ssl.name=none "
            "ssl.weight=0.0', 'method.name=clipreid ssl.name=none ssl.weight=0.0'); be more specific",
        ),
        (["--labels", "{tmp}/missing.json"], "labels file {tmp}/missing.json not found"),
        (["--bootstrap", "-1"], "--bootstrap must be >= 0, got -1"),
    ],
    ids=["filter-rejected", "unknown-log-to-run", "ambiguous-baseline", "missing-labels-file", "negative-bootstrap"],
)
def test_more_bad_input_in_process(study_store: Store, tmp_path: Path, capsys, args: list[str], message: str) -> None:
    argv = ["--tracking-uri", study_store.uri, "--experiment", "study", "--metrics", "mAP"]
    assert main(argv + [a.format(tmp=tmp_path) for a in args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: " + message.format(uri=study_store.uri, tmp=tmp_path))
    assert captured.err.count("\n") == 1


def test_a_whole_report_imports_neither_hydra_omegaconf_nor_torch(study_store: Store, tmp_path: Path) -> None:
    # The library takes plain values (no Hydra below the entry points); the command stays quick without torch.
    code = (
        "import sys; from reid.report import main; "
        f"code = main(['--tracking-uri', {study_store.uri!r}, '--experiment', 'study', '--baseline', "
        f"'method.name=baseline', '--bootstrap', '100', '--out', {str(tmp_path)!r}]); "
        "print(code, sorted(m for m in ('hydra', 'omegaconf', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr[-2000:]
