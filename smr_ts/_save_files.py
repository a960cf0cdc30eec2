"""The two files of a save: written atomically inside their folder, read back and checked.

A save is atomic per file and stays inside its folder: each file is written in full to a new
temporary file beside it and then renamed over the old one (``os.replace``), so a save that fails
leaves the previous one as it was, and a link planted in the folder is replaced, never written
through. Reading names the file at fault: missing, truncated, edited, or not tensors only.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
from pathlib import Path

import numpy as np
import torch

__all__ = ["RESAVE", "jsonable", "read_files", "version_tuple", "write_files"]


def write_files(files: list[tuple[Path, bytes]]) -> None:
    """Write each (file, bytes) in full to a new file beside it, then rename each over its file. A new
    name opened with O_EXCL never follows a link, and a rename replaces a link instead of its target."""
    temporaries = []
    try:
        for file, data in files:
            temporary = file.with_name(f".{file.name}.{secrets.token_hex(8)}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            temporaries.append(temporary)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        for (file, _), temporary in zip(files, temporaries):
            os.replace(temporary, file)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


RESAVE = "save the model again with SMRForecaster.save, or copy both files of one save"


def read_files(path: Path) -> tuple[dict, dict, bytes]:
    """config.json and weights.pt of ``path``, each checked, with errors that name the file; and the
    weights file's bytes."""
    config, weights = path / "config.json", path / "weights.pt"
    for file in (config, weights):
        if not file.is_file():
            raise FileNotFoundError(f"{file} does not exist: load(path) reads the folder SMRForecaster.save(path) "
                                    "wrote, which holds config.json and weights.pt")
    try:
        state = json.loads(config.read_text())
        if not (isinstance(state.get("params"), dict) and isinstance(state.get("fitted"), dict)):
            raise ValueError("it has no 'params' and 'fitted' sections")
        if not (isinstance(state.get("version"), str) and version_tuple(state["version"])):
            raise ValueError("it names no smr_ts version")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config} is not a config written by SMRForecaster.save (it may be truncated or "
                         f"edited: {exc}); {RESAVE}") from exc
    data = weights.read_bytes()
    try:
        tensors = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated (OSError, RuntimeError) or not tensors only (UnpicklingError): refused
        raise ValueError(f"{weights} could not be read as a tensors-only weights file (it may be truncated, or "
                         f"not written by SMRForecaster.save; nothing in it was run): {type(exc).__name__}: "
                         f"{exc}; {RESAVE}") from exc
    if not (isinstance(tensors, dict) and all(isinstance(v, torch.Tensor) for v in tensors.values())):
        raise ValueError(f"{weights} does not hold a dict of tensors, so SMRForecaster.save did not write it; {RESAVE}")
    return state, tensors, data


def version_tuple(version: str) -> tuple:
    """(major, minor, patch) of a version string, () if it has none."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(part or 0) for part in match.groups()) if match else ()


def jsonable(value, where: str):
    """``value`` as JSON: numpy scalars and arrays as numbers and lists; anything else JSON cannot hold is
    a ``TypeError`` naming ``where`` it is (e.g. ``history_[3]['key']``, a callback's epoch record)."""
    if isinstance(value, dict):
        keys = [k for k in value if not isinstance(k, str)]
        if keys:  # JSON would turn them into strings, or refuse them
            raise TypeError(f"{where} has a key {keys[0]!r} that is not a string, which config.json cannot hold: "
                            "SMRForecaster.save writes dicts with string keys")
        return {k: jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), where)
    if isinstance(value, np.generic):
        return jsonable(value.item(), where)
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"{where} holds a value of type {type(value).__name__}, which config.json cannot hold: "
                    "SMRForecaster.save writes numbers, strings, lists and dicts (and numpy arrays as lists); "
                    "store another value there, or leave it out")
