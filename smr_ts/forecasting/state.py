"""What a forecasting fit leaves behind: one :class:`ForecastState`, which forecasts, updates and saves read.

A fit builds the state from the values its helpers return and the estimator keeps it as
``forecast_state_``; ``forecast`` reads it, ``update`` returns the next one, ``save`` writes it.
It holds

- the **layout** (:class:`~smr_ts.forecasting.layout.ForecastLayout`): what the inputs are;
- the **panel** of the fitted history (and the rows ``update`` appended): what forecasts continue;
- the **statics** (:class:`Statics`): the encoded static columns of the series the model knows;
- the **calibration** (:class:`Calibration`): the held-out forecasts that calibrate the intervals;
- the **stream** (:class:`StreamState`): each series' state after its last row, or None, when a
  forecast runs the backbone over the history instead;
- the **floor**: the forecaster model selection kept, the network or a simple one
  (:mod:`smr_ts.forecasting.floor`);
- the **coverage** log: how the rows ``update`` appended fell inside the intervals, which adapts each
  series' intervals (:mod:`smr_ts.forecasting.adaptive`).

:meth:`ForecastState.to_saved` and :meth:`ForecastState.from_saved` turn it into JSON and tensors and
back; :mod:`smr_ts.persistence` writes those, and migrates older saves to them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from smr_ts.data.panel import SeriesPanel
from smr_ts.forecasting.adaptive import CoverageLog
from smr_ts.forecasting.features import RunningStatistics
from smr_ts.forecasting.floor import Floor
from smr_ts.forecasting.layout import ForecastLayout

__all__ = ["PANEL_ARRAYS", "Calibration", "ForecastState", "Statics", "StreamState"]

PANEL_ARRAYS = ("rows", "time", "values", "value_observed", "valid", "lengths")
_STATISTICS = tuple(f.name for f in dataclasses.fields(RunningStatistics))


@dataclass(frozen=True)
class Statics:
    """The series whose static columns the model knows (fitted, or added by ``update``) and their
    encodings (:func:`smr_ts.forecasting.covariates.encode_static`)."""

    ids: np.ndarray  # (S,) object
    codes: np.ndarray  # (S, W) float32

    def with_series(self, ids: np.ndarray, codes: np.ndarray) -> "Statics":
        """These statics and those of the new series ``ids``."""
        return Statics(np.concatenate([self.ids, np.asarray(ids, dtype=object)]), np.concatenate([self.codes, codes]))


@dataclass(frozen=True)
class Calibration:
    """Per held-out (cut-off, query) pair of the fit (:mod:`smr_ts.forecasting.intervals`): how far
    ahead it was (raw units), its score, and the observed changes behind its cut-off (its history
    group; None for a model saved before the groups, which calibrates as one group)."""

    ahead: np.ndarray  # (n,)
    scores: np.ndarray  # (n, T)
    changes: np.ndarray | None  # (n, T) int64


@dataclass(frozen=True)
class StreamState:
    """Each series' state after its last row (in the order of the panel's ids), a typed container in
    the manner of mamba's ``InferenceParams``: the backbone's state (a flat dict of batch-first
    tensors, see ``advance`` in :mod:`smr_ts.ssm`), its output there, and where the causal statistics
    stand (:class:`~smr_ts.forecasting.features.RunningStatistics`)."""

    backbone: dict
    h_last: torch.Tensor  # (S, width)
    statistics: RunningStatistics

    def __len__(self) -> int:
        return len(self.h_last)

    def take(self, idx) -> "StreamState":
        """The states of the series ``idx`` (an index array)."""
        return StreamState({k: v[idx] for k, v in self.backbone.items()}, self.h_last[idx], self.statistics.take(idx))

    @classmethod
    def concat(cls, parts: list) -> "StreamState":
        """The states of ``parts``' series, one after the other (in the first part's dtypes)."""
        first = parts[0]
        return cls({k: torch.cat([p.backbone[k].to(v.dtype) for p in parts]) for k, v in first.backbone.items()},
                   torch.cat([p.h_last.to(first.h_last.dtype) for p in parts]),
                   RunningStatistics(**{k: np.concatenate([getattr(p.statistics, k).astype(v.dtype) for p in parts])
                                        for k, v in vars(first.statistics).items()}))

    def write(self, idx, part: "StreamState") -> None:
        """Overwrite the states of the series ``idx`` (an index array) with ``part``'s, in place (in this
        state's dtypes)."""
        index = torch.from_numpy(np.asarray(idx))
        for k, v in self.backbone.items():
            v[index] = part.backbone[k].to(v.dtype)
        self.h_last[index] = part.h_last.to(self.h_last.dtype)
        for k, v in vars(self.statistics).items():
            v[idx] = getattr(part.statistics, k).astype(v.dtype)

    def as_dict(self) -> dict:
        """The flat dict of tensors ``stream_state_`` shows: ``backbone.<name>``, ``h_last``, ``stats.<name>``."""
        return {**{f"backbone.{k}": v for k, v in self.backbone.items()}, "h_last": self.h_last,
                **{f"stats.{k}": torch.from_numpy(v) for k, v in vars(self.statistics).items()}}

    @classmethod
    def from_dict(cls, flat: dict) -> "StreamState":
        """The inverse of :meth:`as_dict`."""
        return cls(backbone={k[len("backbone."):]: v for k, v in flat.items() if k.startswith("backbone.")},
                   h_last=flat["h_last"],
                   statistics=RunningStatistics(**{k: flat[f"stats.{k}"].numpy() for k in _STATISTICS}))


