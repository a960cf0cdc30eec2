"""The pendulum occlusion benchmark: irregularly sampled, noisy images of a swinging pendulum.

The task of Becker et al. 2019 (Recurrent Kalman Networks) in the irregularly sampled form of
Schirmer et al. 2022 (Continuous Recurrent Units), also the variable-step benchmark of Smith et
al. 2023 (S5, App. F.3, Table 9): from 24x24 frames whose pixels are partly replaced by noise,
regress (sin, cos) of the pendulum angle at each observed frame. Re-implemented here from a
written description of the process (see ``datasets/pendulum/README.md``).

Pipeline, one stage per private function: ``_simulate`` (damped rod pendulum with process noise),
``_sample`` (which frames are kept), ``_render`` (anti-aliased 24x24 frames), ``_occlude``
(temporally correlated occlusion factor) and the pixel-noise composition in ``make_pendulum``.
Every stage draws from its own random stream, so changing how frames are sampled never changes
the trajectories or the noise.
"""

from __future__ import annotations

import argparse
import functools
import json
import time as _time
from dataclasses import dataclass, fields
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchdiffeq import odeint

from smr_ts._validation import (
    Interval, StrOptions, check_params, invalid, non_negative_int, positive_int, positive_real,
)

__all__ = ["PendulumData", "PendulumSplit", "load_pendulum", "make_pendulum", "main"]

SPLITS = ("train", "valid", "test")
SAMPLINGS = ("uniform", "bursty")

# One independent child of SeedSequence(seed) per stage. New streams go at the END so that the
# existing ones (and hence existing data sets) stay byte-identical.
_STREAMS = ("initial", "process", "render", "occlusion", "pixels", "sampling")
# Fixed-step RK4 sub-steps per frame interval: 1e-3 s steps keep the angle within 1e-8 rad of a
# fine reference, and a fixed grid makes every trajectory independent of the rest of the batch
# (an adaptive solver would share its step size across the batch).
_RK4_SUBSTEPS = 10
# Angles at which frames are pre-rendered; frames in between are linearly interpolated. At 4096 the
# rod tip moves 0.08 canvas px (0.016 output px) between table entries: below uint8 resolution.
_TABLE_ANGLES = 4096
# Lanczos kernel half-width in output pixels (the usual "Lanczos-3" antialiasing filter).
_LANCZOS_A = 3
# Pixel noise is drawn for all frames of this many trajectories at a time (bounded memory).
_CHUNK = 256
# ``sampling="bursty"`` (project addition, not the published benchmark): burst count and width.
_N_BURSTS = 4
_BURST_WIDTH = 3.0  # frames (std of each Gaussian bump)
_BURST_FLOOR = 1e-3  # weight of frames far from every burst


