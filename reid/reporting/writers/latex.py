"""The report as LaTeX tables (booktabs: ``\\usepackage{booktabs}``), every text cell escaped."""
from __future__ import annotations

from reid.reporting.summary import Report
from reid.reporting.writers import formatting as fmt

_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def escape(text: object) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def _math(text: str) -> str:
    """A formatted number (or "a ± b", "[a, b]") in math mode; dashes and n/a stay text."""
    if text == fmt.DASH or text.startswith("n/a"):
        return escape(text)
    return "$" + text.replace("±", r"\pm") + "$"


def _row(cells: list[str]) -> str:
    return "    " + " & ".join(cells) + r" \\"


def summary_table(report: Report) -> list[str]:
    cols = "l" + ("l" if report.named else "") + "r" + "r" * len(report.metrics)
    head = [
        "Arm",
        *(["Settings"] if report.named else []),
        "$n$",
        *(escape(fmt.metric_title(m)) for m in report.metrics),
    ]
    lines = [
        r"\begin{table}[t]", r"  \centering",
        rf"  \caption{{Mean $\pm$ sample standard deviation over seeds{escape(fmt.unit_phrase(report.metrics))}.}}",
        rf"  \begin{{tabular}}{{{cols}}}", r"    \toprule", _row(head), r"    \midrule",
    ]
    for a in report.arms:
        cells = [escape(a.label), *([escape(a.arm.settings_label or fmt.DASH)] if report.named else []), str(a.n)]
        cells += [_math(fmt.mean_std(m, a.metrics[m])) for m in report.metrics]
        lines.append(_row(cells))
    lines += [r"    \bottomrule", r"  \end{tabular}", r"\end{table}"]
    return lines


def comparison_table(report: Report) -> list[str]:
    level = escape(fmt.percent(report.confidence))
    head = [
        "Arm",
        "Metric",
        "pairs",
        r"$\Delta$ mean",
        f"{level} CI (t)",
        *([f"{level} CI (bootstrap)"] if report.bootstrap else []),
    ]
    lines = [
        r"\begin{table}[t]", r"  \centering",
        rf"  \caption{{Paired differences against {escape(report.baseline)} (arm $-$ baseline over shared seeds).}}",
        rf"  \begin{{tabular}}{{ll{'r' * (len(head) - 2)}}}", r"    \toprule", _row(head), r"    \midrule",
    ]
    for c in report.comparisons:
        d = c.difference
        cells = [escape(c.arm), escape(fmt.metric_title(c.metric)), str(d.n)]
        if d.n == 0:
            cells += [escape(fmt.NO_PAIRS), escape(fmt.DASH), *([escape(fmt.DASH)] if report.bootstrap else [])]
        else:
            cells += [_math(fmt.number(c.metric, d.mean, signed=True)), _math(fmt.interval(c.metric, d.t, d.n))]
            cells += [_math(fmt.interval(c.metric, d.bootstrap, d.n))] if report.bootstrap else []
        lines.append(_row(cells))
    lines += [r"    \bottomrule", r"  \end{tabular}", r"\end{table}"]
    return lines


def render_latex(report: Report) -> str:
    lines = [f"% python -m reid.report: {report.source}", r"% needs \usepackage{booktabs}", *summary_table(report)]
    if report.baseline is not None:
        lines += ["", *comparison_table(report)]
    return "\n".join(lines) + "\n"