@dataclass(frozen=True)
class ForecastState:
    """Everything a forecasting fit leaves behind but the network (see the module docstring)."""

    layout: ForecastLayout
    panel: SeriesPanel
    statics: Statics | None = None
    calibration: Calibration | None = None
    stream: StreamState | None = None
    # what model selection kept, per range of time ahead: the network or a simple forecaster
    floor: Floor = Floor()
    # the coverage ranks of the rows update() appended, which adapt each series' intervals (None: none yet)
    coverage: CoverageLog | None = None

    def current_stream(self) -> StreamState | None:
        """The stream state when it covers every series of the panel, else None (the backbone reruns)."""
        return self.stream if self.stream is not None and len(self.stream) == len(self.panel.ids) else None

    # ---------------------------------------------------------------- saved as JSON and tensors
    def to_saved(self) -> tuple[dict, dict]:
        """(JSON-able description, tensors by name) of the state: what a save writes."""
        config = {"layout": dataclasses.asdict(self.layout), "panel": {"ids": self.panel.ids.tolist()},
                  "statics": None if self.statics is None else {"ids": list(self.statics.ids)},
                  "calibration": None if self.calibration is None else {
                      "changes": self.calibration.changes is not None},
                  "stream": None if self.stream is None else {"backbone": sorted(self.stream.backbone)},
                  "floor": self.floor.to_json(),
                  "coverage": None if self.coverage is None else {"ids": list(self.coverage.ids)}}
        tensors = {f"panel.{part}": _tensor(getattr(self.panel, part)) for part in PANEL_ARRAYS}
        if self.statics is not None:
            tensors["statics.codes"] = _tensor(self.statics.codes)
        if self.calibration is not None:
            tensors.update({f"calibration.{name}": _tensor(value) for name, value in vars(self.calibration).items()
                            if value is not None})
        if self.stream is not None:
            tensors.update({f"stream.{k}": v.detach().cpu() for k, v in self.stream.as_dict().items()})
        if self.coverage is not None:
            tensors["coverage.ranks"] = _tensor(self.coverage.ranks)
        return config, tensors

    @classmethod
    def from_saved(cls, config: dict, tensors: dict) -> "ForecastState":
        """The state :meth:`to_saved` described (a ``KeyError`` names what is missing)."""
        panel = SeriesPanel(ids=np.asarray(config["panel"]["ids"]),
                            **{part: tensors[f"panel.{part}"].numpy() for part in PANEL_ARRAYS})
        statics = None if config["statics"] is None else Statics(
            np.asarray(config["statics"]["ids"], dtype=object), tensors["statics.codes"].numpy())
        calibration = None if config["calibration"] is None else Calibration(
            tensors["calibration.ahead"].numpy(), tensors["calibration.scores"].numpy(),
            tensors["calibration.changes"].numpy() if config["calibration"]["changes"] else None)
        stream = None
        if config["stream"] is not None:
            names = [f"backbone.{k}" for k in config["stream"]["backbone"]] + ["h_last"]
            names += [f"stats.{k}" for k in _STATISTICS]
            stream = StreamState.from_dict({name: tensors[f"stream.{name}"] for name in names})
        coverage = None if config["coverage"] is None else CoverageLog(
            np.asarray(config["coverage"]["ids"], dtype=object), tensors["coverage.ranks"].numpy())
        return cls(ForecastLayout(**config["layout"]), panel, statics, calibration, stream,
                   Floor.from_json(config["floor"]), coverage)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))