@dataclass(frozen=True)
class PendulumSplit:
    """One split (train, valid or test) of the pendulum data set.

    ``n`` trajectories, ``K`` kept frames per trajectory, ``S`` = ``image_size``.

    Attributes
    ----------
    images : ndarray of uint8, shape (n, K, S, S)
        Observed (occluded) frames at the kept frame indices; models divide by 255.
    clean_images : ndarray of uint8, shape (n, K, S, S)
        The same frames before occlusion noise.
    targets : ndarray of float32, shape (n, K, 2)
        ``(sin(angle), cos(angle))`` of the clean angle: the regression target.
    time : ndarray of int64, shape (n, K)
        Kept frame indices, strictly increasing; one index is ``frame_dt`` seconds of physics.
    occlusion : ndarray of float32, shape (n, K)
        Occlusion factor ``f``: 1 is a clean frame, 0 is pure noise.
    angle : ndarray of float64, shape (n, K)
        Clean angle in [-pi, pi), 0 = hanging down.
    angular_velocity : ndarray of float64, shape (n, K)
        Angular velocity (rad/s) at the kept frames, after process noise.
    ids : ndarray of int64, shape (n,)
        Trajectory ids, unique across the three splits.
    """

    images: np.ndarray
    clean_images: np.ndarray
    targets: np.ndarray
    time: np.ndarray
    occlusion: np.ndarray
    angle: np.ndarray
    angular_velocity: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PendulumData:
    """The three splits of the pendulum data set and the parameters that generated them.

    Attributes
    ----------
    train, valid, test : PendulumSplit
        The splits; also reachable as ``data["train"]`` etc.
    params : dict
        Every keyword argument of :func:`make_pendulum` that produced the data.

    Examples
    --------
    >>> data = make_pendulum(n_train=2, n_valid=1, n_test=1, n_frames=10)
    >>> X, y = data.to_frame("valid")
    >>> X.shape, list(y.columns)
    ((5, 578), ['sin', 'cos'])
    """

    train: PendulumSplit
    valid: PendulumSplit
    test: PendulumSplit
    params: dict

    def __getitem__(self, split: str) -> PendulumSplit:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return getattr(self, split)

    def to_frame(self, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Long frames of one split, one row per kept frame, sorted by (unique_id, ds).

        Parameters
        ----------
        split : {"train", "valid", "test"}

        Returns
        -------
        X : DataFrame
            Columns ``unique_id`` (int64 trajectory id), ``ds`` (int64 frame index) and one
            float32 column per pixel, ``px_000``..``px_575`` (row-major, already divided by 255).
        y : DataFrame
            Columns ``sin`` and ``cos`` (float32), same index as ``X``.
        """
        part = self[split]
        n, k = part.time.shape
        n_pixels = part.images.shape[-1] * part.images.shape[-2]
        width = max(3, len(str(n_pixels - 1)))
        pixels = part.images.reshape(n * k, n_pixels).astype(np.float32) / np.float32(255.0)
        X = pd.DataFrame(pixels, columns=[f"px_{i:0{width}d}" for i in range(n_pixels)])
        X.insert(0, "ds", part.time.reshape(-1).astype(np.int64))
        X.insert(0, "unique_id", np.repeat(part.ids, k).astype(np.int64))
        y = pd.DataFrame(part.targets.reshape(n * k, 2), columns=["sin", "cos"], index=X.index)
        return X, y

    def save(self, path: str | Path) -> None:
        """Write all arrays and the parameters to a compressed ``.npz`` file.

        Read it back with :func:`load_pendulum`. The full benchmark takes about 100 MiB.
        """
        arrays = {
            f"{split}__{field.name}": getattr(self[split], field.name)
            for split in SPLITS
            for field in fields(PendulumSplit)
        }
        with open(path, "wb") as file:  # a file object: numpy would append ".npz" to a name
            np.savez_compressed(file, params=np.array(json.dumps(self.params)), **arrays)


def load_pendulum(path: str | Path) -> PendulumData:
    """Read a data set written by :meth:`PendulumData.save` (or the CLI).

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file.

    Returns
    -------
    PendulumData
        Identical arrays and parameters to the saved object.
    """
    with np.load(path, allow_pickle=False) as archive:
        params = json.loads(str(archive["params"][()]))
        # JSON has no tuples; the range parameters are tuples in make_pendulum's signature.
        params = {key: tuple(value) if isinstance(value, list) else value
                  for key, value in params.items()}
        splits = {
            split: PendulumSplit(**{field.name: archive[f"{split}__{field.name}"]
                                    for field in fields(PendulumSplit)})
            for split in SPLITS
        }
    return PendulumData(**splits, params=params)


def make_pendulum(
    *,
    n_train: int = 2000,
    n_valid: int = 1000,
    n_test: int = 1000,
    n_frames: int = 100,
    frame_dt: float = 0.01,
    image_size: int = 24,
    canvas_size: int = 128,
    pivot: tuple[float, float] = (64.0, 64.0),
    rod_length_px: float = 55.0,
    line_width_px: float = 8.0,
    mass: float = 1.0,
    length: float = 1.0,
    gravity: float = 9.81,
    friction: float = 0.1,
    process_noise_std: float = 0.1,
    render_angle_noise_std: float = 1e-5,
    occlusion_init: tuple[float, float] = (0.0, 1.0),
    occlusion_step: tuple[float, float] = (-0.2, 0.2),
    occlusion_t1: tuple[float, float] = (0.0, 0.25),
    occlusion_t2: tuple[float, float] = (0.75, 1.0),
    n_clean_first: int = 5,
    sample_rate: float = 0.5,
    sampling: str = "uniform",
    seed: int = 0,
) -> PendulumData:
    """Generate the pendulum occlusion data set; the defaults are the published benchmark.

    All ``n_train + n_valid + n_test`` trajectories are simulated in one batch and split in
    that order, so the splits are disjoint and ``seed`` fixes every byte.

    Parameters
    ----------
    n_train, n_valid, n_test : int, default 2000, 1000, 1000
        Trajectories per split (``n_train >= 1``; the others may be 0).
    n_frames : int, default 100
        Frames per trajectory before sub-sampling.
    frame_dt : float, default 0.01
        Seconds of physics between consecutive frames.
    image_size : int, default 24
        Side of the output frames in pixels.
    canvas_size : int, default 128
        Side of the canvas the rod is drawn on before Lanczos downsampling.
    pivot : (float, float), default (64, 64)
        Pivot (x, y) on the canvas; image y points down.
    rod_length_px, line_width_px : float, default 55, 8
        Drawn rod length and width on the canvas.
    mass, length, gravity, friction : float, default 1, 1, 9.81, 0.1
        Rigid rod pendulum, ``theta'' = (3 g / l) sin(theta) - friction theta'`` with
        ``theta = 0`` upright. ``mass`` cancels from this motion (``friction`` is a damping
        rate, not a torque); it only scales the mechanical energy.
    process_noise_std : float, default 0.1
        Std of the Gaussian noise added to the angular velocity after every frame.
    render_angle_noise_std : float, default 1e-5
        Std of the Gaussian noise on the angle used for drawing (not on the target).
    occlusion_init : (float, float), default (0, 1)
        ``f_0 ~ U(*occlusion_init)``.
    occlusion_step : (float, float), default (-0.2, 0.2)
        ``f_{t+1} = clip(f_t + U(*occlusion_step), 0, 1)``.
    occlusion_t1, occlusion_t2 : (float, float), default (0, 0.25), (0.75, 1)
        Per-trajectory thresholds ``t1 ~ U(*occlusion_t1)``, ``t2 ~ U(*occlusion_t2)``; then
        ``f = clip((f - t1) / (t2 - t1), 0, 1)``. Needs ``occlusion_t1[1] < occlusion_t2[0]``.
    n_clean_first : int, default 5
        The first frames of every trajectory are clean (``f = 1``).
    sample_rate : float, default 0.5
        Each trajectory keeps ``round(sample_rate * n_frames)`` of its frames.
    sampling : {"uniform", "bursty"}, default "uniform"
        ``"uniform"`` (the benchmark): kept frames drawn without replacement, all subsets
        equally likely. ``"bursty"`` (a project addition, NOT the published benchmark, for
        testing robustness to a changed sampling pattern): the same number of frames, drawn
        without replacement with weights peaked around 4 random burst centres (Gaussian
        bumps of std 3 frames), so observations cluster and gaps are heavy-tailed.
        Kept frames come from their own random stream: changing ``sample_rate`` or
        ``sampling`` keeps the trajectories, occlusion and pixel noise identical. For a fixed
        ``sampling``, a lower rate keeps a subset of the frames a higher rate keeps.
    seed : int, default 0
        Non-negative seed of all random streams.

    Returns
    -------
    PendulumData

    Examples
    --------
    >>> data = make_pendulum(n_train=4, n_valid=2, n_test=2, n_frames=10, seed=1)
    >>> data.train.images.shape, data.train.images.dtype
    ((4, 5, 24, 24), dtype('uint8'))
    >>> data.test.time[0]
    array([0, 1, 3, 5, 7])
    """
    params = dict(locals())
    _validate(params)
    k = round(sample_rate * n_frames)
    n_total = n_train + n_valid + n_test
    streams = dict(zip(_STREAMS, (np.random.default_rng(child) for child in
                                  np.random.SeedSequence(seed).spawn(len(_STREAMS)))))

    raw_angle, angular_velocity = _simulate(
        streams["initial"].uniform(0.0, 2.0 * np.pi, n_total),
        streams["process"].normal(0.0, process_noise_std, (n_total, n_frames - 1)),
        frame_dt=frame_dt, length=length, gravity=gravity, friction=friction,
    )
    angle = raw_angle - np.pi  # the benchmark's convention: 0 = hanging down
    render_noise = streams["render"].normal(0.0, render_angle_noise_std, (n_total, n_frames))
    occlusion = _occlude(streams["occlusion"], n_total, n_frames, occlusion_init, occlusion_step,
                         occlusion_t1, occlusion_t2, n_clean_first)
    kept = _sample(streams["sampling"], n_total, n_frames, k, sampling)

    rows = np.arange(n_total)[:, None]
    drawn_angle = angle[rows, kept] + render_noise[rows, kept]
    angle, angular_velocity = angle[rows, kept], angular_velocity[rows, kept]
    occlusion = occlusion[rows, kept].astype(np.float32)
    geometry = _Geometry(image_size, canvas_size, tuple(float(p) for p in pivot),
                         float(rod_length_px), float(line_width_px))
    clean = np.empty((n_total, k, image_size * image_size), np.uint8)
    observed = np.empty_like(clean)
    for start in range(0, n_total, _CHUNK):
        stop = min(start + _CHUNK, n_total)
        # Noise is drawn for every frame, kept or not, so it does not depend on the sampling.
        noise = streams["pixels"].random((stop - start, n_frames, image_size * image_size),
                                         dtype=np.float32) * np.float32(255.0)
        noise = noise[np.arange(stop - start)[:, None], kept[start:stop]]
        clean[start:stop] = _render(drawn_angle[start:stop], geometry)
        f = occlusion[start:stop, :, None]
        # f = 1 reproduces the clean frame exactly: 1 * img + 0 * noise, then truncation.
        observed[start:stop] = (f * clean[start:stop] + (1 - f) * noise).astype(np.uint8)

    shape = (n_total, k, image_size, image_size)
    columns = {
        "images": observed.reshape(shape),
        "clean_images": clean.reshape(shape),
        "targets": np.stack([np.sin(angle), np.cos(angle)], axis=-1).astype(np.float32),
        "time": kept.astype(np.int64),
        "occlusion": occlusion,
        "angle": angle,
        "angular_velocity": angular_velocity,
        "ids": np.arange(n_total, dtype=np.int64),
    }
    bounds = np.cumsum([0, n_train, n_valid, n_test])
    splits = {
        split: PendulumSplit(**{name: np.ascontiguousarray(array[lo:hi])
                                for name, array in columns.items()})
        for split, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:])
    }
    return PendulumData(**splits, params=params)


_NON_NEGATIVE = Interval(Real, 0, None, closed="left")

# make_pendulum's parameters, checked once, up front (and the rules tying two together, in _validate).
_PARAMETER_CONSTRAINTS = {
    "n_train": [positive_int()],
    **{name: [non_negative_int()] for name in ("n_valid", "n_test", "n_clean_first", "seed")},
    **{name: [positive_int()] for name in ("n_frames", "image_size", "canvas_size")},
    **{name: [positive_real()] for name in ("frame_dt", "rod_length_px", "line_width_px", "mass", "length", "gravity")},
    **{name: [_NON_NEGATIVE] for name in ("friction", "process_noise_std", "render_angle_noise_std")},
    **{name: [tuple, list] for name in ("pivot", "occlusion_init", "occlusion_step", "occlusion_t1", "occlusion_t2")},
    "sample_rate": [Interval(Real, 0, 1, closed="right")],
    "sampling": [StrOptions(set(SAMPLINGS))],
}


def _validate(p: dict) -> None:
    """Check every parameter of :func:`make_pendulum` once, up front."""
    check_params(_PARAMETER_CONSTRAINTS, p, "make_pendulum")

    def interval(name, lower, upper):
        value = p[name]
        if len(value) != 2 or not lower <= value[0] <= value[1] <= upper:
            raise invalid("make_pendulum", f"The {name!r} parameter of make_pendulum must be (low, high) with "
                                           f"{lower} <= low <= high <= {upper}. Got {value!r} instead.")

    if len(p["pivot"]) != 2 or not all(np.isfinite(p["pivot"])):
        raise invalid("make_pendulum", f"The 'pivot' parameter of make_pendulum must be a finite (x, y) pair. "
                                       f"Got {p['pivot']!r} instead.")
    interval("occlusion_init", 0.0, 1.0)
    interval("occlusion_step", -1.0, 1.0)
    interval("occlusion_t1", 0.0, 1.0)
    interval("occlusion_t2", 0.0, 1.0)
    if p["occlusion_t1"][1] >= p["occlusion_t2"][0]:
        raise invalid("make_pendulum", "The 'occlusion_t1' parameter of make_pendulum must lie below occlusion_t2 "
                                       f"(t2 - t1 > 0 divides). Got {p['occlusion_t1']!r} and {p['occlusion_t2']!r}.")
    if p["n_clean_first"] > p["n_frames"]:
        raise invalid("make_pendulum", f"The 'n_clean_first' parameter of make_pendulum must be <= "
                                       f"n_frames={p['n_frames']}. Got {p['n_clean_first']!r} instead.")
    if round(p["sample_rate"] * p["n_frames"]) < 1:
        raise invalid("make_pendulum", f"The 'sample_rate' parameter of make_pendulum must keep at least one of the "
                                       f"{p['n_frames']} frames. Got {p['sample_rate']!r} instead.")


def _simulate(initial_angle, velocity_noise, *, frame_dt, length, gravity, friction):
    """Integrate the noisy damped pendulum frame by frame, batched over trajectories.

    Raw convention (theta = 0 upright): theta'' = (3 g / l) sin(theta) - friction theta', the
    rigid rod with inertia m l^2 / 3 as specified; upright is unstable, theta = pi is stable.

    Parameters
    ----------
    initial_angle : ndarray, shape (n,)
        theta_0 (raw convention); the initial angular velocity is 0.
    velocity_noise : ndarray, shape (n, n_frames - 1)
        Added to the angular velocity after each frame interval.

    Returns
    -------
    angle, angular_velocity : ndarray of float64, shape (n, n_frames)
        Raw angle wrapped to [0, 2 pi), and angular velocity, at every frame.
    """
    stiffness = 3.0 * gravity / length

    def rhs(t, state):
        theta, omega = state.unbind(-1)
        return torch.stack([omega, stiffness * torch.sin(theta) - friction * omega], dim=-1)

    n, n_steps = velocity_noise.shape
    grid = torch.linspace(0.0, frame_dt, _RK4_SUBSTEPS + 1, dtype=torch.float64)
    noise = torch.as_tensor(velocity_noise, dtype=torch.float64)
    state = torch.stack([torch.as_tensor(initial_angle, dtype=torch.float64),
                         torch.zeros(n, dtype=torch.float64)], dim=-1)
    states = [state]
    for step in range(n_steps):
        state = odeint(rhs, state, grid, method="rk4")[-1]
        state = torch.stack([torch.remainder(state[:, 0], 2.0 * np.pi),
                             state[:, 1] + noise[:, step]], dim=-1)
        states.append(state)
    trajectory = torch.stack(states, dim=1).numpy()
    return trajectory[..., 0], trajectory[..., 1]


def _occlude(rng, n, n_frames, init, step, t1, t2, n_clean_first):
    """Temporally correlated occlusion factor f in [0, 1], shape (n, n_frames); 1 = clean."""
    f = np.empty((n, n_frames))
    f[:, 0] = rng.uniform(*init, n)
    steps = rng.uniform(*step, (n, n_frames - 1))
    for t in range(1, n_frames):  # clipping makes the walk sequential; vectorised over n
        f[:, t] = np.clip(f[:, t - 1] + steps[:, t - 1], 0.0, 1.0)
    low = rng.uniform(*t1, n)[:, None]
    high = rng.uniform(*t2, n)[:, None]
    # Stretching [t1, t2] onto [0, 1] saturates: many frames end up fully clean or fully noisy.
    f = np.clip((f - low) / (high - low), 0.0, 1.0)
    f[:, :n_clean_first] = 1.0
    return f


def _sample(rng, n, n_frames, k, sampling):
    """Kept frame indices, shape (n, k), sorted and unique within each row.

    Every frame gets a random score and the k best are kept. Uniform scores give uniform
    subsets; for "bursty" the score is log(weight) + Gumbel noise, which is weighted sampling
    without replacement (the Gumbel top-k trick). Because the scores do not depend on k, a
    smaller k keeps a subset of what a larger k keeps.
    """
    if sampling == "uniform":
        score = rng.random((n, n_frames))
    else:
        centres = rng.uniform(0.0, n_frames - 1, (n, _N_BURSTS, 1))
        frames = np.arange(n_frames)
        weight = np.exp(-0.5 * ((frames - centres) / _BURST_WIDTH) ** 2).sum(axis=1)
        score = np.log(weight + _BURST_FLOOR) + rng.gumbel(size=(n, n_frames))
    return np.sort(np.argsort(-score, axis=1, kind="stable")[:, :k], axis=1)


@dataclass(frozen=True)
class _Geometry:
    """Drawing geometry; hashable so that the pre-rendered table can be cached per geometry."""

    image_size: int
    canvas_size: int
    pivot: tuple[float, float]
    rod_length: float
    line_width: float


def _lanczos_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) resampling matrix of a Lanczos filter widened by the downsampling factor.

    Pixel i has its centre at i + 0.5 on both grids; the kernel is stretched by the scale so
    that it low-passes (antialiases) when shrinking, and each row is normalised to sum 1.
    """
    scale = max(n_in / n_out, 1.0)
    centres = (np.arange(n_out) + 0.5) * n_in / n_out
    x = (np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / scale
    weight = np.where(np.abs(x) < _LANCZOS_A, np.sinc(x) * np.sinc(x / _LANCZOS_A), 0.0)
    return weight / weight.sum(axis=1, keepdims=True)


def _draw(angle: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """Reference renderer: rod on the canvas, Lanczos downsampling; float, not yet clipped.

    Angle 0 draws straight down from the pivot to (px + L sin a, py + L cos a), image y down.
    Canvas pixels get the area coverage of the rectangle (butt-ended line) from the distance of
    their centre to its edges, which is exact for edges aligned with the grid.

    Returns
    -------
    ndarray of float64, shape angle.shape + (image_size, image_size)
    """
    g = geometry
    angle = np.asarray(angle, dtype=np.float64)
    centres = np.arange(g.canvas_size) + 0.5
    dx = centres[None, None, :] - g.pivot[0]  # column offset
    dy = centres[None, :, None] - g.pivot[1]  # row offset
    sin, cos = np.sin(angle.reshape(-1, 1, 1)), np.cos(angle.reshape(-1, 1, 1))
    along = dx * sin + dy * cos
    across = np.abs(dx * cos - dy * sin)
    coverage = (np.clip(0.5 * g.line_width + 0.5 - across, 0.0, 1.0)
                * np.clip(0.5 + np.minimum(along, g.rod_length - along), 0.0, 1.0))
    resample = _lanczos_matrix(g.canvas_size, g.image_size)
    image = resample @ coverage @ resample.T
    return image.reshape(angle.shape + (g.image_size, g.image_size))


@functools.lru_cache(maxsize=4)
def _table(geometry: _Geometry) -> np.ndarray:
    """Frames pre-rendered by :func:`_draw` at ``_TABLE_ANGLES`` angles over [0, 2 pi), flat."""
    angles = np.arange(_TABLE_ANGLES) * (2.0 * np.pi / _TABLE_ANGLES)
    table = np.concatenate([_draw(angles[i:i + 256], geometry)
                            for i in range(0, _TABLE_ANGLES, 256)])
    return table.reshape(_TABLE_ANGLES, -1).astype(np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _render(angle: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """Fast renderer: linear interpolation in the pre-rendered table (same output as `_draw`).

    Returns uint8 frames flattened row-major, shape ``angle.shape + (image_size ** 2,)``.
    """
    table = _table(geometry)
    position = np.remainder(angle, 2.0 * np.pi) * (_TABLE_ANGLES / (2.0 * np.pi))
    below = np.floor(position)
    weight = (position - below).astype(np.float32)[..., None]
    below = below.astype(np.int64) % _TABLE_ANGLES
    image = (1 - weight) * table[below] + weight * table[(below + 1) % _TABLE_ANGLES]
    return _to_uint8(image)


def main(argv: list[str] | None = None) -> None:
    """Command line: generate the data set and write it to an ``.npz`` file."""
    parser = argparse.ArgumentParser(
        prog="smr-pendulum-data", description="Generate the pendulum occlusion benchmark.")
    parser.add_argument("--out", type=Path, default=Path("data/pendulum.npz"),
                        help="output .npz path (default: data/pendulum.npz)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--small", action="store_true",
                        help="tiny version for tests: 64/32/32 trajectories")
    parser.add_argument("--sample-rate", type=float, default=0.5,
                        help="share of the frames kept per trajectory (default: 0.5)")
    parser.add_argument("--sampling", choices=SAMPLINGS, default="uniform",
                        help="kept-frame pattern; 'bursty' is not the published benchmark")
    args = parser.parse_args(argv)
    sizes = dict(n_train=64, n_valid=32, n_test=32) if args.small else {}
    start = _time.perf_counter()
    data = make_pendulum(seed=args.seed, sample_rate=args.sample_rate, sampling=args.sampling,
                         **sizes)
    generated = _time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data.save(args.out)
    saved = _time.perf_counter()
    for split in SPLITS:
        print(f"{split}: images {data[split].images.shape}")
    print(f"generated in {generated - start:.1f} s; wrote {args.out} "
          f"({args.out.stat().st_size / 2**20:.1f} MiB) in {saved - generated:.1f} s")


if __name__ == "__main__":
    main()
