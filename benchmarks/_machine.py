"""What every benchmark page records about how it was made: the command, the machine and the date.

Runners store ``machine()`` in each run's record; page writers build their provenance lines from
``command()``, ``machine()`` or ``cpu_model()``, ``software()`` and ``written()``/``today()``, so
every page says these things the same way.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE_ONLY = ("--note",)  # options that only add text to a page, left out of the command it cites


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def software(extra: str = "") -> str:
    """``Python <version>, torch <version>`` followed by ``extra`` (e.g. ``", pandas 3.0"``)."""
    import torch

    return f"Python {platform.python_version()}, torch {torch.__version__}{extra}"


def machine() -> str:
    """The machine a run is recorded on: CPU, cores, torch threads, the GPU where there is one, and the
    software, e.g. ``"AMD EPYC, 2 cores, 1 torch threads; Python 3.11.7, torch 2.13.0+cpu"``."""
    import torch

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads{gpu}; {software()}"


def command(script: str, argv=None) -> str:
    """The command a page cites: ``python <script> <argv>`` shell-quoted (argv None: this process's
    arguments), without the options that only add text to the page (``--note`` and its value)."""
    given = list(sys.argv[1:] if argv is None else argv)
    kept = [a for i, a in enumerate(given) if a not in PAGE_ONLY and (i == 0 or given[i - 1] not in PAGE_ONLY)]
    return shlex.join(["python", script, *kept])


def relative(path: Path):
    """``path`` relative to the repository root where it lies inside it (as a page cites it), else as given."""
    resolved = Path(path).resolve()
    return resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else path


def written() -> str:
    """The time a page is written, to the minute: ``2026-12-06 20:32 UTC``."""
    return f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"


def today() -> str:
    """The date a page is written: ``2026-12-06``."""
    return datetime.now(timezone.utc).date().isoformat()


def provenance(script: str, argv, machine_note: str, software_extra: str = "") -> list[str]:
    """The lines under a benchmark table: the command (``python <script> <argv>``; argv None: this
    process's arguments), the machine, the software and the date."""
    return [
        f"- command: `{command(script, argv)}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores{machine_note}",
        f"- software: {software(software_extra)}",
        f"- date: {written()}",
        "",
    ]


def write_report(path: Path, lines: list[str]) -> None:
    """Write a benchmark's page (creating its folder) and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print("\n".join(lines))
