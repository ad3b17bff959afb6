"""The report as Markdown: what is printed, written to report.md and put into a README's results block."""
from __future__ import annotations

from reid.reporting.summary import Report
from reid.reporting.writers import formatting as fmt


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _row(cells: list[object]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def summary_table(report: Report) -> list[str]:
    head = [
        "Arm",
        *(["Settings"] if report.named else []),
        "n",
        "seeds",
        *(fmt.metric_title(m) for m in report.metrics),
    ]
    align = ["---", *(["---"] if report.named else []), "---:", "---", *("---:" for _ in report.metrics)]
    lines = [_row(head), "|" + "|".join(align) + "|"]
    for a in report.arms:
        cells: list[object] = [
            a.label,
            *([a.arm.settings_label or "–"] if report.named else []),
            a.n,
            ", ".join(a.arm.seeds),
        ]
        for m in report.metrics:
            stats = a.metrics[m]
            text = fmt.mean_std(m, stats)
            cells.append(text if stats.n == a.n else f"{text} (n={stats.n})")
        lines.append(_row(cells))
    return lines


def comparison_table(report: Report) -> list[str]:
    level = fmt.percent(report.confidence)
    head = ["Arm", "Metric", "pairs", "Δ mean", f"{level} CI (t)"]
    if report.bootstrap:
        head.append(f"{level} CI (bootstrap)")
    lines = [_row(head), "|" + "|".join(["---", "---", "---:", "---:", *("---:" for _ in head[4:])]) + "|"]
    for c in report.comparisons:
        d = c.difference
        if d.n == 0:
            cells: list[object] = [c.arm, fmt.metric_title(c.metric), 0, fmt.NO_PAIRS, fmt.DASH]
            cells += [fmt.DASH] if report.bootstrap else []
        else:
            cells = [c.arm, fmt.metric_title(c.metric), d.n, fmt.number(c.metric, d.mean, signed=True),
                     fmt.interval(c.metric, d.t, d.n)]
            cells += [fmt.interval(c.metric, d.bootstrap, d.n)] if report.bootstrap else []
        lines.append(_row(cells))
    return lines


def render_markdown(report: Report) -> str:
    n_runs = sum(a.n for a in report.arms)
    lines = [
        f"{report.source}: {n_runs} FINISHED run(s) in {len(report.arms)} arm(s); "
        f"mean ± sample std over seeds{fmt.unit_phrase(report.metrics)}.",
        "",
        *summary_table(report),
    ]
    if report.baseline is not None:
        boot = (f"; bootstrap: {report.bootstrap} resamples of the pairs, seed {report.bootstrap_seed}"
                if report.bootstrap else "")
        lines += [
            "",
            f"Paired differences against **{_cell(report.baseline)}**: arm − baseline over the seeds both have "
            f"(percentage points for % metrics), {fmt.percent(report.confidence)} intervals (Student t{boot}).",
            "",
            *comparison_table(report),
        ]
    if report.failed:
        lines += ["", "Runs that did not finish (listed, not averaged):", "",
                  _row(["Run", "Name", "Status", "Arm", "seed"]), "|---|---|---|---|---|"]
        lines += [_row([f.run.short_id, f.run.name, f.run.status, f.arm, f.seed]) for f in report.failed]
    if report.studies:
        lines += ["", _row(["Optuna study", "complete trials", "best value", "best trial", "best parameters"]),
                  "|---|---:|---:|---:|---|"]
        for s in report.studies:
            params = ", ".join(
                f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in s.best_params.items()
            )
            best = fmt.DASH if s.best_value is None else fmt.number("mAP", s.best_value)
            lines.append(_row([s.study, fmt.DASH if s.trials_complete is None else s.trials_complete, best,
                               s.best_trial or fmt.DASH, params or fmt.DASH]))
        lines += ["", "Best value: the sweep's objective (mAP, in %, unless the sweep was set up otherwise)."]
    if report.notes:
        lines += ["", "Notes:", *(f"- {n}" for n in report.notes)]
    return "\n".join(lines) + "\n"
