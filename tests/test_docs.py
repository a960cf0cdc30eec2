"""Every Python block of README.md and docs/*.md runs, in order, one namespace per page.

A block that cannot run starts with a line ``# not run: <reason>`` and is skipped. The blocks run
in a temporary working directory, so paths they write (``runs/...``) land there.
"""

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[str]:
    return [textwrap.dedent(body) for _, body in _BLOCK.findall(text)]


def test_the_extractor_finds_indented_blocks():
    page = "x\n```python\na = 1\n```\n- item\n\n  ```python\n  b = a + 1\n  ```\n"
    assert python_blocks(page) == ["a = 1\n", "b = a + 1\n"]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p.read_text())],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_page_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"snippets_of_{page.stem}"}
    for i, block in enumerate(python_blocks(page.read_text())):
        if block.lstrip().startswith("# not run:"):
            continue
        try:
            exec(compile(block, f"{page.name}, block {i + 1}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - report which block of which page failed
            raise AssertionError(f"{page.relative_to(ROOT)} block {i + 1} failed: {exc!r}\n{block}") from exc
