"""Time forward+backward of the linear scan against alternatives and write a table to docs/.

Usage (from the repository root)::

    python benchmarks/scan.py [--sizes 32x256 8x1024 32x1024 32x4096] [--repeats 9]
    python benchmarks/scan.py --quick            # smoke test: tiny sizes, prints only
    python benchmarks/scan.py --device cuda      # writes docs/benchmarks/scan_cuda.md

What is measured: ``x = f(a, b)`` and the gradients of ``(x * g).sum()`` with respect to
``a`` and ``b`` (``torch.autograd.grad``), real float32, shape ``(batch, L, width, state)``,
``a = exp(-U(0, 1))``, ``b, g ~ N(0, 1)``. ``f`` is

- ``scan``: the fast path of ``smr_ts.ssm.linear_scan``;
- ``scan_reference``: its plain loop over unbound steps (autograd differentiates it);
- ``mambapy pscan``: the pure-PyTorch Blelloch scan of the ``mambapy`` package, an
  outside reference, when it imports (``pip install mambapy``; not a dependency);
- ``naive loop``: a loop that indexes ``a[:, k]``, whose backward is O(L^2); timed once
  (no warm-up) and only up to ``--naive-max-len``.

Time: per size one process calls the methods in interleaved rounds (a warm-up round,
then ``--repeats`` timed rounds), so that load from other processes hits all methods
alike; the median is reported. Memory: per (method, size) a fresh process makes one call;
on CPU the peak is the process's peak resident set size (``getrusage`` ``ru_maxrss``)
minus its value right after the inputs were allocated, on CUDA
``torch.cuda.max_memory_allocated`` minus the allocation after the inputs. Either way it
counts the output, both gradients and every temporary. Torch's thread count is left at
its default (unless ``--threads``) and recorded.
"""

import argparse
import importlib.metadata
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from smr_ts.ssm.linear_scan import scan, scan_reference
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared helpers
from _machine import command, cpu_model, software, today  # noqa: E402

try:
    from mambapy.pscan import pscan
except ImportError:  # optional outside reference
    pscan = None

DEFAULT_SIZES = ["32x256", "8x1024", "32x1024", "32x4096"]
QUICK_SIZES = ["2x64", "2x256"]


def naive_loop(a, b):
    """``x_k = a_k x_{k-1} + b_k`` indexing ``a[:, k]`` in the loop: the backward of every
    index writes a full-size gradient, so the backward is O(L^2)."""
    x = torch.zeros_like(b[:, 0])
    states = []
    for k in range(b.shape[1]):
        x = a[:, k] * x + b[:, k]
        states.append(x)
    return torch.stack(states, dim=1)


FAST, NAIVE, FLOOR = "scan (fast path)", "naive loop (indexes a[:, k])", "memory rates"
METHODS = {
    FAST: scan,
    "scan_reference (loop over unbound steps)": scan_reference,
    "mambapy pscan": pscan,
    NAIVE: naive_loop,
}


def _skip_reason(method, length, args):
    if METHODS[method] is None:
        return "not installed (`pip install mambapy`)"
    if method == NAIVE and length > args.naive_max_len:
        return f"skipped: O(L^2) backward, L > {args.naive_max_len}"
    return None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _inputs(batch, length, args):
    gen = torch.Generator().manual_seed(0)
    shape = (batch, length, args.width, args.state)
    a = torch.rand(shape, generator=gen).neg_().exp_().to(args.device).requires_grad_()
    b = torch.randn(shape, generator=gen).to(args.device).requires_grad_()
    g = torch.randn(shape, generator=gen).to(args.device)
    return a, b, g


def _seconds(method, a, b, g):
    """One forward + backward."""
    cuda = a.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    torch.autograd.grad((METHODS[method](a, b) * g).sum(), (a, b))
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


# Bytes per element of one timed call that no implementation can avoid (float32): the scan reads a
# and b and writes x (12), its backward reads a, x and dLoss/dx and writes both gradients (20);
# the loss reads x and g and writes x * g (12), sums it (4), and its backward writes dLoss/dx from
# g (8). New memory: x, x * g, dLoss/dx and the two gradients, five tensors the kernel must hand
# out zeroed page by page.
FLOOR_BYTES_PER_ELEMENT = 56
FLOOR_NEW_TENSORS = 5


