"""Data-parallel training (smr_ts.distributed): two gloo processes on the CPU train the weights one
process trains on the same global batches, and agree on validation and model selection."""

import contextlib
import io
import re
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from smr_ts import SMRForecaster
from smr_ts.callbacks import HistoryLogger
from smr_ts.datasets import make_oscillators
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = dict(d_model=8, state_size=8, n_layers=2, epochs=3, batch_size=4, lr=5e-3, random_state=0)


def data():
    history = make_oscillators(n_series=12, n_obs=30, random_state=0)
    regression_X = history[["unique_id", "ds"]].assign(x=history["y"].shift(1).fillna(0.0).to_numpy())
    return history, regression_X, history["y"]


def fits(log_dir=None):
    """The fits compared: forecasting with validation series (the last-value floor in play) and
    regression without validation (selection on the training loss), S5 with SMR and GRU-dt."""
    history, X, y = data()
    callbacks = [HistoryLogger(f"{log_dir}/history.csv")] if log_dir else None
    forecast = SMRForecaster(backbone="s5", smr=True, validation_fraction=0.25, callbacks=callbacks, **SETTINGS)
    regression = SMRForecaster(backbone="gru_dt", validation_fraction=0.0, **SETTINGS)
    return forecast.fit(history), regression.fit(X, y)


def _worker(rank, world, port, out):
    import os

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        forecast, regression = fits(log_dir=out if rank == 0 else f"{out}/rank{rank}")
        forecast.save(f"{out}/saved_by_{rank}")
        torch.save({"forecast": forecast.model_.state_dict(), "regression": regression.model_.state_dict(),
                    "history": [forecast.history_, regression.history_],
                    "best": [forecast.best_epoch_, regression.best_epoch_], "backend": dist.get_backend()},
                   f"{out}/rank{rank}.pt")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


@pytest.fixture(scope="module")
def one_process():
    return fits()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_two_gloo_processes_train_the_weights_of_one_process(two_ranks, one_process):
    out, ranks = two_ranks
    assert ranks[0]["backend"] == "gloo"
    forecast, regression = one_process  # one process, the same global batches
    for name, single in (("forecast", forecast), ("regression", regression)):
        for key, value in single.model_.state_dict().items():
            for rank in ranks:
                torch.testing.assert_close(rank[name][key], value, rtol=1e-4, atol=1e-5, msg=f"{name} {key}")
    # Both ranks hold the same weights (DDP keeps them in step).
    for key in ranks[0]["forecast"]:
        assert torch.equal(ranks[0]["forecast"][key], ranks[1]["forecast"][key]), key


def test_ranks_agree_on_validation_and_model_selection(two_ranks, one_process):
    out, ranks = two_ranks
    forecast, regression = one_process
    assert ranks[0]["best"] == ranks[1]["best"] == [forecast.best_epoch_, regression.best_epoch_]
    for i, single in enumerate((forecast, regression)):
        assert _without_seconds(ranks[0]["history"][i]) == _without_seconds(ranks[1]["history"][i])
        # The all-reduced metrics are those of one process over all the validation batches.
        got, expected = pd.DataFrame(_without_seconds(ranks[0]["history"][i])), pd.DataFrame(
            _without_seconds(single.history_))
        np.testing.assert_allclose(got[expected.columns].to_numpy(float), expected.to_numpy(float), rtol=1e-4,
                                   atol=1e-6)
    assert {"valid_scaled_mae", "valid_gain_z"} <= set(ranks[0]["history"][0][0])


def test_only_rank_zero_writes_files(two_ranks):
    out, _ = two_ranks
    assert (out / "saved_by_0" / "weights.pt").is_file() and (out / "history.csv").is_file()
    assert not (out / "saved_by_1").exists() and not (out / "rank1" / "history.csv").exists()


def _printed(out: str) -> dict:
    return {"epochs": re.findall(r"epoch \d+: .*", out), "best": re.search(r"best epoch: (-?\d+)", out).group(1),
            "mae": re.search(r"held-out MAE: ([\d.]+)", out).group(1)}


@pytest.fixture(scope="module")
def example_in_one_process():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = load_script(ROOT / "examples" / "distributed.py", "example_distributed").main(["--quick"])
    return result, printed.getvalue()


def test_the_example_in_one_process(example_in_one_process):
    result, out = example_in_one_process
    assert result["world"] == 1 and "processes: 1, backend: none" in out
    assert _printed(out)["best"] == str(result["model"].best_epoch_)
    assert float(_printed(out)["mae"]) == round(result["mae"], 4)
    assert (result["out"] / "weights.pt").is_file()


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_the_example_runs_under_torchrun(example_in_one_process):
    # The documented command, on 2 CPU processes: it runs, and prints what one process prints.
    done = subprocess.run(["torchrun", "--standalone", "--nproc_per_node", "2", "examples/distributed.py", "--quick"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "processes: 2, backend: gloo" in done.stdout
    assert done.stdout.count("held-out MAE") == 1  # rank 0 prints, rank 1 does not
    assert _printed(done.stdout) == _printed(example_in_one_process[1])
