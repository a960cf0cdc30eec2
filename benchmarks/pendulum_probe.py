"""Pendulum training probe: the first epochs of the full recipe, per seed and training variant.

A full pendulum run takes an hour on a CPU; a run that fails usually fails in its first epochs,
when the learning rate reaches its peak after the warm-up. This script trains each
(configuration, variant, seed) under the full 100-epoch schedule but stops after ``--stop-after``
epochs, and tabulates the validation MSE and the largest gradient norm (before clipping) of each
epoch, so that recipes can be compared before committing hours to them.

A variant is ``recipe``, ``tuned`` (the backbone's probe-chosen settings in
``smr_ts.recipes.PENDULUM_BACKBONE_SETTINGS``) or a comma-separated list of departures from the
recipe, ``lr=...`` (the non-SSM learning rate) and ``grad_clip=...``. The table goes to ``docs/results/pendulum_probe.md`` with
the command and the machine.

    python benchmarks/pendulum_probe.py --configs ode_rnn --seeds 0 1 2 --jobs 2
    python benchmarks/pendulum_probe.py --configs gru_dt --seeds 0 --variant recipe --variant grad_clip=1
    python benchmarks/pendulum_probe.py --configs s6 --seeds 0 --variant recipe --variant tuned --stop-after 16
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from smr_ts.callbacks import StopAfter
from smr_ts.datasets import make_pendulum
from smr_ts.recipes import PENDULUM_BACKBONE_SETTINGS, pendulum_forecaster

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
from _machine import command, cpu_model, software, written  # noqa: E402
from pendulum_runs import CONFIGS, DEPARTURES, config_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Validation MSE of a model that has learnt nothing: (sin, cos) of a uniform angle has variance 1/2.
COLLAPSED = 0.3


def parse_variant(text: str) -> dict:
    """``"recipe"`` -> {}; ``"tuned"`` -> {"tuned": True}; ``"lr=0.003,grad_clip=1"`` -> {"lr": 0.003, "grad_clip": 1.0}."""
    if text == "recipe":
        return {}
    if text == "tuned":
        return {"tuned": True}
    settings = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name not in DEPARTURES or not value:
            raise argparse.ArgumentTypeError(f"a variant is 'recipe', 'tuned' or name=value pairs of {list(DEPARTURES)}, got {text!r}")
        settings[name] = float(value)
    return settings


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["ode_rnn"], choices=list(CONFIGS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variant", action="append", type=parse_variant, default=None,
                   help="'recipe', 'tuned' or e.g. 'lr=0.003,grad_clip=1' (repeatable; default: recipe, grad_clip=1, "
                        "lr=0.003,grad_clip=1)")
    p.add_argument("--stop-after", type=int, default=4, help="epochs trained (of the --epochs schedule)")
    p.add_argument("--epochs", type=int, default=100, help="the schedule's length (the recipe's 100)")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-valid", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=1000,
                   help="generated but not used: the sizes define the data set, so they match the benchmark's")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="probes trained at a time, one process each (1 torch thread)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "pendulum_probe.md")
    args = p.parse_args(argv)
    if args.variant is None:
        args.variant = [{}, {"grad_clip": 1.0}, {"lr": 0.003, "grad_clip": 1.0}]
    return args


def describe(variant: dict, config: str | None = None) -> str:
    """A variant's label: "recipe", "lr 0.003, grad_clip 1", or "tuned (grad_clip 1)" with the
    configuration's chosen settings."""
    if variant.get("tuned"):
        chosen = PENDULUM_BACKBONE_SETTINGS.get(CONFIGS[config][0], {}) if config else {}
        return f"tuned ({describe(chosen)})"
    return ", ".join(f"{k} {v:g}" for k, v in variant.items()) or "recipe"


def probe(config: str, variant: dict, seed: int, args) -> dict:
    """Train the first ``args.stop_after`` epochs; return the per-epoch history."""
    torch.set_num_threads(1)
    data = make_pendulum(n_train=args.n_train, n_valid=args.n_valid, n_test=args.n_test, seed=args.data_seed)
    settings = config_settings(config)
    model = pendulum_forecaster(settings.pop("backbone"), **settings, epochs=args.epochs, random_state=seed,
                                device=args.device, **variant)
    # The full schedule (learning-rate warm-up and decay over args.epochs), stopped after the first epochs.
    model.set_params(callbacks=[StopAfter(args.stop_after)])
    model.fit(*data.to_frame("train"), validation_data=data.to_frame("valid"))
    return {"config": config, "variant": variant, "seed": seed,
            "valid_mse": [h["valid_mse"] for h in model.history_],
            "grad_norm": [h["grad_norm"] for h in model.history_]}


def main(argv=None):
    args = parse_args(argv)
    jobs = [(c, v, s) for c in args.configs for v in args.variant for s in args.seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(probe, *zip(*jobs), [args] * len(jobs)))
    else:
        results = [probe(c, v, s, args) for c, v, s in jobs]
    for r in results:
        print(f"{r['config']} ({describe(r['variant'], r['config'])}) seed {r['seed']}: valid MSE "
              + " ".join(f"{v:.3f}" for v in r["valid_mse"]), flush=True)
    write_report(args, results, argv)


def write_report(args, results, argv):
    lines = [
        "# Pendulum training probe",
        "",
        f"The first {args.stop_after} epochs of the {args.epochs}-epoch schedule (1 epoch of warm-up, then cosine), "
        f"{args.n_train}/{args.n_valid}/{args.n_test} train/valid/test sequences, as the benchmark's "
        f"(data seed {args.data_seed}; the test set is not used). "
        f"Per epoch: validation MSE, and in brackets the largest gradient norm of the epoch's steps before "
        f"clipping. **collapsed**: validation MSE above {COLLAPSED} at the last epoch, where a model "
        "that has learnt nothing sits (about 0.4-0.5).",
        "",
        f"- command: `{command('benchmarks/pendulum_probe.py', argv)}`",
        f"- machine: {cpu_model()}, 1 torch thread per probe, {args.jobs} at a time; {software()}",
        f"- written: {written()}",
        "",
        "| model | variant | seed | " + " | ".join(f"epoch {e}" for e in range(args.stop_after)) + " | |",
        "|---|---|---|" + "---|" * (args.stop_after + 1),
    ]
    for r in results:
        cells = [f"{v:.3f} ({g:.3g})" for v, g in zip(r["valid_mse"], r["grad_norm"])]
        cells += [""] * (args.stop_after - len(cells))
        verdict = "**collapsed**" if r["valid_mse"][-1] > COLLAPSED else ""
        lines.append(f"| {r['config']} | {describe(r['variant'], r['config'])} | {r['seed']} | " + " | ".join(cells) + f" | {verdict} |")
    summary = {}
    for r in results:
        key = (r["config"], describe(r["variant"], r["config"]))
        summary.setdefault(key, []).append(r["valid_mse"][-1] > COLLAPSED)
    lines += ["", "| model | variant | collapsed seeds |", "|---|---|---|"]
    lines += [f"| {c} | {v} | {sum(flags)} of {len(flags)} |" for (c, v), flags in summary.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
