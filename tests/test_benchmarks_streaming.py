"""The streaming and memory benchmarks run end to end at a small size and write their tables."""

import re
from pathlib import Path

from _pages import items, table
from _scripts import load_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_streaming_benchmark_table(tmp_path):
    bench = load_script(BENCHMARKS / "streaming.py", "bench_streaming")
    out = tmp_path / "streaming.md"
    results = bench.main(["--series", "8", "--rows", "60", "--backbones", "s5", "--repeats", "3", "--out", str(out)])
    text = out.read_text()
    (r,) = results
    assert r["max_abs_diff"] < 1e-5  # update-then-forecast equals the re-forecast
    rows = [line for line in table(text) if line["backbone"] == "s5"]
    assert len(rows) == 2
    # The ratio printed is the ratio of the times printed next to it.
    assert list(rows[0].values())[5] == f"**{r['full_one'] / r['update_one']:.0f}x**"
    provenance = items(text)
    assert provenance["command"][0].startswith("`python benchmarks/streaming.py --series 8 --rows 60")
    assert set(provenance) >= {"machine", "software", "date"}


def test_forecast_memory_benchmark_table(tmp_path):
    bench = load_script(BENCHMARKS / "forecast_memory.py", "bench_forecast_memory")
    out = tmp_path / "memory.md"
    results = bench.main(["--series", "64", "--rows", "30", "--h", "2", "--scenarios", "states", "update",
                          "--out", str(out)])
    assert [r["scenario"] for r in results] == ["states", "update"]
    assert all("error" not in r and r["finite"] and r["rows_out"] == 128 for r in results)
    text = out.read_text()
    peaks = [float(v) for v in re.findall(r"\| forecast[^|]*\| ([\d.]+) \|", text)]
    assert len(peaks) == 1 and 0 < peaks[0] < 4  # the states row; the update row starts with "update"
    assert [line["within bound"] for line in table(text)] == ["yes", "yes"]  # the bound is checked per scenario
    assert items(text)["command"][0].startswith("`python benchmarks/forecast_memory.py --series 64")
