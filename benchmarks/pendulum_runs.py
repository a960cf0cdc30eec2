"""What a pendulum run is: its configuration, its key in a runs file and the row it makes on the page.

Shared by the runner (``pendulum.py``), the page writer (``pendulum_report.py``) and the probe.
A runs file is a JSON list of records, one per finished (configuration, seed, departures, rate).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from smr_ts.backbones import BACKBONES
from smr_ts.recipes import collapsed_seeds

# Every registered backbone, and "+smr" for those that take SMR: s5, s5+smr, s6, s6+smr, gru_dt, ode_rnn.
CONFIGS = {}
for _name, _backbone in BACKBONES.items():
    CONFIGS[_name] = (_name, False)
    if _backbone.takes_smr:
        CONFIGS[f"{_name}+smr"] = (_name, True)
DEFAULT_CONFIGS = list(CONFIGS)
# The time-aware SMR gate (smr_use_gaps=True): "+gaps" configurations, run only when named.
for _name, _backbone in BACKBONES.items():
    if _backbone.takes_smr:
        CONFIGS[f"{_name}+smr+gaps"] = (_name, True)

# The sampling-shift test sets: (label, sample rate, sampling).
SHIFTS = [("rate 0.25", 0.25, "uniform"), ("rate 0.5 (train)", 0.5, "uniform"), ("rate 0.75", 0.75, "uniform"),
          ("rate 1.0", 1.0, "uniform"), ("bursty 0.5", 0.5, "bursty")]
# The same test sets as (label, rate) of the matched-rate tables; bursty sampling has no rate of its own (None).
EVAL_RATES = [(label, rate if sampling == "uniform" else None) for label, rate, sampling in SHIFTS]
DEPARTURES = ("lr", "grad_clip")  # settings a run may change from the recipe (None: the recipe's)


def config_settings(config: str) -> dict:
    """The estimator settings a configuration name stands for: backbone, smr and smr_use_gaps."""
    backbone, smr = CONFIGS[config]
    return {"backbone": backbone, "smr": smr, **({"smr_use_gaps": True} if config.endswith("+gaps") else {})}


def run_key(record: dict) -> tuple:
    """What identifies a run: configuration, seed, its departures from the recipe and its training
    sample rate (records made before the rate was a setting were trained at 0.5)."""
    return (record["config"], record["seed"], *(record.get(k) for k in DEPARTURES), record.get("train_rate", 0.5))


def run_group(record: dict) -> tuple:
    """The page's rows: one per configuration, departures from the recipe and training rate."""
    return (record["config"], *(record.get(k) for k in DEPARTURES), record.get("train_rate", 0.5))


def group_label(group: tuple) -> str:
    """A row's name on the page: ``smr_ts <config>``, its departures and rate in brackets."""
    config, lr, clip, rate = group
    changes = ([] if lr is None else [f"lr {lr:g}"]) + ([] if clip is None else [f"clip {clip:g}"]) \
        + ([] if rate == 0.5 else [f"trained at rate {rate:g}"])
    return f"smr_ts {config}" + (f" ({', '.join(changes)})" if changes else "")


def config_order(config: str) -> int:
    """A configuration's place in the harness's order (the order of ``CONFIGS``)."""
    return list(CONFIGS).index(config)


def groups(runs) -> list[tuple]:
    """The (configuration, departures, rate) groups present, in the harness's configuration order."""
    present = {run_group(r) for r in runs}
    return sorted(present, key=lambda g: (config_order(g[0]), *(-1 if v is None else v for v in g[1:])))


def summarise(runs, group):
    """The runs of one group, in file order, and their test MSEs x 1e3."""
    rows = [r for r in runs if run_group(r) == group]
    return rows, np.array([r["test_mse"] for r in rows]) * 1e3


def load_runs(path: Path | None) -> list[dict]:
    """The records of a runs file; none when ``path`` is None or does not exist."""
    return json.loads(path.read_text()) if path is not None and path.exists() else []


def flagged_groups(runs):
    """Per group of ``runs``, in the page's order: the group, its runs by seed, and which of them
    collapsed (``smr_ts.recipes.collapsed_seeds``, over each run's own schedule)."""
    for group in groups(runs):
        rows = sorted((r for r in runs if run_group(r) == group), key=lambda r: r["seed"])
        epochs = rows[0].get("epochs") or rows[0]["epochs_run"]  # older records: no early stopping in the runs
        yield group, rows, collapsed_seeds([r["best_valid_mse"] for r in rows], [r["best_epoch"] for r in rows], epochs)


def flagged_names(runs) -> list[str]:
    """"<configuration (departures)> seed <s>" of every collapsed run of ``runs``."""
    return [f"{group_label(group).removeprefix('smr_ts ')} seed {r['seed']}"
            for group, rows, flags in flagged_groups(runs) for r, f in zip(rows, flags) if f]
