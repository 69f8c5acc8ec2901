"""muP: per-width learning rates, attention/readout scaling, and a coordinate check that is flat."""

import pytest
import torch

from gaitforecast.models import build_model, config_for
from gaitforecast.models.coordcheck import coord_check, coord_summary
from gaitforecast.models.mup import attention_scale, param_groups, readout_mult


def groups_by_name(model, cfg, lr=1e-3, wd=0.1):
    groups = param_groups(model, cfg, lr=lr, weight_decay=wd)
    names = {id(p): n for n, p in model.named_parameters()}
    return {g["group"]: (g, {names[id(p)] for p in g["params"]}) for g in groups}


def test_hidden_matrices_get_lr_over_width_mult():
    cfg = config_for("gaitpt", 32)  # base 8 -> m = 4
    model = build_model(cfg, seed=0)
    groups = groups_by_name(model, cfg)
    hidden, hidden_names = groups["hidden"]
    assert hidden["lr"] == pytest.approx(1e-3 / 4) and hidden["weight_decay"] == pytest.approx(0.4)
    assert "stages.1.merge.weight" in hidden_names and "head.hidden.weight" in hidden_names
    assert "stages.0.spatial.blocks.0.w_in.weight" in hidden_names and "to_embedding.weight" in hidden_names
    vector, vector_names = groups["vector_decay"]
    assert vector["lr"] == 1e-3 and {"stages.0.merge.weight", "head.readout.weight"} == vector_names
    no_decay, no_decay_names = groups["no_decay"]
    assert no_decay["weight_decay"] == 0.0 and "stages.0.cls" in no_decay_names
    all_names = hidden_names | vector_names | no_decay_names
    assert len(all_names) == len(list(model.parameters()))  # every parameter exactly once


def test_standard_parametrisation_keeps_one_learning_rate():
    cfg = config_for("gaitformer", 256, mup=False)
    groups = param_groups(build_model(cfg, seed=0), cfg, lr=1e-3, weight_decay=0.1)
    assert {g["lr"] for g in groups} == {1e-3}
    assert attention_scale(cfg, 64) == pytest.approx(1 / 8) and readout_mult(cfg) == 1.0


def test_attention_and_readout_scale_with_width():
    base, wide = config_for("gaitformer", 64), config_for("gaitformer", 256)
    assert attention_scale(base, 16) == pytest.approx(16**-0.5)  # SP value at the base width
    assert attention_scale(wide, 64) == pytest.approx(16**0.5 / 64)  # 1/d: sqrt(base d_head) / d_head
    assert readout_mult(wide) == pytest.approx(0.25)
    model = build_model(wide, seed=0)
    q_rows = model.body.blocks[0].w_in.weight[:256]
    assert torch.count_nonzero(q_rows) == 0  # zero-initialised queries


@pytest.mark.parametrize("arch, widths", [("gaitpt", (8, 16, 32)), ("gaitformer", (64, 128, 256))])
def test_coordinate_check_flat_under_mup_and_growing_under_sp(arch, widths):
    kw = dict(steps=4, lr=1e-2, batch=4, frames=8, seeds=2)
    mup = coord_summary(coord_check(arch, widths, parametrization="mup", **kw))
    sp = coord_summary(coord_check(arch, widths, parametrization="sp", **kw))
    hidden_mup = mup[mup["module"] != "head"]["ratio"]
    hidden_sp = sp[sp["module"] != "head"]["ratio"]
    # a 4x width range moves no hidden activation by more than 1.6x under muP ...
    assert hidden_mup.max() < 1.6, mup.sort_values("ratio").tail(3)
    # ... while SP grows them (Adam's update ~ lr * fan_in) and the output even more
    assert hidden_sp.max() > 2.2 and hidden_sp.max() > 1.5 * hidden_mup.max()
    head = lambda t: t.loc[t["module"] == "head", "ratio"].iloc[0]  # noqa: E731
    assert head(sp) > head(mup)
