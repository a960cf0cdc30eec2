"""Time and peak memory of one S6 layer's forward + backward beside S5, mambapy and the reference loop.

Usage (from the repository root)::

    python benchmarks/selective_scan.py [--batch 16] [--length 1024] [--memory-length 4096]
                                        [--d-model 32] [--state 16] [--repeats 5] [--threads 1]
    python benchmarks/selective_scan.py --quick     # smoke test: tiny sizes, prints only

What is measured: ``y = layer(u, dt)`` and the gradients of ``(y * g).sum()`` with respect to ``u``
and every parameter, float32, ``u, g ~ N(0, 1)``, gaps ``dt ~ Exp(1)``. The layers, all with
d_model ``--d-model`` and state size ``--state`` (S6 and mambapy: expand 2, so D = 2 d_model):

- ``S6``: :class:`smr_ts.ssm.S6`, whose selective scan is the chunked one;
- ``S6, previous path``: the same layer with its selective scan swapped for the path it ran
  before the chunked scan: every step's (batch, L, D, N) terms built, then the fast diagonal
  scan (``selective_scan_reference(..., scan_fn=scan)``, what CUDA still runs);
- ``S6, reference loop``: ``S6(use_reference_scan=True)``, the terms built and the plain loop;
- ``S5``: :class:`smr_ts.ssm.S5`;
- ``mambapy Mamba block (pscan)``: ``mambapy.mamba.MambaBlock`` with its pure-PyTorch parallel
  scan (no gaps: Mamba's own block), when ``mambapy`` imports (``pip install mambapy``; it is not a
  dependency of this package).

Time, at ``--batch`` x ``--length``: one process calls the layers in interleaved rounds (a
warm-up round, then ``--repeats`` timed rounds), so load from other processes hits every layer
alike; medians. Peak memory, at ``--batch`` x ``--memory-length``: per layer a fresh process makes
one call; the peak resident set size (``ru_maxrss``) minus its value right after the layer and
inputs were made. Writes ``docs/benchmarks/selective_scan.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import torch

import smr_ts.ssm.s6 as s6_module
from smr_ts.ssm import S5, S6
from smr_ts.ssm.linear_scan import scan
from smr_ts.ssm.selective_scan import selective_scan_reference

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
from _machine import provenance, write_report  # noqa: E402

try:
    from mambapy.mamba import MambaBlock, MambaConfig
except ImportError:  # optional outside reference
    MambaBlock = None

ROOT = Path(__file__).resolve().parents[1]
S6_FAST, S6_PREVIOUS, S6_LOOP, S5_LAYER, MAMBAPY = (
    "S6 (chunked selective scan)", "S6, previous path (all terms built + diagonal scan)",
    "S6, reference loop (use_reference_scan=True)", "S5", "mambapy Mamba block (pscan)")


def _previous_scan(*args, **kwargs):
    """S6's selective scan before the chunked one: every step's terms, then the fast diagonal scan."""
    return selective_scan_reference(*args, **kwargs, scan_fn=scan)


def make_layer(method, args):
    """``(layer, call)``: ``call(u, dt)`` runs the layer's forward (inside any swap it needs)."""
    torch.manual_seed(0)
    if method == MAMBAPY:
        block = MambaBlock(MambaConfig(d_model=args.d_model, n_layers=1, d_state=args.state))
        return block, lambda u, dt: block(u)
    if method == S5_LAYER:
        layer = S5(args.d_model, state_size=args.state)
    else:
        layer = S6(args.d_model, state_size=args.state, use_reference_scan=method == S6_LOOP)
    swap = mock.patch.object(s6_module, "selective_scan", _previous_scan) if method == S6_PREVIOUS else nullcontext()

    def call(u, dt):
        with swap:
            return layer(u, dt)

    return layer, call


def _inputs(batch, length, args):
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(batch, length, args.d_model, generator=gen).requires_grad_()
    dt = torch.empty(batch, length).exponential_(generator=gen)
    g = torch.randn(batch, length, args.d_model, generator=gen)
    return u, dt, g


def forward_backward(layer, call, u, dt, g):
    """One forward and backward; seconds."""
    start = time.perf_counter()
    torch.autograd.grad((call(u, dt) * g).sum(), [u, *layer.parameters()])
    return time.perf_counter() - start


def available(method):
    return method != MAMBAPY or MambaBlock is not None


def time_layers(args):
    """Worker: {method: [seconds, ...]} over interleaved rounds."""
    methods = [m for m in METHODS if available(m)]
    layers = {m: make_layer(m, args) for m in methods}
    inputs = _inputs(args.batch, args.length, args)
    times = {m: [] for m in methods}
    for round_ in range(args.repeats + 1):
        for method in methods[round_ % len(methods):] + methods[: round_ % len(methods)]:
            seconds = forward_backward(*layers[method], *inputs)
            if round_ > 0:
                times[method].append(seconds)
    return times


def peak_memory(method, args):
    """Worker: bytes of peak resident memory above the layer and inputs during one call."""
    layer, call = make_layer(method, args)
    forward_backward(layer, call, *_inputs(1, 32, args))  # one-time initialisation, not counted
    inputs = _inputs(args.batch, args.memory_length, args)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    forward_backward(layer, call, *inputs)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) * 1024  # KiB on Linux


METHODS = [S6_FAST, S6_PREVIOUS, S6_LOOP, S5_LAYER, MAMBAPY]


