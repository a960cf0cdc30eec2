"""The network the estimator trains: per-step encoder, sequence backbone, output heads.

    values (batch, L, F) --encoder--> (batch, L, d_model) --backbone(dt, mask)--> --heads--> mean [, std]

The encoder acts on each step alone, so everything that mixes time happens in the backbone,
which sees the real gaps ``dt`` and the observation ``mask``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from smr_ts.backbones import BACKBONES, resolved_smr

__all__ = ["ENCODERS", "ForecastNetwork", "ImageEncoder", "SequenceModel", "build_network", "gaussian_nll",
           "masked_mae", "masked_mse", "pinball", "pinball_loss"]

ENCODERS = ("linear", "mlp", "cnn")
_VARIANCE_FLOOR = 1e-4
# The scale gate's power moves this much faster than its weight: Adam moves a scalar about the learning rate a step,
# too slowly for a short fit (ForecastNetwork's scale_gate; the speeds tried: docs/results/forecasting_design.md).
GATE_SPEED = 10.0
# |g| is clipped to this, well past where fits take it, so that a wild step cannot overflow the output.
GATE_BOUND = 5.0


class ImageEncoder(nn.Module):
    """The per-frame CNN of the pendulum recipe (S5 App. F.3, after Becker et al. 2019).

    conv 12ch 5x5 pad 2, ReLU, maxpool 2; conv 12ch 3x3 stride 2 pad 1, ReLU, maxpool 2;
    flatten; dense ``hidden``, ReLU; dense ``d_model``. Takes flat rows of ``height * width``
    pixels.
    """

    def __init__(self, image_shape: tuple[int, int], d_model: int, hidden: int = 30, channels: int = 12):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.convs = nn.Sequential(
            nn.Conv2d(1, channels, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, 1, *self.image_shape)).shape[1]
        self.dense = nn.Sequential(nn.Linear(n_flat, hidden), nn.ReLU(), nn.Linear(hidden, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        images = x.reshape(-1, 1, *self.image_shape)
        return self.dense(self.convs(images)).reshape(*lead, -1)


def _make_encoder(kind: str, n_features: int, d_model: int, image_shape, hidden: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(n_features, d_model)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, d_model))
    if kind == "cnn":
        return ImageEncoder(image_shape, d_model, hidden)
    raise ValueError(f"encoder must be one of {ENCODERS}, got {kind!r}")


class SequenceModel(nn.Module):
    """Encoder, backbone and heads; (batch, L, F) values with gaps and mask to per-step outputs.

    Parameters
    ----------
    n_features, n_outputs : int
    d_model, n_layers : int
    backbone : str
        A name of :data:`smr_ts.backbones.BACKBONES`.
    encoder : {"linear", "mlp", "cnn"}
    image_shape : tuple of int, optional
        (height, width) for the CNN encoder; ``height * width == n_features``.
    encoder_hidden : int
    gaussian : bool
        Add a variance head; :meth:`forward` then returns (mean, std).
    dropout : float
    backbone_settings : dict
        Estimator parameters the backbone reads (state size, SMR settings, ...; see
        :class:`~smr_ts.backbones.Backbone`).
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        d_model: int,
        n_layers: int,
        backbone: str = "s5",
        encoder: str = "linear",
        image_shape=None,
        encoder_hidden: int = 30,
        gaussian: bool = False,
        dropout: float = 0.0,
        backbone_settings: dict | None = None,
    ):
        super().__init__()
        self.encoder = _make_encoder(encoder, n_features, d_model, image_shape, encoder_hidden)
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {list(BACKBONES)}, got {backbone!r}")
        self.backbone = BACKBONES[backbone].build(d_model, n_layers, dropout, backbone_settings or {})
        # Small tanh MLP heads, as in the pendulum recipe.
        self.mean_head = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, n_outputs))
        self.var_head = (
            nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, n_outputs)) if gaussian else None
        )

    def forward(self, values: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor):
        h = self.encoder(values) * mask.unsqueeze(-1).to(values.dtype)
        h = self.backbone(h, dt, mask)
        mean = self.mean_head(h)
        if self.var_head is None:
            return mean, None
        std = torch.sqrt(F.softplus(self.var_head(h)) + _VARIANCE_FLOOR)
        return mean, std


def gaussian_nll(mean, std, target, weight):
    """Per-element Gaussian negative log-likelihood, averaged over observed targets."""
    nll = 0.5 * (((target - mean) / std) ** 2) + torch.log(std) + 0.5 * math.log(2 * math.pi)
    return (nll * weight).sum() / weight.sum().clamp(min=1)


def masked_mse(mean, target, weight):
    return (((mean - target) ** 2) * weight).sum() / weight.sum().clamp(min=1)


def masked_mae(mean, target, weight):
    return ((mean - target).abs() * weight).sum() / weight.sum().clamp(min=1)


