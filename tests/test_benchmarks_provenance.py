"""The benchmarks' one provenance helper (``benchmarks/_machine.py``): the command, the machine and the date
every page cites, and that every page writer takes them from it."""

import re
import sys
from pathlib import Path

from _scripts import load_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
machine = load_script(BENCHMARKS / "_machine.py", "_machine")


def test_the_command_is_the_one_typed_without_the_page_only_notes():
    argv = ["--report-only", "--note", "a --note inside", "--out", "my page.md", "--note", "two"]
    assert machine.command("benchmarks/x.py", argv) == "python benchmarks/x.py --report-only --out 'my page.md'"
    assert machine.command("benchmarks/x.py", []) == "python benchmarks/x.py"
    sys_argv = sys.argv
    try:
        sys.argv = ["x.py", "--quick"]
        assert machine.command("benchmarks/x.py") == "python benchmarks/x.py --quick"  # None: this process's
    finally:
        sys.argv = sys_argv


def test_the_machine_the_software_and_the_time():
    import platform

    import torch

    described = machine.machine()
    cpu, software = described.split("; ")
    assert cpu.startswith(machine.cpu_model() + ", ")
    assert re.search(r", \d+ cores, \d+ torch threads", cpu)
    assert software == machine.software() == f"Python {platform.python_version()}, torch {torch.__version__}"
    assert machine.software(", numpy 2") == software + ", numpy 2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", machine.written())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", machine.today())


def test_relative_paths_inside_the_repository_only(tmp_path):
    assert str(machine.relative(machine.ROOT / "docs" / "results" / "x.json")) == "docs/results/x.json"
    assert machine.relative(tmp_path / "x.json") == tmp_path / "x.json"


def test_provenance_lines_cite_command_machine_software_and_date():
    lines = machine.provenance("benchmarks/x.py", ["--rows", "3", "--note", "n"], " (shared)", ", pandas 3")
    keys = [line.split(":", 1)[0] for line in lines if line]
    assert keys == ["- command", "- machine", "- software", "- date"]
    assert lines[0] == "- command: `python benchmarks/x.py --rows 3`" and lines[1].endswith(" (shared)")
    assert lines[2].endswith(", pandas 3") and lines[-1] == ""


def test_every_page_writer_takes_its_provenance_from_the_helper():
    """No benchmark quotes its own command line, formats its own date or software line, or describes its
    own machine; each that writes a page imports them from ``_machine``. Fails if a page writer calls
    ``shlex`` or ``datetime`` itself, or defines its own ``machine()``."""
    writers = []
    for path in sorted(BENCHMARKS.glob("*.py")):
        if path.name == "_machine.py":
            continue
        text = path.read_text()
        assert not re.search(r"^\s*(from datetime import|import datetime|import shlex)", text, re.M), path.name
        assert "def machine(" not in text and "def cpu_model(" not in text, path.name
        if "- command:" in text or "provenance(" in text:  # it writes a page
            writers.append(path.name)
            assert "platform.python_version" not in text, path.name
            assert re.search(r"^from _machine import ", text, re.M), path.name
    assert set(writers) == {"forecast_cost.py", "forecast_memory.py", "forecast_real_report.py", "frames.py",
                            "pendulum_data.py", "pendulum_probe.py", "pendulum_report.py", "scan.py", "selective_scan.py",
                            "streaming.py"}