def _worker(args, *extra):
    cmd = [sys.executable, __file__, "--batch", str(args.batch), "--length", str(args.length), "--memory-length",
           str(args.memory_length), "--d-model", str(args.d_model), "--state", str(args.state), "--repeats",
           str(args.repeats), "--threads", str(args.threads), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return f"failed: {tail[:80]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _uptime():
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return [f"{x:.2f}" for x in os.getloadavg()]


def _targets(results):
    """The targets of the S6 work, each as (what, value, met)."""
    med = {m: statistics.median(r["times"]) for m, r in results.items() if "times" in r}
    peak = {m: r["peak"] for m, r in results.items() if isinstance(r.get("peak"), int)}
    rows = []
    if S6_FAST in med and MAMBAPY in med:
        ratio = med[MAMBAPY] / med[S6_FAST]
        rows.append((f"mambapy's time / S6's time = {ratio:.2f} (target: at least 2)", ratio >= 2))
    if S6_FAST in med and S5_LAYER in med:
        ratio = med[S6_FAST] / med[S5_LAYER]
        rows.append((f"S6's time / S5's time = {ratio:.1f} (target: at most 40)", ratio <= 40))
    if S6_FAST in peak and S6_PREVIOUS in peak:
        ratio = peak[S6_FAST] / peak[S6_PREVIOUS]
        rows.append((f"S6's peak memory / the previous path's = {ratio:.3f} (target: at most 0.25)", ratio <= 0.25))
    return [f"- {text}: **{'met' if met else 'not met'}**" for text, met in rows]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=1024, help="steps of the timed calls")
    parser.add_argument("--memory-length", type=int, default=4096, help="steps of the peak-memory calls")
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat, print only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "selective_scan.md")
    parser.add_argument("--time-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", metavar="METHOD", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.time_worker:
        print(json.dumps(time_layers(args)))
        return None
    if args.memory_worker:
        print(json.dumps(peak_memory(args.memory_worker, args)))
        return None
    if args.quick:
        args.batch, args.length, args.memory_length, args.d_model, args.repeats = 2, 64, 128, 8, 1

    load_before = _uptime()
    times = _worker(args, "--time-worker")
    results = {}
    for method in METHODS:
        if not available(method):
            results[method] = {"error": "not installed (`pip install mambapy`)"}
        elif isinstance(times, str):
            results[method] = {"error": times}
        else:
            peak = _worker(args, "--memory-worker", method)
            results[method] = {"times": times[method], "peak": peak}
        print(f"{method}: {results[method]}", file=sys.stderr, flush=True)
    load_after = _uptime()

    fast = results[S6_FAST]
    rows = [f"| layer | median s (min-max), {args.batch} x {args.length} | time / S6 | "
            f"peak MiB, {args.batch} x {args.memory_length} | memory / S6 |", "|---|---|---|---|---|"]
    for method, r in results.items():
        if "error" in r:
            rows.append(f"| {method} | {r['error']} | | | |")
            continue
        med = statistics.median(r["times"])
        ratio = med / statistics.median(fast["times"]) if "times" in fast else float("nan")
        if isinstance(r["peak"], int):
            mib = f"{r['peak'] / 2**20:.0f}"
            mem_ratio = f"{r['peak'] / fast['peak']:.2f}" if isinstance(fast.get("peak"), int) and fast["peak"] else ""
        else:
            mib, mem_ratio = r["peak"], ""
        rows.append(f"| {method} | {med:.3g} ({min(r['times']):.3g}-{max(r['times']):.3g}) | {ratio:.2f} | {mib} | "
                    f"{mem_ratio} |")
    lines = [
        "# S6: one layer's forward + backward beside S5, mambapy and the reference loop (CPU)",
        "",
        f"`y = layer(u, dt)` and the gradients of `(y * g).sum()` with respect to `u` and every parameter; float32, "
        f"d_model {args.d_model}, state size {args.state} (S6 and mambapy: expand 2, so {2 * args.d_model} inner "
        f"channels), gaps `dt ~ Exp(1)` (mambapy's block takes none). Time at batch {args.batch} x {args.length} "
        f"steps, peak memory at batch {args.batch} x {args.memory_length} steps, {args.threads} torch thread(s). "
        "*Previous path*: the same S6 layer with its selective scan swapped for the one it ran before the chunked "
        "scan (every step's (batch, L, D, N) terms built, then the fast diagonal scan; CUDA still runs it).",
        "",
        *rows,
        "",
        *_targets(results),
        "",
        "- time: one process calls the layers in interleaved rounds (one warm-up round, then "
        f"{args.repeats} timed rounds, so load from other processes hits every layer alike); median and range.",
        "- peak memory: per layer a fresh process makes one call; peak resident set size "
        "(`resource.getrusage(RUSAGE_SELF).ru_maxrss`) minus its value right after the layer and the inputs were "
        "made (after one small warm-up call). It counts the outputs, every gradient and every temporary.",
        f"- load (1, 5, 15-minute averages from /proc/loadavg): {' '.join(load_before)} before and "
        f"{' '.join(load_after)} after the run; other processes share the cores, so the ratios (one run, "
        "interleaved) say more than the seconds.",
        *provenance("benchmarks/selective_scan.py", argv, f", torch threads {args.threads}",
                    f", numpy {_version('numpy')}, mambapy {_version('mambapy')}"),
    ]
    if args.quick:
        print("\n".join(lines))
    else:
        write_report(args.out, lines)
    return results


if __name__ == "__main__":
    main()
