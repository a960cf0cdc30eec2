"""The notes of the pendulum page's matched-rate section: first the findings, as numbers, then their sentences.

``findings(by, epochs, ...)`` computes every ratio, verdict and count the notes cite from the runs;
``notes(found)`` writes them as markdown list items. Tests check the first; the page prints the second.
``by`` maps (configuration, training rate) to {seed: run}.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pendulum_runs import EVAL_RATES, config_order, flagged_names
from smr_ts.recipes import collapsed_seeds

# The grid the matched-rate control was planned as: these configurations (the time-aware gate on S5) x
# training rates x seeds.
GRID_CONFIGS = ["s5", "s5+smr", "s6", "s6+smr", "s5+smr+gaps"]
GRID_RATES = [0.25, 0.5, 1.0]
GRID_SEEDS = [0, 1, 2]
SMR_PAIRS = [("s5+smr", "s5"), ("s6+smr", "s6")]  # (with SMR, without)
GATE = ("s5", "s5+smr", "s5+smr+gaps")  # the time-aware gate and the two it is compared with
BURSTY = "bursty"  # the bursty test set, read by models trained at 0.5


def label(rate) -> str:
    """The shift-evaluation label of a test rate ("bursty 0.5" for bursty sampling at 0.5)."""
    return "bursty 0.5" if rate == BURSTY else {test: name for name, test in EVAL_RATES if test is not None}[rate]


def trained_for(test) -> float:
    """The training rate compared at a test: the test rate itself, 0.5 for bursty sampling."""
    return 0.5 if test == BURSTY else test


@dataclass(frozen=True)
class Ratio:
    """error(x) / error(y) at one test set: the ratio of the seed means, and the per-seed ratios of the
    seeds present in both."""

    mean: float
    paired: tuple[float, ...]

    @property
    def above(self) -> int:
        """On how many paired seeds the ratio is above 1."""
        return sum(v > 1 for v in self.paired)

    @property
    def consistent(self) -> bool:
        """Two or more paired seeds, all on the same side of 1."""
        p = self.paired
        return len(p) > 1 and (all(v < 1 for v in p) or all(v > 1 for v in p))

    @property
    def straddles(self) -> bool:
        """Two or more paired seeds, with 1 between the lowest and the highest."""
        return len(self.paired) > 1 and min(self.paired) <= 1 <= max(self.paired)


def ratio(x: dict, y: dict, name: str) -> Ratio:
    """error(x) / error(y) at the test set ``name``; ``x`` and ``y`` map seeds to runs."""
    mean = np.mean([r["shift"][name] for r in x.values()]) / np.mean([r["shift"][name] for r in y.values()])
    return Ratio(float(mean), tuple(x[s]["shift"][name] / y[s]["shift"][name] for s in sorted(set(x) & set(y))))


@dataclass(frozen=True)
class ShiftPenalty:
    """error(trained at 0.5, tested at ``rate``) / error(trained at ``rate``, tested at ``rate``)."""

    config: str
    rate: float
    ratio: Ratio

    @property
    def verdict(self) -> str | None:
        """"shift": above 1 on every one of two or more seeds; "within": the seeds on both sides of 1;
        "single": one paired seed; None: below 1 on every seed."""
        if self.ratio.consistent and self.ratio.mean > 1:
            return "shift"
        if self.ratio.straddles:
            return "within"
        return "single" if len(self.ratio.paired) == 1 else None


@dataclass(frozen=True)
class Comparison:
    """error(``smr``) / error(``base``), both trained at the rate tested (at 0.5 for bursty sampling)."""

    smr: str
    base: str
    test: float | str
    ratio: Ratio

    @property
    def verdict(self) -> str | None:
        """"helps" / "hurts": two or more paired seeds all on one side of 1, the mean below / above 1;
        "unsure": the seeds disagree, or one seed; None: consistent seeds whose means tie."""
        if not self.ratio.consistent:
            return "unsure"
        return "helps" if self.ratio.mean < 1 else "hurts" if self.ratio.mean > 1 else None


@dataclass(frozen=True)
class GateRow:
    """The time-aware gate's seed-mean error at one test set against S5+SMR and S5, and its ratio to S5+SMR."""

    test: float | str
    errors: dict  # configuration -> seed-mean error, lowest first
    against_smr: Ratio | None

    @property
    def rank(self) -> str:
        """Where the gate lies among the configurations present: "only", "best", "worst" or "between"."""
        order = list(self.errors)
        place = order.index(GATE[2])
        return "only" if len(order) == 1 else "best" if place == 0 else "worst" if place == len(order) - 1 \
            else "between"


