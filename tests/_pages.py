"""Read a benchmark page's structure: its headings, its tables and its "- key: value" items.

Tests of a benchmark check the numbers and the structure of its page with these, not the wording
of its sentences.
"""

from __future__ import annotations

import re


def headings(text: str) -> list[str]:
    """The markdown headings, with their hashes ("## Sampling shift")."""
    return [line for line in text.splitlines() if re.match(r"#+ ", line)]


def cells(line: str) -> list[str]:
    """The cells of a table row, stripped."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def tables(text: str) -> list[tuple[str, list[dict]]]:
    """Every table: the heading above it ("" before the first) and its rows as {column: cell}."""
    out, heading, lines = [], "", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"#+ ", line):
            heading = line
        elif line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|(-+\|)+", lines[i + 1].strip()):
            columns, rows, i = cells(line), [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(dict(zip(columns, cells(lines[i]))))
                i += 1
            out.append((heading, rows))
            continue
        i += 1
    return out


def table(text: str, heading: str | None = None) -> list[dict]:
    """The rows of the first table under a heading that starts with ``heading`` (None: the first table)."""
    for under, rows in tables(text):
        if heading is None or under.startswith(heading):
            return rows
    raise AssertionError(f"no table under {heading!r}")


def row(rows: list[dict], **match) -> dict:
    """The one row whose cells equal ``match`` (column names with spaces: pass a dict with ``**``)."""
    hits = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, f"{len(hits)} rows match {match}"
    return hits[0]


def items(text: str) -> dict[str, list[str]]:
    """The top-level "- key: value" list items (key of up to four words), key -> values in page order."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"- ([\w /'-]{1,40}?): (.*)", line)
        if m and len(m.group(1).split()) <= 4:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def bullets(text: str, heading: str) -> list[str]:
    """The list items (without "- ") under a heading (or a "Notes:" line), up to the next heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    out = []
    for line in lines[start + 1:]:
        if re.match(r"#+ ", line):
            break
        if line.startswith("- "):
            out.append(line[2:])
    return out


def numbers(cell: str) -> list[float]:
    """Every number in a cell, in order ("1.86 (2.00, 1.75)" -> [1.86, 2.0, 1.75]); a minus sign right
    after a digit is a range's dash ("1.75-2.00" -> [1.75, 2.0])."""
    return [float(v) for v in re.findall(r"(?<![\d.])-?\d+(?:\.\d+)?(?:e-?\d+)?", cell)]
