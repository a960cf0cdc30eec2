"""Tests of the pendulum occlusion generator against its spec (/work/shared/specs/pendulum.md)."""

import random
from dataclasses import fields

import numpy as np
import pytest

from smr_ts.datasets import PendulumSplit, load_pendulum, make_pendulum
from smr_ts.datasets.pendulum import SPLITS, _draw, _Geometry, _render, _simulate, _to_uint8, main

SMALL = dict(n_train=12, n_valid=6, n_test=6)
GEOMETRY = _Geometry(24, 128, (64.0, 64.0), 55.0, 8.0)
RATES = (0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def data_by_rate():
    return {rate: make_pendulum(**SMALL, sample_rate=rate) for rate in RATES}


def _arrays(data):
    return {(split, f.name): getattr(data[split], f.name)
            for split in SPLITS for f in fields(PendulumSplit)}


def test_same_seed_gives_identical_arrays_and_other_seed_differs():
    first, again = make_pendulum(**SMALL, seed=3), make_pendulum(**SMALL, seed=3)
    other = make_pendulum(**SMALL, seed=4)
    for key, array in _arrays(first).items():
        np.testing.assert_array_equal(array, _arrays(again)[key], err_msg=str(key))
    assert not np.array_equal(first.train.images, other.train.images)
    assert not np.array_equal(first.train.targets, other.train.targets)


def test_splits_have_requested_sizes_and_are_disjoint():
    data = make_pendulum(n_train=20, n_valid=10, n_test=10, sample_rate=1.0)
    assert [len(data[s]) for s in SPLITS] == [20, 10, 10]
    ids = np.concatenate([data[s].ids for s in SPLITS])
    assert len(np.unique(ids)) == 40
    trajectories = np.concatenate([data[s].targets.reshape(len(data[s]), -1) for s in SPLITS])
    assert len(np.unique(trajectories, axis=0)) == 40


@pytest.mark.parametrize("rate", RATES)
def test_kept_indices_sorted_unique_in_range(data_by_rate, rate):
    for split in SPLITS:
        time = data_by_rate[rate][split].time
        assert time.shape == (len(data_by_rate[rate][split]), round(rate * 100))
        assert np.all(np.diff(time, axis=1) > 0)  # sorted and unique
        assert time.min() >= 0 and time.max() <= 99


@pytest.mark.parametrize("rate", RATES[:-1])
def test_sample_rate_changes_only_which_frames_are_kept(data_by_rate, rate):
    full, part = data_by_rate[1.0], data_by_rate[rate]
    for split in SPLITS:
        rows = np.arange(len(full[split]))[:, None]
        at = (rows, part[split].time)  # with rate 1.0, column t is frame t
        for name in ("targets", "images", "clean_images", "occlusion", "angle"):
            np.testing.assert_array_equal(getattr(part[split], name),
                                          getattr(full[split], name)[at], err_msg=name)


def test_sampling_scheme_changes_only_which_frames_are_kept(data_by_rate):
    full, bursty = data_by_rate[1.0], make_pendulum(**SMALL, sampling="bursty")
    rows = np.arange(len(full.train))[:, None]
    for name in ("targets", "images", "occlusion"):
        np.testing.assert_array_equal(getattr(bursty.train, name),
                                      getattr(full.train, name)[rows, bursty.train.time])


def test_bursty_sampling_keeps_k_frames_with_more_irregular_gaps():
    kwargs = dict(n_train=200, n_valid=1, n_test=1, n_frames=100)
    uniform = make_pendulum(**kwargs).train.time
    bursty = make_pendulum(**kwargs, sampling="bursty").train.time
    assert bursty.shape == uniform.shape == (200, 50)
    assert np.all(np.diff(bursty, axis=1) > 0) and bursty.min() >= 0 and bursty.max() <= 99
    gaps_uniform, gaps_bursty = np.diff(uniform, axis=1), np.diff(bursty, axis=1)
    assert gaps_bursty.var() > 2 * gaps_uniform.var()
    assert np.mean(gaps_bursty == 1) > np.mean(gaps_uniform == 1)  # clustered


def test_first_frames_are_clean(data_by_rate):
    for split in SPLITS:
        part = data_by_rate[1.0][split]
        assert np.all(part.occlusion[:, :5] == 1.0)
        np.testing.assert_array_equal(part.images[:, :5], part.clean_images[:, :5])
        assert np.any(part.occlusion[:, 5:] < 1.0)  # ... and later ones are not all clean


def test_observed_frames_follow_the_mixing_formula(data_by_rate):
    part = data_by_rate[1.0].train
    f = part.occlusion[..., None, None].astype(np.float64)
    observed, clean = part.images.astype(np.float64), part.clean_images.astype(np.float64)
    # observed = floor(f * clean + (1 - f) * u), u in [0, 255): bounded by the two extremes.
    assert np.all(observed >= np.floor(f * clean) - 1e-9)
    assert np.all(observed <= f * clean + (1 - f) * 255 + 1e-9)
    noisy = part.images[part.occlusion == 0]
    assert abs(noisy.mean() - 127) < 3  # pure-noise frames are uniform on 0..254


def test_targets_are_sin_cos_of_angle_on_unit_circle(data_by_rate):
    part = data_by_rate[0.5].train
    np.testing.assert_allclose(part.targets[..., 0], np.sin(part.angle), atol=1e-6)
    np.testing.assert_allclose(part.targets[..., 1], np.cos(part.angle), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(part.targets, axis=-1), 1.0, atol=1e-6)
    assert part.targets.dtype == np.float32
    assert np.all((part.angle >= -np.pi) & (part.angle < np.pi))


def _centre_of_mass(image):
    rows, cols = np.indices(image.shape)
    weight = image.astype(np.float64)
    return (rows * weight).sum() / weight.sum(), (cols * weight).sum() / weight.sum()


def test_angle_zero_renders_pointing_down_and_pi_half_to_the_right():
    down, right = _render(np.array([0.0, np.pi / 2]), GEOMETRY).reshape(2, 24, 24)
    pivot = 64 / 128 * 24 - 0.5  # the pivot in output pixel-index coordinates
    row, col = _centre_of_mass(down)
    assert row > pivot + 4 and abs(col - pivot) < 0.05
    assert down[:10].max() < 20  # nothing above the pivot
    row, col = _centre_of_mass(right)  # end point (64 + 55 sin a, 64 + 55 cos a) = (119, 64)
    assert col > pivot + 4 and abs(row - pivot) < 0.05


def test_table_renderer_matches_reference_renderer():
    angles = np.random.default_rng(0).uniform(-10, 10, 300)
    fast = _render(angles, GEOMETRY).astype(int)
    reference = _to_uint8(_draw(angles, GEOMETRY)).reshape(300, -1).astype(int)
    assert np.abs(fast - reference).max() <= 1


def test_renderer_close_to_pillow_line_and_lanczos():
    image_module = pytest.importorskip("PIL.Image")
    draw_module = pytest.importorskip("PIL.ImageDraw")
    errors = []
    for angle in np.linspace(0, 2 * np.pi, 24, endpoint=False):
        canvas = image_module.new("F", (128, 128), 0.0)
        tip = (64 + 55 * np.sin(angle), 64 + 55 * np.cos(angle))
        draw_module.Draw(canvas).line([(64, 64), tip], fill=1.0, width=8)
        pillow = np.asarray(canvas.resize((24, 24), image_module.LANCZOS))
        ours = _draw(angle, GEOMETRY)
        errors.append(np.abs(_to_uint8(pillow).astype(int) - _to_uint8(ours).astype(int)).mean())
    # Pillow rasterises the 8 px line without antialiasing and with pixel centres on integers,
    # which moves edges by up to one canvas pixel; on average the frames agree closely.
    assert np.mean(errors) < 2.0


def _spec_occlusion(rng, n_frames=100):
    """The spec's occlusion factor for one trajectory, written out independently."""
    f = [rng.uniform(0, 1)]
    for _ in range(n_frames - 1):
        f.append(min(1.0, max(0.0, f[-1] + rng.uniform(-0.2, 0.2))))
    t1, t2 = rng.uniform(0, 0.25), rng.uniform(0.75, 1)
    f = [min(1.0, max(0.0, (v - t1) / (t2 - t1))) for v in f]
    return [1.0] * 5 + f[5:]


def test_occlusion_distribution_matches_spec_monte_carlo():
    rng = random.Random(12345)
    reference = np.array([_spec_occlusion(rng) for _ in range(3000)])[:, 5:]
    ours = make_pendulum(n_train=600, n_valid=1, n_test=1, sample_rate=1.0).train.occlusion[:, 5:]
    for share in (lambda f: np.mean(f == 1.0), lambda f: np.mean(f == 0.0), np.mean):
        assert abs(share(ours) - share(reference)) < 0.04
    assert 0.1 < np.mean(reference == 1.0) < 0.3  # the check is not vacuous


def _energy(angle, velocity, mass=1.0, length=1.0, gravity=9.81):
    # Conserved by theta'' = (3 g / l) sin(theta) without friction; hanging angle a = 0 lowest.
    return 0.5 * mass * length**2 / 3 * velocity**2 - mass * gravity * length * np.cos(angle)


def test_energy_decays_without_process_noise():
    part = make_pendulum(**SMALL, process_noise_std=0.0, sample_rate=1.0).train
    energy = _energy(part.angle, part.angular_velocity)
    assert np.all(np.diff(energy, axis=1) <= 1e-9)
    assert np.all(energy[:, -1] < energy[:, 0] - 1e-4)  # friction does take energy out
    noisy = make_pendulum(**SMALL, sample_rate=1.0).train
    assert np.any(np.diff(_energy(noisy.angle, noisy.angular_velocity), axis=1) > 1e-3)


def _rk4_reference(theta, step=1e-4, n_frames=100, frame_dt=0.01, stiffness=29.43, c=0.1):
    """Fine classical RK4 of the raw equation, independent of torchdiffeq."""
    def rhs(state):
        return np.stack([state[1], stiffness * np.sin(state[0]) - c * state[1]])

    state, frames = np.stack([theta, np.zeros_like(theta)]), []
    for _ in range(n_frames):
        frames.append(state)
        for _ in range(round(frame_dt / step)):
            k1 = rhs(state)
            k2 = rhs(state + step / 2 * k1)
            k3 = rhs(state + step / 2 * k2)
            k4 = rhs(state + step * k3)
            state = state + step / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return np.stack(frames, axis=-1)  # (2, n, n_frames)


def test_physics_matches_fine_reference_integration():
    part = make_pendulum(**SMALL, process_noise_std=0.0, sample_rate=1.0).train
    reference = _rk4_reference(part.angle[:, 0] + np.pi)  # back to the raw convention
    angle_error = np.angle(np.exp(1j * (part.angle + np.pi - reference[0])))
    assert np.abs(angle_error).max() < 1e-8  # rad over 1 s (measured: ~3e-11)
    np.testing.assert_allclose(part.angular_velocity, reference[1], atol=1e-7)


def test_hanging_down_is_stable_and_upright_is_not():
    no_noise = np.zeros((2, 99))
    raw, _ = _simulate(np.array([np.pi + 0.1, 0.1]), no_noise,
                       frame_dt=0.01, length=1.0, gravity=9.81, friction=0.1)
    angle = np.angle(np.exp(1j * (raw - np.pi)))  # the benchmark's shifted convention
    assert np.abs(angle[0]).max() <= 0.1 + 1e-9  # swings around hanging down
    assert np.abs(angle[0]).min() < 0.01  # ... through the bottom
    assert np.abs(angle[1]).min() < 0.5  # started near upright (|a| = pi - 0.1), fell down


def test_to_frame_columns_dtypes_and_alignment(data_by_rate):
    data = data_by_rate[0.5]
    X, y = data.to_frame("valid")
    part = data.valid
    n, k = part.time.shape
    assert X.shape == (n * k, 2 + 576) and y.shape == (n * k, 2)
    assert list(X.columns[:3]) == ["unique_id", "ds", "px_000"] and X.columns[-1] == "px_575"
    assert list(y.columns) == ["sin", "cos"] and X.index.equals(y.index)
    assert (X.dtypes.iloc[2:] == np.float32).all() and (y.dtypes == np.float32).all()
    pixels = X.iloc[:, 2:].to_numpy()
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    assert set(X["unique_id"]) == set(part.ids)
    keys = list(zip(X["unique_id"], X["ds"]))
    assert keys == sorted(keys)
    row = 3 * k + 7  # trajectory 3, kept frame 7
    np.testing.assert_array_equal(pixels[row], part.images[3, 7].reshape(-1) / np.float32(255))
    np.testing.assert_array_equal(y.iloc[row].to_numpy(), part.targets[3, 7])
    assert X["ds"].iloc[row] == part.time[3, 7]


def test_cli_small_round_trip(tmp_path, capsys):
    path = tmp_path / "nested" / "pendulum.data"  # any name; nothing is appended
    main(["--out", str(path), "--small", "--seed", "7"])
    assert "train: images (64, 50, 24, 24)" in capsys.readouterr().out
    loaded = load_pendulum(path)
    expected = make_pendulum(n_train=64, n_valid=32, n_test=32, seed=7)
    for key, array in _arrays(expected).items():
        np.testing.assert_array_equal(_arrays(loaded)[key], array, err_msg=str(key))
        assert _arrays(loaded)[key].dtype == array.dtype
    assert loaded.params == expected.params


def test_empty_validation_and_test_splits_are_allowed():
    data = make_pendulum(n_train=2, n_valid=0, n_test=0, n_frames=10)
    assert data.test.images.shape == (0, 5, 24, 24)
    X, y = data.to_frame("test")
    assert len(X) == len(y) == 0


@pytest.mark.parametrize("name, value", [
    ("n_train", 0), ("n_valid", -1), ("n_frames", 2.5), ("frame_dt", 0.0), ("gravity", -1.0),
    ("friction", -0.1), ("process_noise_std", float("nan")), ("occlusion_init", (0.5, 0.2)),
    ("occlusion_t1", (0.0, 0.9)), ("n_clean_first", 101), ("sample_rate", 0.0),
    ("sample_rate", 1.5), ("sampling", "random"), ("seed", -1), ("pivot", (1.0,)),
])
def test_invalid_parameters_raise_naming_the_parameter(name, value):
    with pytest.raises(ValueError, match=name):
        make_pendulum(**{**dict(n_train=2, n_valid=1, n_test=1), name: value})


def test_unknown_split_name_is_rejected(data_by_rate):
    with pytest.raises(ValueError, match="split"):
        data_by_rate[0.5].to_frame("validation")


# ---------------------------------------------------------------- the pendulum generator
def test_clean_frames_are_renders_of_the_target_angle():
    """Planted: frames drawn at the previous kept frame's angle (or any angle but the target's).

    Compared with a fresh render of the angle the targets encode, not with the generator itself.
    """
    data = make_pendulum(n_train=6, n_valid=1, n_test=1, seed=2)
    part = data.train
    angle = np.arctan2(part.targets[..., 0].astype(np.float64), part.targets[..., 1].astype(np.float64))
    geometry = _Geometry(24, 128, (64.0, 64.0), 55.0, 8.0)  # make_pendulum's defaults
    fresh = _render(angle.reshape(-1), geometry).reshape(part.clean_images.shape).astype(int)
    # the generator draws at the angle plus 1e-5 rad of render noise: at most one grey level apart
    assert np.abs(fresh - part.clean_images.astype(int)).max() <= 1
    moved = np.diff(angle, axis=1)
    assert np.abs(moved).max() > 0.05  # the angle does change between kept frames: the check can fail