def memory_rates(batch, length, args):
    """Worker: (bytes/s copied between existing buffers, bytes/s of new memory first touched), each
    a median over ``--repeats`` passes over tensors of the problem's size."""
    shape = (batch, length, args.width, args.state)
    src, dst = torch.ones(shape, device=args.device), torch.zeros(shape, device=args.device)
    nbytes = src.numel() * src.element_size()
    copy, fresh, fill = [], [], []
    for _ in range(args.repeats):
        for seconds, op in ((copy, lambda: dst.copy_(src)), (fill, lambda: dst.fill_(1.0)),
                            (fresh, lambda: torch.empty_like(src).fill_(1.0))):
            start = time.perf_counter()
            op()
            seconds.append(time.perf_counter() - start)
    first_touch = max(statistics.median(fresh) - statistics.median(fill), 1e-9)
    return 2 * nbytes / statistics.median(copy), nbytes / first_touch


def time_methods(batch, length, args):
    """Worker: interleaved rounds over the methods; {method: [seconds, ...]}."""
    methods = [m for m in METHODS if _skip_reason(m, length, args) is None]
    a, b, g = _inputs(batch, length, args)
    times = {m: [] for m in methods}
    for round_ in range(args.repeats + 1):
        order = methods[round_ % len(methods):] + methods[: round_ % len(methods)]
        for method in order:
            if method == NAIVE and round_ < args.repeats:
                continue  # slow enough that one call without warm-up is plenty
            seconds = _seconds(method, a, b, g)
            if round_ > 0:
                times[method].append(seconds)
    if args.device == "cpu":
        times[FLOOR] = memory_rates(batch, length, args)
    return times


def peak_memory(method, batch, length, args):
    """Worker: bytes of peak memory above the inputs during one call."""
    _seconds(method, *_inputs(1, min(length, 32), args))  # one-time initialisation, not counted
    a, b, g = _inputs(batch, length, args)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        _seconds(method, a, b, g)
        return torch.cuda.max_memory_allocated() - baseline
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _seconds(method, a, b, g)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) * 1024  # KiB on Linux


