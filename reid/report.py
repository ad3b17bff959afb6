"""Results tables from MLflow runs: one arm per setting (every param but the seed), mean ± std over seeds, and
paired differences against a baseline arm with a confidence interval.

    python -m reid.report --experiment synthetic_study --baseline method.name=baseline --out outputs/report
    python -m reid.report --parent <sweep parent run id> --bootstrap 10000      # the report lands on the parent
    python -m reid.report --filter "tags.dataset = 'market1501'" --metrics mAP,rank1,val/mAP

docs/report.md describes what is grouped, what is left out, and each output.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import reid
from reid.reporting.errors import ReportError
from reid.reporting.grouping import DEFAULT_IGNORE
from reid.reporting.labels import LabelRule, load_label_file, parse_label_spec
from reid.reporting.selection import DEFAULT_EXPERIMENT
from reid.reporting.summary import DEFAULT_METRICS

# The project root (the folder holding conf/ and reid/), as reid.inference.PROJECT_ROOT, without importing torch.
PROJECT_ROOT = Path(reid.__file__).resolve().parent.parent
FILES = ("report.md", "report.csv", "report.tex", "report.png")


def default_tracking_uri() -> str:
    """The store ``logger=mlflow`` writes to by default (conf/logger/mlflow.yaml), as reid.inference gives it."""
    return f"sqlite:///{PROJECT_ROOT}/mlflow.db"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reid.report",
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="Exit status: 0 done, 2 bad input (one line 'error: ...' on stderr). Details: docs/report.md.",
    )
    sel = parser.add_argument_group("which runs (only FINISHED runs are averaged)")
    sel.add_argument("--experiment", metavar="NAME", help=f"MLflow experiment (default: {DEFAULT_EXPERIMENT!r}; "
                     "with --parent: the parent's)")
    sel.add_argument(
        "--parent", metavar="RUN_ID", help="only the runs nested under this sweep parent run, at any depth"
    )
    sel.add_argument(
        "--filter", metavar="STRING", help="MLflow search filter, passed through, e.g. \"tags.dataset = 'market1501'\""
    )
    sel.add_argument("--tracking-uri", metavar="URI", help=f"MLflow store (default: {default_tracking_uri()})")
    sel.add_argument(
        "--include-failed", action="store_true", help="list FAILED/KILLED runs in a table of their own (never averaged)"
    )
    sel.add_argument(
        "--include-trials",
        action="store_true",
        help="keep Optuna trial runs (left out by default; each trial is an arm)",
    )

    grp = parser.add_argument_group("arms (runs grouped by every param whose value differs, except the seed)")
    grp.add_argument("--ignore", metavar="KEY", action="append", default=[],
                     help="also ignore this param when grouping (repeatable; shell patterns: 'speed.*'); "
                          f"always ignored: {', '.join(DEFAULT_IGNORE)}")
    grp.add_argument("--label", metavar="KEY=VALUE[,KEY=VALUE...]:NAME", action="append", default=[],
                     help="name the arm with these settings (repeatable; table order = label order)")
    grp.add_argument("--labels", metavar="FILE", type=Path,
                     help='JSON file {"NAME": {"param.key": value, ...}, ...}; read before --label')

    st = parser.add_argument_group("statistics")
    st.add_argument("--metrics", default=",".join(DEFAULT_METRICS), metavar="LIST",
                    help="comma-separated final metrics (default: %(default)s; validation ones: val/mAP ...)")
    st.add_argument(
        "--baseline", metavar="ARM", help="paired differences against this arm: its label or KEY=VALUE[,KEY=VALUE...]"
    )
    st.add_argument(
        "--confidence", type=float, default=0.95, metavar="LEVEL", help="interval level (default: %(default)s)"
    )
    st.add_argument(
        "--bootstrap", type=int, default=0, metavar="N", help="also a percentile bootstrap interval from N resamples"
    )
    st.add_argument(
        "--bootstrap-seed",
        type=int,
        default=0,
        metavar="SEED",
        help="the bootstrap's random seed (default: %(default)s)",
    )

    out = parser.add_argument_group("output (the Markdown report is always printed)")
    out.add_argument("--out", type=Path, metavar="DIR", help="write report.md, report.csv, report.tex, report.png here")
    out.add_argument("--log-to", metavar="RUN_ID",
                     help="log the four files to this run's artifacts (report/); 'new': a new run made for it; "
                          "'none': nowhere (default: the --parent run when given, else none)")
    out.add_argument("--readme", type=Path, metavar="PATH",
                     help="replace the block between <!-- results:start --> and <!-- results:end --> in this file")
    return parser


def label_rules(args: argparse.Namespace) -> list[LabelRule]:
    rules = load_label_file(args.labels) if args.labels else []
    return rules + [parse_label_spec(spec) for spec in args.label]


def run(args: argparse.Namespace) -> str:
    """Everything the command does; returns the Markdown it prints."""
    from reid.reporting.artifacts import create_report_run, log_files
    from reid.reporting.selection import select_runs
    from reid.reporting.summary import build_report
    from reid.reporting.writers import render_latex, render_markdown, replace_block, save_plot, write_csv

    rules = label_rules(args)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.bootstrap < 0:
        raise ReportError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    uri = args.tracking_uri or default_tracking_uri()
    selection = select_runs(
        uri, experiment=args.experiment, parent=args.parent, filter_string=args.filter,
        include_failed=args.include_failed, include_trials=args.include_trials,
    )
    report = build_report(
        selection.runs, source=f"MLflow {selection.scope} ({uri})", metrics=metrics, ignore=args.ignore,
        labels=rules, baseline=args.baseline, confidence=args.confidence, bootstrap=args.bootstrap,
        bootstrap_seed=args.bootstrap_seed, failed=selection.failed, study_parents=selection.study_parents,
        notes=selection.notes,
    )
    markdown = render_markdown(report)
    log_to = args.log_to or args.parent
    log_to = None if log_to == "none" else log_to
    if args.out or log_to:
        with tempfile.TemporaryDirectory(prefix="reid-report-") as scratch:
            folder = args.out or Path(scratch)
            folder.mkdir(parents=True, exist_ok=True)
            paths = [folder / name for name in FILES]
            paths[0].write_text(markdown)
            write_csv(report, paths[1])
            paths[2].write_text(render_latex(report))
            save_plot(report, paths[3])
            if args.out:
                print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
            if log_to:
                if log_to == "new":
                    log_to = create_report_run(uri, selection.experiment_id, selection.scope)
                log_files(uri, log_to, paths)
                print(f"logged the report to MLflow run {log_to} (artifacts report/)", file=sys.stderr)
    if args.readme:
        replace_block(args.readme, markdown)
        print(f"replaced the results block of {args.readme}", file=sys.stderr)
    return markdown


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        markdown = run(args)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
