"""Load a script (an example or a benchmark) as a module, so tests can call its functions."""

import importlib.util
import sys
from pathlib import Path


def load_script(path: Path, name: str | None = None):
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # registered, as an import would, so its functions pickle (process pools)
    spec.loader.exec_module(module)
    return module
