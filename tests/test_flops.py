"""Analytic FLOPs agree with torch's FlopCounterMode; training FLOPs and the family table."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from gaitforecast.models import build_model, config_for, family_table, forward_flops, train_flops
from gaitforecast.models.flops import head_flops


def counted(cfg, batch=2, backward=False):
    model = build_model(cfg, seed=0).eval()
    x = torch.randn(batch, cfg.frames, 18, 2)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        z = model(x)
        if backward:
            z.square().mean().backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("arch, width, frames", [("gaitpt", 8, 12), ("gaitpt-v1", 8, 12), ("gaitformer", 64, 16),
                                                  ("gaitpt", 12, 6)])
def test_forward_formula_matches_flop_counter(arch, width, frames):
    cfg = config_for(arch, width, frames=frames)
    analytic = forward_flops(cfg) * 2
    measured = counted(cfg, batch=2)
    assert measured > 0
    assert abs(analytic / measured - 1) < 0.02, (analytic, measured)


def test_backward_is_twice_forward_so_training_is_three_times():
    cfg = config_for("gaitpt", 8, frames=8)
    total = counted(cfg, batch=2, backward=True)
    # the input's gradient is not needed, so slightly under 3x
    assert 2.9 < total / (2 * forward_flops(cfg)) <= 3.0
    assert train_flops(cfg, sequences_seen=1000) == 3 * forward_flops(cfg) * 2 * 1000
    assert train_flops(cfg, sequences_seen=10, views=4) == 3 * forward_flops(cfg) * 4 * 10


def test_published_gaitpt_forward_is_about_1_2_gflop():
    cfg = config_for("gaitpt-v1", 32, frames=60)
    assert abs(forward_flops(cfg, include_head=False) / 1.2e9 - 1) < 0.01
    assert forward_flops(cfg) - forward_flops(cfg, include_head=False) == head_flops(cfg) == 2 * 256 * 256 + 2 * 256 * 128


def test_family_table_columns_and_monotone_sizes():
    table = family_table("gaitpt", frames=60)
    assert list(table.columns) == ["arch", "width", "params", "params_nonembed", "forward_flops",
                                   "train_flops_per_sample"]
    assert list(table["width"]) == [8, 12, 16, 24, 32]
    assert table["params"].is_monotonic_increasing and table["forward_flops"].is_monotonic_increasing
    assert (table["train_flops_per_sample"] == 6 * table["forward_flops"]).all()
    assert (table["params_nonembed"] < table["params"]).all()
    half = family_table("gaitformer", frames=30, widths=[64])
    full = family_table("gaitformer", frames=60, widths=[64])
    assert 2.0 < full["forward_flops"][0] / half["forward_flops"][0] < 2.2  # linear + a little quadratic