def _worker(args, *extra):
    cmd = [sys.executable, __file__, "--width", str(args.width), "--state", str(args.state),
           "--repeats", str(args.repeats), "--naive-max-len", str(args.naive_max_len),
           "--device", args.device, *(["--threads", str(args.threads)] if args.threads else []), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return f"failed: {tail[:80]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _parse_size(text):
    batch, length = text.lower().split("x")
    return int(batch), int(length)


def measure(batch, length, args):
    """{method: {"times": [...], "peak": bytes} or {"error": why}} for one size."""
    times = _worker(args, "--time-worker", f"{batch}x{length}")
    results = {FLOOR: times.get(FLOOR)} if isinstance(times, dict) else {}
    for method in METHODS:
        reason = _skip_reason(method, length, args)
        if reason is None and isinstance(times, str):
            reason = times
        if reason is None:
            peak = _worker(args, "--memory-worker", f"{batch}x{length}", method)
            results[method] = {"times": times[method], "peak": peak} if isinstance(peak, int) else {"error": peak}
        else:
            results[method] = {"error": reason}
        print(f"{batch}x{length} {method}: {results[method]}", file=sys.stderr, flush=True)
    return results


def _ratio(numerator, denominator):
    return f"{numerator / denominator:.2f}" if denominator > 0 else "n/a"


def _table(results, args):
    rows = ["| batch x L x width x state | method | median s (min-max) | time / fast | peak MiB | memory / fast |",
            "|---|---|---|---|---|---|"]
    for (batch, length), by_method in results.items():
        size = f"{batch} x {length} x {args.width} x {args.state}"
        fast = by_method[FAST]
        for method, r in by_method.items():
            if method == FLOOR:
                continue
            if "error" in r:
                rows.append(f"| {size} | {method} | {r['error']} | | | |")
                continue
            med = statistics.median(r["times"])
            spread = f"{med:.3g} ({min(r['times']):.3g}-{max(r['times']):.3g})" if len(r["times"]) > 1 \
                else f"{med:.3g} (1 call)"
            t_ratio = _ratio(med, statistics.median(fast["times"]) if "times" in fast else 0)
            m_ratio = _ratio(r["peak"], fast.get("peak", 0))
            rows.append(f"| {size} | {method} | {spread} | {t_ratio} | {r['peak'] / 2**20:.0f} | {m_ratio} |")
    return rows


def _summary(results, args):
    lines = []
    for (batch, length), by_method in results.items():
        fast = by_method[FAST]
        others = {m: r for m, r in by_method.items() if m not in (FAST, FLOOR) and "times" in r}
        if "times" not in fast or not others:
            continue
        best = min(others, key=lambda m: statistics.median(others[m]["times"]))
        best_time = statistics.median(others[best]["times"])
        ratio = best_time / statistics.median(fast["times"])
        least = min(r["peak"] for r in others.values())
        lines.append(f"- batch {batch}, L {length}: the fastest alternative ({best}) takes {ratio:.2f}x the "
                     f"fast path's median time; fast path peak memory / smallest alternative's = "
                     f"{_ratio(fast['peak'], least)}.")
        if by_method.get(FLOOR):
            bandwidth, touch = by_method[FLOOR]
            n = batch * length * args.width * args.state
            floor = FLOOR_BYTES_PER_ELEMENT * n / bandwidth + FLOOR_NEW_TENSORS * 4 * n / touch
            lines.append(f"  Floor of one timed call: {FLOOR_BYTES_PER_ELEMENT} bytes per element moved at "
                         f"{bandwidth / 1e9:.1f} GB/s plus {FLOOR_NEW_TENSORS} new float32 tensors first touched at "
                         f"{touch / 1e9:.1f} GB/s = {floor:.3g} s. The fast path takes "
                         f"{statistics.median(fast['times']) / floor:.2f}x the floor; the fastest alternative takes "
                         f"{best_time / floor:.2f}x it, the most any implementation could be faster than it here.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", help=f"BATCHxL (default: {' '.join(DEFAULT_SIZES)})")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--naive-max-len", type=int, default=256, help="time the naive loop only up to this L")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: leave torch's default)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat, print only")
    parser.add_argument("--out", type=Path, help="default docs/benchmarks/scan.md (scan_cuda.md with --device cuda)")
    parser.add_argument("--time-worker", metavar="SIZE", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.time_worker:
        print(json.dumps(time_methods(*_parse_size(args.time_worker), args)))
        return
    if args.memory_worker:
        size, method = args.memory_worker
        print(json.dumps(peak_memory(method, *_parse_size(size), args)))
        return

    if args.quick:
        args.sizes, args.width, args.state, args.repeats = args.sizes or QUICK_SIZES, 16, 4, 1
    load_before = os.getloadavg()[0]
    results = {size: measure(*size, args) for size in map(_parse_size, args.sizes or DEFAULT_SIZES)}
    load_after = os.getloadavg()[0]

    machine = f"{cpu_model()}, {os.cpu_count()} cores, torch threads = {torch.get_num_threads()}" \
        f"{' (--threads)' if args.threads else ' (default)'}"
    if args.device == "cuda":
        machine = f"{torch.cuda.get_device_name()}; host {machine}"
    lines = [
        f"# Linear scan: forward + backward time and peak memory ({args.device.upper()})",
        "",
        "`x = f(a, b)` and the gradients of `(x * g).sum()` with respect to `a` and `b`; real float32, "
        "`a = exp(-U(0, 1))`, `b, g ~ N(0, 1)`. Ratios are to the fast path at the same size "
        "(above 1: the alternative is slower or uses more memory).",
        "",
        *_table(results, args),
        "",
        *_summary(results, args),
        "",
        f"- command: `{command('benchmarks/scan.py')}`",
        f"- machine: {machine}; 1-minute load average {load_before:.1f} before and {load_after:.1f} after "
        "the run (other processes share the cores)",
        f"- software: {software(', mambapy ' + _version('mambapy'))}",
        f"- date: {today()}",
        "- time: per size, one process calls the methods in interleaved rounds (one warm-up round, then "
        f"{args.repeats} timed rounds, so load from other processes hits every method alike); median and "
        "range of the timed calls. The naive loop is called once, without warm-up.",
        "- peak memory: per method and size a fresh process makes one call; " +
        ("`torch.cuda.max_memory_allocated()` minus `torch.cuda.memory_allocated()` after the inputs were "
         "allocated." if args.device == "cuda" else
         "peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) minus its value right after "
         "the inputs were allocated.") + " It counts the output, both gradients and every temporary "
        "(also the loss's `x * g`).",
        "- floor: the bytes every implementation must move (the scan's inputs, output and gradients, and the "
        f"loss `(x * g).sum()` and its backward: {FLOOR_BYTES_PER_ELEMENT} bytes per element in all) at the rate of "
        "`copy_` between two existing tensors of the problem's size, plus the new memory every implementation must "
        f"ask for ({FLOOR_NEW_TENSORS} tensors: x, x * g, dLoss/dx and the two gradients) at the rate fresh memory is "
        "first written (`torch.empty_like(t).fill_` minus `t.fill_`: the kernel zeroes and maps each page); both "
        "measured in the timing process after the rounds, medians of --repeats.",
        "- the outside reference is the `pscan` of [mambapy](https://pypi.org/project/mambapy/); install it "
        "with `pip install mambapy` (it is not a dependency of this package).",
        "",
    ]
    print("\n".join(lines))
    out = args.out or (None if args.quick else
                       Path(f"docs/benchmarks/scan{'_cuda' if args.device == 'cuda' else ''}.md"))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