def pinball(levels, target, quantiles):
    """Pinball (quantile) loss of predicted ``levels`` (..., T, Q) at ``quantiles`` (Q,) against ``target``
    (..., T), averaged over the quantiles: (..., T). At the 0.5 quantile alone it is half the absolute
    error (Koenker and Bassett 1978)."""
    q = torch.as_tensor(quantiles, dtype=levels.dtype, device=levels.device)
    diff = target.unsqueeze(-1) - levels
    return torch.maximum(q * diff, (q - 1) * diff).mean(-1)


def pinball_loss(levels, target, weight, quantiles):
    """:func:`pinball` averaged over the observed targets (``weight``)."""
    return (pinball(levels, target, quantiles) * weight).sum() / weight.sum().clamp(min=1)


class ForecastNetwork(nn.Module):
    """Backbone over the history, and a head from the output at a cut to a forecast at a later time.

    ``encode(inputs, dt, mask)`` runs the backbone over every row (each row's output depends on
    the rows at or before it). ``decode(h, query)`` maps the output ``h`` at a cut and the query's
    features to the forecast's correction of the anchor, in the series' scale (and its standard
    deviation with a Gaussian head; with ``quantiles``, the median and every quantile level,
    ``(..., T, Q)``). The head's last layer starts at zero: the untrained network forecasts the
    anchor, the last observed value.

    Parameters
    ----------
    n_inputs, n_query_features, n_outputs : int
    d_model, n_layers : int
    backbone : str
        A name of :data:`smr_ts.backbones.BACKBONES`.
    backbone_settings : dict
    gaussian : bool
    dropout : float
    quantiles : tuple of float, optional
        Sorted quantile levels, 0.5 among them: the mean head then gives one output per target and
        level (the pinball loss trains them), and the 0.5 level is the point forecast.
    n_linear : int, default 0
        The last ``n_linear`` query features (the covariates, :mod:`smr_ts.forecasting.covariates`) also reach
        the mean through a linear path, zero at the start: an input's effect is often close to linear,
        and few series teach a linear effect more reliably than one through the MLP alone.
    scale_gate : bool, default False
        The first ``n_outputs`` query features are the log of each target's recent scale over its scale
        (:mod:`smr_ts.forecasting.features`), and every output of a target (the mean, its standard
        deviation, each quantile level) is multiplied by ``exp(g * that log)``: the head predicts in the
        scale's units when ``g`` is 0, where it starts, and in the recent scale's when ``g`` is 1. ``g`` is
        learned per target (:meth:`gate_power`): ``GATE_SPEED`` times a weight :attr:`gate` that starts at 0,
        so that it moves faster than the head's learning rate alone would move it, clipped to
        ``+-GATE_BOUND``.
    """

    def __init__(self, n_inputs: int, n_query_features: int, n_outputs: int, d_model: int, n_layers: int,
                 backbone: str = "s5", backbone_settings: dict | None = None, gaussian: bool = False,
                 dropout: float = 0.0, quantiles: tuple | None = None, n_linear: int = 0, scale_gate: bool = False):
        super().__init__()
        self.quantiles = tuple(quantiles) if quantiles else None
        self.n_outputs = n_outputs
        self.gate = nn.Parameter(torch.zeros(n_outputs)) if scale_gate else None
        n_levels = len(self.quantiles) if self.quantiles else 1
        self.encoder = nn.Linear(n_inputs, d_model)
        self.backbone = BACKBONES[backbone].build(d_model, n_layers, dropout, backbone_settings or {})

        def head(n_out=n_outputs):
            last = nn.Linear(d_model, n_out)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            return nn.Sequential(nn.Linear(d_model + n_query_features, d_model), nn.GELU(),
                                 nn.Linear(d_model, d_model), nn.GELU(), last)

        self.mean_head = head(n_outputs * n_levels)
        self.var_head = head() if gaussian else None
        self.n_linear = n_linear
        self.linear = nn.Linear(n_linear, n_outputs * n_levels, bias=False) if n_linear else None
        if self.linear is not None:
            nn.init.zeros_(self.linear.weight)

    def gate_power(self) -> torch.Tensor:
        """(n_outputs,) the scale gate's power ``g`` per target: ``GATE_SPEED * gate``, clipped to ``+-GATE_BOUND``."""
        return (GATE_SPEED * self.gate).clamp(-GATE_BOUND, GATE_BOUND)

    def encode(self, inputs: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(inputs) * mask.unsqueeze(-1).to(inputs.dtype)
        return self.backbone(h, dt, mask)

    def decode(self, h: torch.Tensor, query: torch.Tensor):
        z = torch.cat([h, query], -1)
        mean = self.mean_head(z)
        if self.linear is not None:
            mean = mean + self.linear(query[..., -self.n_linear:])
        factor = None if self.gate is None else torch.exp(self.gate_power() * query[..., :self.n_outputs])
        if self.quantiles is not None:
            levels = mean.unflatten(-1, (-1, len(self.quantiles)))
            levels = levels if factor is None else levels * factor.unsqueeze(-1)
            return levels[..., self.quantiles.index(0.5)], levels
        if factor is not None:
            mean = mean * factor
        if self.var_head is None:
            return mean, None
        std = torch.sqrt(F.softplus(self.var_head(z) + 0.5413) + _VARIANCE_FLOOR)  # std 1 at the start
        return mean, std if factor is None else std * factor

    def advance(self, inputs: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor, state: dict | None):
        """:meth:`encode` continued from the backbone's ``state`` (None: the series start here): ``(outputs
        at every row, state after them)`` (:mod:`smr_ts.forecasting.streaming`)."""
        h = self.encoder(inputs) * mask.unsqueeze(-1).to(inputs.dtype)
        return self.backbone.advance(h, dt, mask, state)

    def forward(self, batch: dict):
        """(mean, std or None) at each pair of a batch from :class:`~smr_ts.forecasting.pairs.PairSampler`."""
        h = self.encode(batch["inputs"], batch["dt"], batch["mask"])
        h_cut = torch.gather(h, 1, batch["k"].unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        return self.decode(h_cut, batch["query"])


class ForecastEnsemble(nn.Module):
    """``n`` :class:`ForecastNetwork` members trained side by side on the same batches from different
    initial weights; a forecast is their average.

    Fits on a few real series take seconds and vary from seed to seed (which held-out series, which
    windows, which initial weights); an average of members varies less and errs less than a typical
    member (``docs/results/forecasting_design.md``). The members' backbone outputs are concatenated
    (``encode``; each member reads its own slice in ``decode``), so the stream state, calibration and
    forecasts treat the ensemble as one network. In training mode ``decode`` returns every member's
    output stacked on a leading axis and the loss averages the members' losses, so each member learns
    on its own; in eval mode it returns the average: the mean of the members' means (with a Gaussian
    head, the mixture's standard deviation; with quantiles, the average of each level).
    """

    def __init__(self, members: list):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.quantiles = members[0].quantiles
        self.width = members[0].encoder.out_features

    def _split(self, h: torch.Tensor) -> tuple:
        return h.split(self.width, -1)

    def encode(self, inputs: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.encode(inputs, dt, mask) for m in self.members], -1)

    def advance(self, inputs, dt, mask, state: dict | None):
        outputs, after = [], {}
        for i, member in enumerate(self.members):
            own = None if state is None else {k[len(f"m{i}."):]: v for k, v in state.items() if k.startswith(f"m{i}.")}
            h, member_after = member.advance(inputs, dt, mask, own)
            outputs.append(h)
            after.update({f"m{i}.{k}": v for k, v in member_after.items()})
        return torch.cat(outputs, -1), after

    def decode(self, h: torch.Tensor, query: torch.Tensor):
        outs = [m.decode(part, query) for m, part in zip(self.members, self._split(h))]
        means = torch.stack([mean for mean, _ in outs])
        second = None if outs[0][1] is None else torch.stack([s for _, s in outs])
        if self.training:
            return means, second
        if self.quantiles is not None:
            levels = second.mean(0)
            return levels[..., self.quantiles.index(0.5)], levels
        mean = means.mean(0)
        if second is None:
            return mean, None
        return mean, torch.sqrt((second ** 2).mean(0) + means.var(0, unbiased=False))

    def forward(self, batch: dict):
        h = self.encode(batch["inputs"], batch["dt"], batch["mask"])
        h_cut = torch.gather(h, 1, batch["k"].unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        return self.decode(h_cut, batch["query"])




def build_network(params: dict, n_features: int, n_targets: int, loss: str, layout=None, quantiles=None) -> nn.Module:
    """The network a fit trains, from the estimator's parameters (``get_params()``) and what the fit fixed:
    a :class:`ForecastNetwork` for a forecasting ``layout`` (:class:`~smr_ts.forecasting.layout.ForecastLayout`)
    over ``n_features`` value columns (a :class:`ForecastEnsemble` of ``n_networks`` of them), else a
    :class:`SequenceModel`; a variance head with ``loss="gaussian"``."""
    gaussian = loss == "gaussian"
    params = {**params, "smr": resolved_smr(params.get("smr", False), params["backbone"], layout is not None)}
    if layout is not None:
        members = [ForecastNetwork(layout.n_inputs(n_features), layout.n_query_features, n_targets, params["d_model"],
                                   params["n_layers"], params["backbone"], params, gaussian=gaussian,
                                   dropout=params["dropout"], quantiles=quantiles,
                                   n_linear=layout.n_covariate_features, scale_gate=layout.scale_gate)
                   for _ in range(params.get("n_networks", 1))]
        return members[0] if len(members) == 1 else ForecastEnsemble(members)
    return SequenceModel(
        n_features=n_features, n_outputs=n_targets, d_model=params["d_model"], n_layers=params["n_layers"],
        backbone=params["backbone"], encoder=params["encoder"], image_shape=params["image_shape"],
        encoder_hidden=params["encoder_hidden"], gaussian=gaussian, dropout=params["dropout"],
        backbone_settings=params,
    )
