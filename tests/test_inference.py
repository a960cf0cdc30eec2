"""The one chunked-inference loop (smr_ts/inference.py): every series once, in chunks, in eval mode without
gradients, and the network back on the CPU whatever happens."""

import pytest
import torch
from torch import nn

from smr_ts.inference import CHUNK, chunk_slices, on_device, over_chunks


def test_chunks_cover_every_series_once_in_order():
    for n in (0, 1, CHUNK, CHUNK + 1, 3 * CHUNK - 5):
        slices = chunk_slices(n)
        covered = [i for s in slices for i in range(s.start, s.stop)]
        assert covered == list(range(n)) and all(s.stop - s.start <= CHUNK for s in slices)


def test_the_loop_runs_in_eval_mode_without_gradients_and_leaves_the_network_on_the_cpu():
    network = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    x = torch.randn(130, 2)
    seen = []

    def step(net, sel):
        seen.append((net.training, torch.is_grad_enabled()))
        return net(x[sel])

    out = torch.cat(over_chunks(network, "cpu", len(x), step))
    assert seen == [(False, False)] * 3  # 64 + 64 + 2 series
    torch.testing.assert_close(out, network.eval()(x).detach())  # dropout off: the whole batch's answer
    assert on_device(network, "cpu", lambda net: net(x[:1])).requires_grad is False

    def fails(net, sel):
        raise RuntimeError("a chunk failed")

    with pytest.raises(RuntimeError, match="a chunk failed"):
        over_chunks(network, "cpu", len(x), fails)
    assert next(network.parameters()).device.type == "cpu"
