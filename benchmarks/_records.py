"""Benchmark records in a JSON list: add one, replacing an earlier record with the same key."""

from __future__ import annotations

import json
import os
from pathlib import Path


def upsert_record(path: Path, record: dict, key) -> None:
    """Add ``record`` to the JSON list at ``path``, dropping records with the same ``key(record)``.

    The file is re-read first and replaced atomically through a file of this process's own, since
    several processes may add records to the same file.
    """
    records = json.loads(path.read_text()) if path.exists() else []
    records = [r for r in records if key(r) != key(record)] + [record]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(records, indent=1))
    tmp.replace(path)
