"""Data-parallel training with torchrun: the same script on one process, N processes or N GPUs.

Every process runs this script on the same data. Under ``torchrun``, ``fit`` joins the process
group (gloo on CPU, NCCL on GPU), draws the same windows on every rank, trains each rank on its
share of every batch through DistributedDataParallel, and all-reduces the validation metrics, so
model selection agrees everywhere. Only rank 0 prints and writes the model. Run plainly, it is an
ordinary single-process fit (docs/distributed.md):

    torchrun --standalone --nproc_per_node 2 examples/distributed.py --quick    # 2 CPU processes
    torchrun --standalone --nproc_per_node 4 examples/distributed.py            # 4 GPUs of one node
    python examples/distributed.py --quick                                      # one process

``--quick``: 48 series x 60 rows, a small model, 2 epochs (seconds on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch.distributed as dist

from smr_ts import SMRForecaster
from smr_ts.datasets import make_oscillators


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run: 48 series x 60 rows, 2 epochs")
    parser.add_argument("--series", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="save the model here (default: a temporary folder)")
    args = parser.parse_args(argv)
    n_series, n_obs, epochs = (48, 60, 2) if args.quick else (args.series, 400, args.epochs)
    size = dict(d_model=8, state_size=8) if args.quick else dict(d_model=32, state_size=16)

    # Every rank builds (in practice: reads) the same frame; the windows are split by rank.
    history, future = make_oscillators(n_series=n_series, n_obs=n_obs, horizon=5, start="2024-01-01",
                                       freq_unit="1h", random_state=0)
    model = SMRForecaster(**size, n_layers=2, epochs=epochs, batch_size=8, validation_fraction=0.2, random_state=0)
    start = time.perf_counter()
    model.fit(history)
    seconds = time.perf_counter() - start

    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    backend = dist.get_backend() if dist.is_initialized() else "none (single process)"
    forecast = model.forecast(times=future[["unique_id", "ds"]])
    mae = float(np.mean(np.abs(forecast[model.alias_].to_numpy() - future["y"].to_numpy())))
    last = history.groupby("unique_id")["y"].last().reindex(future["unique_id"]).to_numpy()
    last_mae = float(np.mean(np.abs(last - future["y"].to_numpy())))
    out = args.out or Path(tempfile.gettempdir()) / "smr_ts_distributed_example"
    model.save(out)  # rank 0 writes; on the other ranks save does nothing
    if rank == 0:
        print(f"processes: {world}, backend: {backend}, device: {model.model_.encoder.weight.device} after fit")
        print(f"fit: {len(history):,} rows, {n_series} series, {len(model.history_)} epochs in {seconds:.1f} s")
        for record in model.history_:
            print(f"  epoch {record['epoch']}: train loss {record['train_loss']:.4f}, "
                  f"valid scaled MAE {record['valid_scaled_mae']:.4f} (last value {record['valid_last_value_scaled_mae']:.4f})")
        print(f"best epoch: {model.best_epoch_} (-1: the last-value network was kept)")
        print(f"held-out MAE: {mae:.4f} (last value {last_mae:.4f}) over {len(future)} forecasts")
        print(f"saved by rank 0 to {out}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return {"model": model, "world": world, "mae": mae, "last_mae": last_mae, "out": out, "rank": rank}


if __name__ == "__main__":
    main()