@dataclass(frozen=True)
class Collapses:
    """Which runs ``smr_ts.recipes.collapsed_seeds`` flags, and the spans of best epochs and gradient norms."""

    flagged: list  # (configuration, training rate, seed, best epoch) of the section's runs
    runs: int
    best_epochs: tuple[int, int]
    grad_norms: tuple[float, float] | None  # the largest gradient norm of any epoch, lowest and highest run
    few_seeds: list  # (configuration, rate) rows with fewer than 3 seeds: the median rule cannot flag
    stability: tuple | None  # (flagged names, runs, (lowest, highest) best epoch) of the other backbones
    full: tuple | None  # (flagged names, runs) at the full budget


@dataclass(frozen=True)
class Findings:
    """Every number the matched-rate notes cite."""

    epochs: int
    runs: int
    grid_runs: int
    grid_done: int
    missing: dict  # configuration -> {training rate: [seeds not run]}
    shift: list[ShiftPenalty]
    off_rate: dict  # configuration -> [(trained at, tested at, ratio of seed means)], trained at a rate != 0.5
    smr: list[Comparison]
    gate: list[GateRow]
    seed_counts: list[int]
    spread: list[float]  # std / mean of the matched-rate error of each row with two or more seeds
    collapses: Collapses = field(repr=False)

    def where(self, verdict: str) -> list[Comparison]:
        """The SMR comparisons with this verdict ("helps", "hurts", "unsure")."""
        return [c for c in self.smr if c.verdict == verdict]


def findings(by: dict, epochs: int, full_runs=(), stability=()) -> Findings:
    """The matched-rate section's findings, every number computed from the runs; ``stability``: runs of
    other backbones at the same budget with their chosen recipes; ``full_runs``: the full-budget runs."""
    runs = [r for seeds in by.values() for r in seeds.values()]
    configs = sorted({c for c, _ in by}, key=config_order)
    rates = sorted({t for _, t in by})

    grid = [(c, t, s) for c in GRID_CONFIGS for t in GRID_RATES for s in GRID_SEEDS]
    missing = {}
    for c, t, s in grid:
        if s not in by.get((c, t), {}):
            missing.setdefault(c, {}).setdefault(t, []).append(s)

    shift = [ShiftPenalty(c, t, ratio(by[c, 0.5], by[c, t], label(t)))
             for c in configs for t in rates if t != 0.5 and (c, 0.5) in by and (c, t) in by]
    off_rate = {}
    for c in configs:
        cells = [(a, t, ratio(by[c, a], by[c, t], label(t)).mean)
                 for a in rates for t in rates if a != t and a != 0.5 and (c, a) in by and (c, t) in by]
        if cells:
            off_rate[c] = cells
    smr = [Comparison(c, b, t, ratio(by[c, trained_for(t)], by[b, trained_for(t)], label(t)))
           for c, b in SMR_PAIRS for t in rates + [BURSTY] if (c, trained_for(t)) in by and (b, trained_for(t)) in by]
    gate = []
    for t in rates + [BURSTY]:
        train = trained_for(t)
        if (GATE[2], train) not in by:
            continue
        errors = {c: float(np.mean([r["shift"][label(t)] for r in by[c, train].values()])) for c in GATE if (c, train) in by}
        against = ratio(by[GATE[2], train], by[GATE[1], train], label(t)) if (GATE[1], train) in by else None
        gate.append(GateRow(t, dict(sorted(errors.items(), key=lambda kv: kv[1])), against))
    spread = [float(np.std(v) / np.mean(v)) for v in ([r["shift"][label(t)] for r in by[c, t].values()]
                                                       for c, t in by if len(by[c, t]) > 1)]
    return Findings(epochs=epochs, runs=len(runs), grid_runs=len(grid),
                    grid_done=sum(s in by.get((c, t), {}) for c, t, s in grid), missing=missing, shift=shift,
                    off_rate=off_rate, smr=smr, gate=gate, seed_counts=sorted({len(v) for v in by.values()}),
                    spread=spread, collapses=_collapses(by, runs, epochs, full_runs, stability))


