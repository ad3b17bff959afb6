"""Runs -> arms: which params make an arm, how arms are labelled and named, which run of a seed counts."""
from __future__ import annotations

import pytest

from reid.reporting import ReportError
from reid.reporting.grouping import group_runs, varying_keys
from reid.reporting.labels import LabelRule, load_label_file, parse_label_spec, parse_settings
from reid.reporting.records import RunRecord
from tests.report.store import BASELINE, CLIPREID, LANG_ONLY, SVLL, training_params


def run(n: int, seed: int, settings: dict[str, str], start: int | None = None, **extra: str) -> RunRecord:
    return RunRecord(run_id=f"{n:032x}", name=f"r{n}", status="FINISHED", start_time=n if start is None else start,
                     params={**training_params(n, seed, "x", **settings), **extra})


def four_arms() -> list[RunRecord]:
    runs, n = [], 0
    for settings, seeds in ((BASELINE, (1, 2, 3)), (CLIPREID, (1, 2)), (SVLL, (4,)), (LANG_ONLY, (1,))):
        for seed in seeds:
            n += 1
            runs.append(run(n, seed, settings, **{"override.seed": str(seed)} if n % 2 else {}))
    return runs


def test_the_arm_key_is_what_varies_except_seed_paths_logger_and_override_params() -> None:
    # paths.output_dir and override.seed differ on every run, the logger params and dataset.name on none.
    assert varying_keys(four_arms(), ("seed", "paths.*", "logger.*", "override.*", "optuna_storage")) == [
        "loss.id_weight", "method.name", "ssl.name", "ssl.weight",
    ]
    grouping = group_runs(four_arms())
    assert grouping.keys == ["loss.id_weight", "method.name", "ssl.name", "ssl.weight"]
    assert [len(a.runs) for a in grouping.arms] == [3, 2, 1, 1]


def test_labels_use_the_fewest_params_that_tell_the_arms_apart_group_names_first() -> None:
    # loss.id_weight moves with method.name, so it adds nothing; arms sort by those values (0 before 0.8).
    grouping = group_runs(four_arms())
    assert grouping.label_keys == ["method.name", "ssl.name", "ssl.weight"]
    assert [a.label for a in grouping.arms] == [
        "method.name=baseline ssl.name=none ssl.weight=0.0",
        "method.name=clipreid ssl.name=none ssl.weight=0.0",
        "method.name=clipreid ssl.name=simclr ssl.weight=0",
        "method.name=clipreid ssl.name=simclr ssl.weight=0.8",
    ]


def test_numbers_are_compared_by_value() -> None:
    # ssl.weight logged as 0 by one run (an override) and 0.0 by another (the config) is one setting.
    runs = [run(1, 1, LANG_ONLY), run(2, 2, {**LANG_ONLY, "ssl.weight": "0.0"}), run(3, 1, SVLL)]
    grouping = group_runs(runs)
    assert grouping.keys == ["ssl.weight"]
    assert [sorted(a.runs) for a in grouping.arms] == [["1", "2"], ["1"]]


def test_a_param_a_run_lacks_is_a_value_of_its_own() -> None:
    runs = [run(1, 1, BASELINE), run(2, 1, {**BASELINE, "speed.compile": "True"})]
    assert [a.label for a in group_runs(runs).arms] == ["speed.compile=<unset>", "speed.compile=True"]


def test_ignore_takes_more_params_and_patterns_out_of_the_key() -> None:
    runs = [run(1, 1, {**BASELINE, "num_workers": "2", "speed.compile": "False"}),
            run(2, 2, {**BASELINE, "num_workers": "8", "speed.compile": "True"})]
    assert len(group_runs(runs).arms) == 2
    grouping = group_runs(runs, ignore=["num_workers", "speed.*"])
    assert [a.label for a in grouping.arms] == ["all runs"] and sorted(grouping.arms[0].runs) == ["1", "2"]


def test_a_rerun_of_a_seed_replaces_the_earlier_run_and_says_so() -> None:
    first, again, other = run(1, 1, BASELINE, start=10), run(2, 1, BASELINE, start=20), run(3, 2, BASELINE, start=5)
    grouping = group_runs([again, other, first])
    arm = grouping.arms[0]
    assert arm.runs["1"] is again and arm.seeds == ["1", "2"]
    assert grouping.notes == [
        f"all runs, seed 1: run {again.short_id} is a re-run; it replaces the earlier run {first.short_id}"
    ]


