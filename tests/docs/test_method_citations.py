"""Every "§N" citation of the project's method document resolves to a heading there, and names the file by its path.

Docstrings, config comments and docs cite the method reference as ``docs/<name> §2.2, §12`` (the name is spelled
out in ``METHOD_DOC`` below, never literally in this file, so that the scan over ``tests/`` does not read this file's
own examples as citations). A citation that names a section with no heading would send the next reader nowhere, and
a bare file name without ``docs/`` once pointed at a specification that is not in the repository.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
METHOD_DOC = "docs/" + "method" + ".md"
SCANNED_DIRS = ("reid", "conf", "docs", "benchmarks", "tests", "experiments", "docker")
SCANNED_FILES = ("README.md", "Makefile", "pyproject.toml")
SUFFIXES = {".py", ".yaml", ".yml", ".md", ".txt", ".toml", ".cfg", ".ini", ".sh"}

_NAME = re.compile(re.escape("method" + ".md"))
_SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
_OTHER_DOC = re.compile(r"[\w./-]+\.md\b")  # where a citation of the method document ends: the next named document
_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s")


def headings(text: str) -> list[str]:
    """Section numbers of the Markdown headings that start with one ("## 2. ...", "#### 8.2.6 ...")."""
    return [m.group(1) for line in text.splitlines() if (m := _HEADING.match(line))]


def cited_sections(line: str) -> list[str]:
    """Section numbers cited after each mention of the method document on ``line``, up to the next named document."""
    out: list[str] = []
    for mention in _NAME.finditer(line):
        rest = line[mention.end():]
        other = _OTHER_DOC.search(rest)
        out += _SECTION.findall(rest[: other.start()] if other else rest)
    return out


def bare_mentions(line: str) -> list[int]:
    """Columns where the method document is named other than as ``docs/…`` at the start of a path."""
    bad = []
    for mention in _NAME.finditer(line):
        start = mention.start() - len("docs/")
        if start < 0 or line[start:mention.start()] != "docs/" or (start > 0 and re.match(r"[\w./-]", line[start - 1])):
            bad.append(mention.start())
    return bad


def scanned_files() -> list[Path]:
    files = [ROOT / name for name in SCANNED_FILES if (ROOT / name).is_file()]
    for folder in SCANNED_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                files.append(path)
    return files


def citations() -> list[tuple[str, int, str]]:
    """(file, line number, section) for every citation in the scanned files."""
    found = []
    for path in scanned_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            for section in cited_sections(line):
                found.append((str(path.relative_to(ROOT)), number, section))
    return found


def test_the_parsers_find_what_they_should():
    doc = METHOD_DOC
    assert cited_sections(f"as CLIP-ReID ({doc} §2.2, §12; docs/rn50.md §3)") == ["2.2", "12"]
    assert cited_sections(f"{doc} §7.1/§7.2: stride 12") == ["7.1", "7.2"]
    assert cited_sections(f"see {doc} §11.3.") == ["11.3"]
    assert cited_sections("docs/scaling.md §5 has the commands") == []
    bare = "method" + ".md"
    assert bare_mentions(f"({bare} §4.2)") == [1]
    assert bare_mentions(f"from shared/{doc} §7.1") == [len("from shared/docs/")]
    assert bare_mentions(f"`{doc}` and {doc} §5") == []
    text = "# Title\n## 2. Architecture\n### 2.5 Prompts\n#### 8.2.6 NT-Xent loss\nbody 3.3 text\n"
    assert headings(text) == ["2", "2.5", "8.2.6"]


def test_the_method_document_numbers_each_section_once():
    numbers = headings((ROOT / METHOD_DOC).read_text(encoding="utf-8"))
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not repeated, f"{METHOD_DOC}: section numbers used by more than one heading: {repeated}"
    # The numbering the code cites: the specification's top-level sections 0-13 are all present.
    assert {str(i) for i in range(14)} <= set(numbers)


def test_every_cited_section_is_a_heading_of_the_method_document():
    sections = set(headings((ROOT / METHOD_DOC).read_text(encoding="utf-8")))
    found = citations()
    # The scan must see the citations at all (a broken pattern would pass the check below vacuously).
    assert len(found) > 50, f"only {len(found)} citations found: is the scan broken?"
    assert ("reid/losses/ntxent.py", 1, "8.2.6") in found
    dangling = [f"{file}:{line} §{section}" for file, line, section in found if section not in sections]
    assert not dangling, f"citations of sections that have no heading in {METHOD_DOC}: {dangling}"


def test_every_mention_names_the_document_by_its_path():
    bare = []
    for path in scanned_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if bare_mentions(line):
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not bare, f"mentions of the method document without its path {METHOD_DOC}: {bare}"


def test_the_readme_links_the_method_document():
    assert f"`{METHOD_DOC}`" in (ROOT / "README.md").read_text(encoding="utf-8")
