"""Pendulum regression: train SMRForecaster on the irregularly sampled pendulum benchmark.

Generates the data locally (``smr_ts.datasets.make_pendulum``), fits the S5 recipe of the
S5 paper through the public estimator API (per-frame CNN, Gaussian head, two learning rates,
warm-up + cosine, model selection on validation MSE), and prints the test MSE x 1e-3 beside
the published table. Also saves a plot of predicted vs true (sin, cos) for a few test
sequences, with noisy frames shaded.

    python examples/pendulum_regression.py              # quick: under 2 minutes on a 2-core CPU
    python examples/pendulum_regression.py --full       # the benchmark: 2000/1000/1000, 100 epochs
    python examples/pendulum_regression.py --full --backbone s5 --smr --seeds 0 1 2
    python examples/pendulum_regression.py --full --backbone s6 --smr   # with S6's chosen settings
    python examples/pendulum_regression.py --full --backbone s6 --s5-recipe   # S5's recipe as published

The quick default trains on a quarter of the data for 15 epochs (78 s measured on 2 cores that another job kept
busy; no thread setting needed, the estimator's n_threads takes care of it): its numbers show the pipeline works,
not what the model reaches (see docs/results/pendulum.md for full runs).
Each backbone trains with its probe-chosen departures from S5's recipe (``smr_ts.recipes.
PENDULUM_BACKBONE_SETTINGS``: gradient clipping for S6, and a lower learning rate with clipping for
GRU-dt and ODE-RNN, which do not train under S5's); the first line printed names them.
``--s5-recipe`` trains every backbone with S5's recipe as published; ``--lr`` and ``--grad-clip`` win
over both.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from smr_ts.backbones import BACKBONES
from smr_ts.datasets import make_pendulum
from smr_ts.recipes import PENDULUM_BACKBONE_SETTINGS, PENDULUM_PUBLISHED, pendulum_forecaster, pendulum_mse

QUICK = dict(n_train=500, n_valid=100, n_test=100, epochs=15)
FULL = dict(n_train=2000, n_valid=1000, n_test=1000, epochs=100)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the full benchmark (2000/1000/1000 sequences, 100 epochs)")
    parser.add_argument("--backbone", default="s5", choices=list(BACKBONES))
    parser.add_argument("--smr", action="store_true", help="add State Memory Replay (S5 and S6)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (one model each)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the generated data set")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--n-train", type=int, help="override the number of training sequences")
    parser.add_argument("--n-valid", type=int, help="override the number of validation sequences")
    parser.add_argument("--n-test", type=int, help="override the number of test sequences")
    parser.add_argument("--s5-recipe", action="store_true",
                        help="train with S5's recipe as published, without the backbone's chosen departures from it")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate of the non-SSM parameters (the recipe's is 0.012)")
    parser.add_argument("--grad-clip", type=float, default=None, help="clip gradients to this norm (the recipe does not)")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu' or 'cuda'")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for training (default: the estimator's n_threads='auto', one)")
    parser.add_argument("--plot", default="runs/pendulum_predictions.png",
                        help="where to save the prediction plot ('' to skip)")
    parser.add_argument("--verbose", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    sizes = dict(FULL if args.full else QUICK)
    for name in ("epochs", "n_train", "n_valid", "n_test"):
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    epochs = sizes.pop("epochs")

    start = time.perf_counter()
    data = make_pendulum(seed=args.data_seed, **sizes)
    X_train, y_train = data.to_frame("train")
    X_valid, y_valid = data.to_frame("valid")
    X_test, y_test = data.to_frame("test")
    n_frames = data.params["n_frames"]
    print(f"data: {sizes} sequences, each {data.train.time.shape[1]} frames observed at irregular times among "
          f"frames 0-{n_frames - 1}, generated in {time.perf_counter() - start:.1f} s")

    name = args.backbone.upper().replace("_", "-") + ("+SMR" if args.smr else "")
    tuned = not args.s5_recipe
    chosen = PENDULUM_BACKBONE_SETTINGS.get(args.backbone, {}) if tuned else {}
    print("recipe: S5's" + (f", with {name}'s chosen " + ", ".join(f"{k} {v:g}" for k, v in chosen.items())
                              if chosen else ""))
    results, model = [], None
    for seed in args.seeds:
        departures = {k: v for k, v in (("lr", args.lr), ("grad_clip", args.grad_clip)) if v is not None}
        if args.threads:
            departures["n_threads"] = args.threads
        model = pendulum_forecaster(args.backbone, smr=args.smr, tuned=tuned, epochs=epochs, random_state=seed,
                                    device=args.device, verbose=args.verbose, **departures)
        t0 = time.perf_counter()
        model.fit(X_train, y_train, validation_data=(X_valid, y_valid))
        seconds = time.perf_counter() - t0
        mse = pendulum_mse(model, X_test, y_test)
        results.append(mse)
        print(f"{name} seed {seed}: test MSE {mse * 1e3:.2f}e-3 (best epoch {model.best_epoch_}, "
              f"{seconds / len(model.history_):.1f} s/epoch)")

    mean, std = np.mean(results) * 1e3, np.std(results) * 1e3
    print_table(name, mean, std, len(results), epochs, sizes)
    if args.plot:  # "" skips it
        title = (f"{name}, seed {args.seeds[-1]}: test MSE {results[-1] * 1e3:.2f}e-3 "
                 f"({sizes['n_train']} training sequences, {epochs} epochs)")
        plot_predictions(model, data, X_test, Path(args.plot), title)
    return {"name": name, "test_mse": results, "model": model}


def mse_cell(mean: float, std: float, n_seeds: int) -> str:
    """Mean +- std over seeds; one seed has no spread to show."""
    return f"{mean:6.2f} (1 seed)" if n_seeds == 1 else f"{mean:6.2f} +- {std:4.2f}"


def print_table(name, mean, std, n_seeds, epochs, sizes):
    rows = [(f"{name} (smr_ts, this run: {sizes['n_train']} train seqs, {epochs} epochs)", mean, std, n_seeds, "")]
    rows += [(m, mu, sd, n, src) for m, mu, sd, n, src in PENDULUM_PUBLISHED]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'model':<{width}}  test MSE x 1e-3  seeds  source")
    for model, mu, sd, n, source in sorted(rows, key=lambda r: r[1]):
        print(f"{model:<{width}}  {mse_cell(mu, sd, n):<15}  {n:5d}  {source}")


def plot_predictions(model, data, X_test, path: Path, title: str, n_sequences: int = 3):
    """Predicted and true (sin, cos) of the first test sequences against time in frames.

    Each observed frame is a band of grey as dark as its pixels are noisy: ``1 - f``, with ``f``
    the occlusion factor (1 clean, 0 pure noise); frames that were not observed are white.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        print("matplotlib is not installed: skipping the plot", file=sys.stderr)
        return
    pred = model.predict(X_test).to_numpy().reshape(len(data.test), -1, 2)
    n_frames = data.params["n_frames"]
    fig, axes = plt.subplots(n_sequences, 2, figsize=(10, 2.4 * n_sequences + 0.9), sharex=True, squeeze=False)
    for row in range(n_sequences):
        t, occ = data.test.time[row], data.test.occlusion[row]
        for col, label in enumerate(("sin", "cos")):
            ax = axes[row, col]
            for ti, f in zip(t, occ):
                ax.axvspan(ti - 0.5, ti + 0.5, color="0.3", alpha=0.6 * (1 - f), lw=0)
            ax.plot(t, data.test.targets[row, :, col], "k.-", lw=1)
            ax.plot(t, pred[row, :, col], "C1.-", lw=1)
            ax.set_xlim(-0.5, n_frames - 0.5)
            ax.set_ylim(-1.3, 1.3)
            ax.set_ylabel(f"seq {row}: {label}")
    handles = [plt.Line2D([], [], color="k", marker=".", lw=1, label="true angle"),
               plt.Line2D([], [], color="C1", marker=".", lw=1, label="predicted"),
               Patch(color="0.3", alpha=0.6, label="observed frame of pure noise (f = 0)"),
               Patch(color="0.3", alpha=0.3, label="observed frame, half noise (f = 0.5)"),
               Patch(facecolor="white", edgecolor="0.7", label="clean frame (f = 1) or not observed")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel(f"time in frames (each sequence observes {data.test.time.shape[1]} of frames 0-{n_frames - 1})")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
