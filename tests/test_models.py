"""Model families: exact size of the published GaitPT, shapes, normalised embeddings, seeds, bad input."""

import math

import pytest
import torch

from gaitforecast.errors import GaitforecastError
from gaitforecast.models import ARCHS, ModelConfig, build_model, config_for, count_params

SMALL = {"gaitpt": 8, "gaitpt-v1": 8, "gaitformer": 64}


def small(arch: str, frames: int = 8) -> ModelConfig:
    return config_for(arch, SMALL[arch], frames=frames)


def test_published_gaitpt_has_exactly_the_released_parameter_count():
    cfg = config_for("gaitpt-v1", 32, frames=60)
    assert cfg.stage_dims == (32, 64, 128, 256) and cfg.heads == (8, 8, 8, 8) and cfg.depth == 3
    assert count_params(cfg)[0] == 4_498_784
    # the count of a built model agrees, and the SSL head (1600 -> 256 -> 256 -> 128) is extra
    model = build_model(cfg, seed=0)
    assert count_params(model)[0] == 4_498_784
    assert count_params(model, include_head=True)[0] == 4_498_784 + 256 * 256 + 256 * 128
    # learned temporal positions make it depend on T: 30 fewer frames = 30 * (32 + 64 + 128 + 256) fewer
    assert count_params(config_for("gaitpt-v1", 32, frames=30))[0] == 4_498_784 - 30 * 480


def test_non_embedding_count_excludes_input_projection_and_positions():
    cfg = config_for("gaitpt-v1", 32)
    total, non_embedding = count_params(cfg)
    # stage-1 Linear(2 -> 32) + spatial/temporal positions + CLS tokens
    embedding = (2 * 32 + 32) + (18 * 32 + 6 * 64 + 3 * 128) + 61 * (32 + 64 + 128 + 256) + (32 + 64 + 128 + 256)
    assert total - non_embedding == embedding


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_unit_norm_embeddings(arch):
    cfg = small(arch)
    model = build_model(cfg, seed=0).eval()
    x = torch.randn(3, 8, 18, 2) * 0.3
    z = model(x)
    e = model.embed(x)
    assert z.shape == (3, cfg.proj_dim)
    assert e.shape == (3, cfg.embedding_dim)
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.isfinite(z).all()


def test_family_widths_scale_all_stages_and_params_grow():
    sizes = [count_params(config_for("gaitpt", w))[0] for w in (8, 12, 16, 24, 32)]
    assert sizes == sorted(sizes) and sizes[-1] / sizes[0] > 12  # ~ width^2
    assert config_for("gaitpt", 12).stage_dims == (12, 24, 48, 96)
    assert config_for("gaitpt", 12).embedding_dim == 96


def test_v2_accepts_other_lengths_but_v1_needs_its_frames():
    v2 = build_model(config_for("gaitpt", 8, frames=8), seed=0)
    assert v2.embed(torch.zeros(2, 12, 18, 2)).shape == (2, 64)  # RoPE: any T
    v1 = build_model(config_for("gaitpt-v1", 8, frames=8), seed=0)
    with pytest.raises(GaitforecastError, match="T=8"):
        v1(torch.zeros(2, 12, 18, 2))


@pytest.mark.parametrize("arch", ["gaitpt", "gaitformer"])
def test_same_seed_same_model_and_outputs(arch):
    cfg = small(arch)
    x = torch.randn(2, 8, 18, 2)
    a, b, c = build_model(cfg, seed=3), build_model(cfg, seed=3), build_model(cfg, seed=4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert torch.equal(a.eval()(x), b.eval()(x))
    assert not torch.allclose(a(x), c.eval()(x))


@pytest.mark.parametrize("arch", ["gaitpt", "gaitformer"])
def test_bf16_autocast_forward_backward(arch):
    model = build_model(small(arch), seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = model(torch.randn(2, 8, 18, 2))
    z.float().square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    "shape, fill, message",
    [
        ((2, 8, 17, 2), 0.0, r"\[B, T, 18, 2\]"),  # COCO-17 not converted
        ((2, 8, 18, 3), 0.0, r"\[B, T, 18, 2\]"),  # confidence channel kept
        ((8, 18, 2), 0.0, r"\[B, T, 18, 2\]"),  # no batch axis
    ],
)
@pytest.mark.parametrize("arch", ["gaitpt", "gaitformer"])
def test_bad_input_names_the_expected_shape(arch, shape, fill, message):
    model = build_model(small(arch), seed=0)
    x = torch.zeros(shape)
    x.view(-1)[0] = fill
    with pytest.raises(GaitforecastError, match=message):
        model(x)
    with pytest.raises(ValueError):  # GaitforecastError is a ValueError
        model.embed(x)


@pytest.mark.parametrize("arch", ["gaitpt", "gaitformer"])
def test_non_finite_input_is_refused_at_evaluation_not_per_training_step(arch):
    model = build_model(small(arch), seed=0)
    x = torch.zeros(2, 8, 18, 2)
    x[0, 3, 5, 1] = math.inf
    with pytest.raises(GaitforecastError, match="NaN or inf"):
        model.embed(x)
    # the training forward does no host sync on its input; a bad input shows up as a non-finite output
    assert not torch.isfinite(model(x)).all()


def test_config_errors_name_the_fix():
    with pytest.raises(GaitforecastError, match="choose one of"):
        config_for("resnet", 8)
    with pytest.raises(GaitforecastError, match="even"):
        config_for("gaitpt", 7)  # odd head size: RoPE impossible
    with pytest.raises(GaitforecastError, match="divisible"):
        config_for("gaitpt-v1", 12)  # 12 not divisible by 8 heads
    with pytest.raises(GaitforecastError, match="ModelConfig"):
        build_model({"arch": "gaitpt"})


def test_config_round_trips_through_dict():
    cfg = config_for("gaitformer", 96, frames=30)
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.heads == (4,)
    with pytest.raises(GaitforecastError, match="unknown model config keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_the_fair_original_of_the_benchmark_is_the_published_model():
    """benchmarks/fair_gaitpt.py is built as the released GaitPT: its 4,498,784 parameters (no SSL head; stage 4
    without a spatial module) equal the v1 config's encoder, and it returns the released model's unit-length
    256-d projection."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from fair_gaitpt import FairGaitPT

    fair = FairGaitPT(dropout=0.0)
    v1 = build_model(config_for("gaitpt-v1", 32), seed=0)
    encoder = sum(p.numel() for name, p in v1.named_parameters() if not name.startswith("head."))
    assert sum(p.numel() for p in fair.parameters()) == encoder == 4_498_784
    assert not hasattr(fair.stages[3], "spatial") or fair.stages[3].spatial is None
    z = fair(torch.randn(2, 60, 18, 2))
    assert z.shape == (2, 256)
    assert torch.allclose(z.norm(dim=-1), torch.ones(2), atol=1e-5)
