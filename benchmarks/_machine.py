"""What every benchmark records about the machine it ran on."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def provenance(script: str, argv, machine_note: str, software_extra: str = "") -> list[str]:
    """The lines under a benchmark table: the command (``python <script> <argv>``; argv None: this
    process's arguments), the machine, the software and the date."""
    import shlex
    import sys

    import torch

    command = f"python {script} {shlex.join(sys.argv[1:] if argv is None else argv)}".strip()
    return [
        f"- command: `{command}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores{machine_note}",
        f"- software: Python {platform.python_version()}, torch {torch.__version__}{software_extra}",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
    ]


def write_report(path: Path, lines: list[str]) -> None:
    """Write a benchmark's page (creating its folder) and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print("\n".join(lines))