def _collapses(by, runs, epochs, full_runs, stability) -> Collapses:
    flagged, few = [], []
    for (c, t), seeds in sorted(by.items(), key=lambda kv: (config_order(kv[0][0]), kv[0][1])):
        rows = [seeds[s] for s in sorted(seeds)]
        flags = collapsed_seeds([r["best_valid_mse"] for r in rows], [r["best_epoch"] for r in rows], epochs)
        flagged += [(c, t, r["seed"], r["best_epoch"]) for r, f in zip(rows, flags) if f]
        if len(rows) < 3:
            few.append((c, t))
    best = [r["best_epoch"] for r in runs]
    norms = [max(r["grad_norm_history"]) for r in runs if r.get("grad_norm_history")]
    other = [r["best_epoch"] for r in stability]
    return Collapses(flagged=flagged, runs=len(runs), best_epochs=(min(best), max(best)),
                     grad_norms=(min(norms), max(norms)) if norms else None, few_seeds=few,
                     stability=(flagged_names(stability), len(stability), (min(other), max(other))) if stability else None,
                     full=(flagged_names(full_runs), len(full_runs)) if full_runs else None)


# ---------------------------------------------------------------- the sentences
def _span(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"


def _side(r: Ratio) -> str:
    """Where a ratio lies against 1: its mean, and on how many of the paired seeds."""
    n = len(r.paired)
    if n == 0:
        where = "no seed present in both"
    elif n == 1:
        where = f"one paired seed ({r.paired[0]:.2f}): a hint, not a result"
    elif r.above == n:
        where = f"above 1 on every one of {n} seeds (per seed {_span(r.paired)})"
    elif all(v < 1 for v in r.paired):
        where = f"below 1 on every one of {n} seeds (per seed {_span(r.paired)})"
    else:
        where = (f"above 1 on {r.above} of {n} seeds (per seed {_span(r.paired)}): the seeds disagree, so the sign is "
                 "not separated from the seed spread")
    side = "at" if f"{r.mean:.2f}" == "1.00" else "above" if r.mean > 1 else "below"
    return f"{r.mean:.2f}, {side} 1; {where}"


def _at(test) -> str:
    return "under bursty sampling (trained at 0.5)" if test == BURSTY else f"at rate {test:g}"


def _compared(c: Comparison) -> str:
    n = len(c.ratio.paired)
    return f"{c.smr} / {c.base} {_at(c.test)} ({c.ratio.mean:.2f}, {n} paired seed{'s' * (n != 1)})"


def _seeds(seeds) -> str:
    return f"seed{'s' * (len(seeds) != 1)} {', '.join(map(str, seeds))}"


def notes(found: Findings) -> list[str]:
    """The findings as markdown list items, one per string; a string that starts with "  - " is a
    sub-item of the one before. The plain answer (where SMR helps) comes first, after what ran."""
    out = [f"**What ran.** {found.runs} runs. The matched-rate grid ({', '.join(GRID_CONFIGS)} x training rates "
           f"{', '.join(f'{t:g}' for t in GRID_RATES)} x seeds {', '.join(map(str, GRID_SEEDS))}) is "
           f"{found.grid_runs} runs, of which {found.grid_done} ran."
           + (" **Missing** (not run, not failed; the tables' 'not run' cells and absent rows are these):"
              if found.missing else " No cell of the grid is missing.")]
    out += [f"  - {c}: " + "; ".join(f"rate {t:g}, {_seeds(s)}" for t, s in sorted(m.items()))
            for c, m in found.missing.items()]
    out.append(_summary(found))
    out += _shift_notes(found.shift)
    if found.off_rate:
        out += ["**Training at a rate other than 0.5**: error over that of the model trained at the test rate "
                "(above 1, the mismatch costs accuracy)."]
        out += [f"  - {c}: " + "; ".join(f"trained at {a:g}, tested at {t:g}: {v:.2f}" for a, t, v in cells) + "."
                for c, cells in found.off_rate.items()]
    if found.smr:
        out += ["**SMR / no SMR**: error with SMR over error without, both trained at the rate tested (at 0.5 for "
                "bursty sampling); below 1, SMR helps."]
        out += [f"  - {c.smr} / {c.base} {_at(c.test)}: {_side(c.ratio)}." for c in found.smr]
    if found.gate:
        out += ["**The time-aware gate** (s5+smr+gaps: smr_use_gaps=True) against S5+SMR and S5."]
        out += [_gate_note(g) for g in found.gate]
    out.append(_collapse_note(found))
    return out


def _shift_notes(penalties: list[ShiftPenalty]) -> list[str]:
    if not penalties:
        return []
    named = {v: [f"{p.config} at {p.rate:g}" for p in penalties if p.verdict == v] for v in ("shift", "within", "single")}
    text = "**Shift penalty** (error of the model trained at 0.5 over that of the model trained at the test rate r)."
    if named["shift"]:
        text += (" Above 1 on every one of two or more seeds, so part of the error at that rate is shift, which "
                 f"training at the test rate recovers: {', '.join(named['shift'])}.")
    if named["within"]:
        text += (" Per-seed ratios on both sides of 1, so within the seed spread the change of error with the rate "
                 f"is the information the sequence holds, not shift: {', '.join(named['within'])}.")
    if named["single"]:
        text += f" One seed only, to be confirmed: {', '.join(named['single'])}."
    return [text] + [f"  - {p.config} at r = {p.rate:g}: {_side(p.ratio)}." for p in penalties]


def _gate_note(g: GateRow) -> str:
    rank = {"only": "is the only one run", "best": "is the best", "worst": "is the worst",
            "between": "lies between the others"}[g.rank]
    text = (f"  - {_at(g.test)}: {' < '.join(f'{c} {v * 1e3:.2f}' for c, v in g.errors.items())} x1e-3 (seed means), "
            f"the gate {rank}")
    return text + (f"; gaps / S5+SMR {_side(g.against_smr)}" if g.against_smr is not None else "") + "."


def _summary(found: Findings) -> str:
    helps, hurts, unsure = (list(map(_compared, found.where(v))) for v in ("helps", "hurts", "unsure"))
    below = [_compared(c) for c in found.smr if c.ratio.mean < 1]
    text = "**Where SMR helps, where it does not, how sure.** "
    text += (f"SMR helps on every paired seed (two or more): {'; '.join(helps)}. " if helps
             else "No comparison where SMR helps on every paired seed (two or more). ")
    text += (f"SMR hurts on every paired seed (two or more): {'; '.join(hurts)}. " if hurts
             else "No comparison where SMR hurts on every paired seed (two or more). ")
    if unsure:
        text += f"Not settled (the seeds disagree, or one seed): {'; '.join(unsure)}. "
    text += ("On the seed means alone, the ratio is below 1 (SMR helps) for " + ("; ".join(below) if below else "none")
             + ", and at or above 1 for the rest. ")
    spread = found.spread
    return text + (f"Seeds per row: {', '.join(map(str, found.seed_counts))}"
                   + (f"; the seed spread (std / mean of a row's matched-rate error) is {min(spread) * 100:.0f}-"
                      f"{max(spread) * 100:.0f} % in rows with two or more seeds, so a ratio within that distance of 1 "
                      "is not distinguishable from seed noise" if spread else "")
                   + f". Reduced budget only ({found.epochs} epochs); none of this is measured at the full recipe.")


def _collapse_note(found: Findings) -> str:
    c, epochs = found.collapses, found.epochs
    flagged = [f"{config} at {t:g} seed {s} (best epoch {e})" for config, t, s, e in c.flagged]
    text = (f"**Collapsed seeds.** Reduced budget: {len(flagged)} of {c.runs} runs flagged by "
            f"`smr_ts.recipes.collapsed_seeds`" + (f" ({'; '.join(flagged)})" if flagged else "")
            + f"; best epochs {c.best_epochs[0]}-{c.best_epochs[1]} (of epochs 0-{epochs - 1}; the rule's early part "
            f"flags epochs below {0.2 * epochs:g}).")
    if c.grad_norms:
        text += (f" The largest gradient norm of any epoch of a run is {c.grad_norms[0]:.0f}-{c.grad_norms[1]:.0f} "
                 "across runs.")
    if c.few_seeds:
        text += (" With fewer than 3 seeds the median part of the rule cannot flag a seed, only the early-epoch part "
                 f"applies: {', '.join(f'{config} at {t:g}' for config, t in c.few_seeds)}.")
    if c.stability:
        names, n, (lo, hi) = c.stability
        text += (f" Reduced budget, other backbones with their chosen recipes: {len(names)} of {n} runs "
                 f"flagged" + (f" ({', '.join(names)})" if names else "") + f"; best epochs {lo}-{hi}.")
    if c.full:
        names, n = c.full
        text += f" Full budget: {len(names)} of {n} runs flagged" + (f" ({', '.join(names)})." if names else ".")
    return text


def matched_notes(by: dict, epochs: int, full_runs=(), stability=()) -> list[str]:
    """The notes of the runs ``by`` (configuration, training rate) -> {seed: run}: ``notes(findings(...))``."""
    return notes(findings(by, epochs, full_runs, stability))
