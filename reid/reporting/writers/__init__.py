"""The report's four files (Markdown, CSV, LaTeX, bar plot) and the README results block, from a Report."""
from reid.reporting.writers.csv_file import write_csv
from reid.reporting.writers.latex import render_latex
from reid.reporting.writers.markdown import render_markdown
from reid.reporting.writers.plot import save_plot
from reid.reporting.writers.readme_block import END, START, replace_block

__all__ = ["render_markdown", "write_csv", "render_latex", "save_plot", "replace_block", "START", "END"]