def test_seeds_sort_as_numbers() -> None:
    grouping = group_runs([run(i, seed, BASELINE) for i, seed in enumerate((10, 2, 1))])
    assert grouping.arms[0].seeds == ["1", "2", "10"]


def test_runs_without_a_seed_are_left_out_with_a_note() -> None:
    seedless = RunRecord(run_id="f" * 32, name="x", status="FINISHED", start_time=0, params={"method.name": "baseline"})
    grouping = group_runs([run(1, 1, BASELINE), seedless])
    assert len(grouping.arms) == 1
    assert grouping.notes == ["left out 1 run(s) without a `seed` param (not training runs): ffffffff"]


def test_label_rules_name_arms_most_specific_first_and_order_the_table() -> None:
    rules = [
        parse_label_spec("ssl.name=simclr:SVLL-ReID"),
        parse_label_spec("ssl.name=simclr,ssl.weight=0:Language only"),
        parse_label_spec("method.name=baseline:Baseline"),
        parse_label_spec("method.name=nothing:Unused"),
    ]
    grouping = group_runs(four_arms(), labels=rules)
    assert [a.label for a in grouping.arms] == [
        "SVLL-ReID", "Language only", "Baseline", "method.name=clipreid ssl.name=none ssl.weight=0.0",
    ]
    assert grouping.notes == ["1 label(s) matched no arm here: 'Unused'"]


def test_a_label_that_fits_two_arms_is_an_error() -> None:
    with pytest.raises(ReportError, match=r"label 'CLIP-ReID' matches 3 arms \(method.name=clipreid ssl.name=none"):
        group_runs(four_arms(), labels=[parse_label_spec("method.name=clipreid:CLIP-ReID")])


def test_two_equally_specific_labels_for_one_arm_are_an_error() -> None:
    rules = [parse_label_spec("method.name=baseline:A"), parse_label_spec("ssl.name=none,method.name=baseline:B"),
             parse_label_spec("loss.id_weight=1,ssl.name=none:C")]
    with pytest.raises(ReportError, match="labels 'B', 'C' match the same arm equally well"):
        group_runs(four_arms(), labels=rules)


def test_label_specs_and_files_parse_to_the_same_rules(tmp_path) -> None:
    path = tmp_path / "labels.json"
    path.write_text('{"Erase": {"ssl.vision.erase_area": [0.33, 0.3333333333], "ssl.weight": 0, "x": true}}')
    spec = parse_label_spec("ssl.vision.erase_area=[0.33, 0.3333333333],ssl.weight=0,x=True: Erase")
    assert load_label_file(path) == [spec] == [LabelRule("Erase", (
        ("ssl.vision.erase_area", "[0.33, 0.3333333333]"), ("ssl.weight", "0"), ("x", "True")))]
    assert spec.matches({"ssl.vision.erase_area": "[0.33, 0.3333333333]", "ssl.weight": "0.0", "x": "True"})


@pytest.mark.parametrize("spec, message", [
    ("method.name=baseline", "is not KEY=VALUE[,KEY=VALUE...]:NAME"),
    ("method.name=baseline:", "is not KEY=VALUE[,KEY=VALUE...]:NAME"),
    ("method.name:Baseline", "'method.name' is not KEY=VALUE"),
])
def test_bad_label_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ReportError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_label_spec(spec)


def test_bad_label_files_say_what_is_wrong(tmp_path) -> None:
    with pytest.raises(ReportError, match="labels file .*missing.json not found"):
        load_label_file(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text('["a"]')
    with pytest.raises(ReportError, match='must hold {"name": {"param.key": value, ...}, ...}'):
        load_label_file(tmp_path / "list.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ReportError, match="is not valid JSON"):
        load_label_file(tmp_path / "bad.json")


def test_settings_split_on_top_level_commas_only() -> None:
    assert parse_settings("a=[1, 2],b=x") == (("a", "[1, 2]"), ("b", "x"))
