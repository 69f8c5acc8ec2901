"""SimCLR NT-Xent + KoLeo on hand-made embeddings with values worked out by hand."""

import math

import pytest
import torch

from gaitforecast.errors import GaitforecastError
from gaitforecast.train.objective import koleo, nt_xent, ssl_loss


def test_nt_xent_identical_views_matches_hand_value():
    # views e1, e2 | e1, e2: positive cosine 1, two negatives at cosine 0 -> -log(e^(1/t) / (e^(1/t) + 2)).
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    expected = math.log(1 + 2 * math.exp(-2.0))
    assert nt_xent(z, z.clone(), t).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.23954, abs=1e-5)


def test_nt_xent_orthogonal_positives_and_scale_invariance():
    # positive at cosine 0, negatives at cosines 0 and 1, t = 1 -> log(2 + e).
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert nt_xent(z1, z2, 1.0).item() == pytest.approx(math.log(2 + math.e), rel=1e-6)
    assert nt_xent(5 * z1, 0.1 * z2, 1.0).item() == pytest.approx(math.log(2 + math.e), rel=1e-6)


def test_nt_xent_equals_brute_force_formula():
    gen = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    t = 0.1
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    total = 0.0
    for i in range(10):
        pos = (i + 5) % 10
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(10) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[pos]) / t) / denom)
    assert nt_xent(z1, z2, t).item() == pytest.approx(total / 10, rel=1e-5)


def test_koleo_hand_values():
    # three points 90 degrees apart on the circle: every nearest neighbour at sqrt(2) -> -log(sqrt 2).
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert koleo(z).item() == pytest.approx(-0.5 * math.log(2), abs=1e-6)
    # e1, (0.6, 0.8), e2: nearest distances sqrt(0.8), sqrt(0.4), sqrt(0.4).
    z = torch.tensor([[2.0, 0.0], [0.6, 0.8], [0.0, 3.0]])  # norms do not matter
    expected = -(0.5 * math.log(0.8) + math.log(0.4)) / 3
    assert koleo(z).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.34262, abs=1e-5)


def test_koleo_rewards_spread():
    spread = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    clumped = torch.tensor([[1.0, 0.0], [1.0, 0.1], [1.0, 0.2], [1.0, 0.3]])
    assert koleo(spread).item() < koleo(clumped).item()


def test_ssl_loss_is_nt_xent_plus_weighted_mean_koleo():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    z2 = torch.tensor([[2.0, 0.0], [0.6, 0.8], [0.0, 3.0]], requires_grad=True)
    parts = ssl_loss(z1, z2, temperature=0.1, koleo_weight=0.01)
    k = 0.5 * (-0.5 * math.log(2) + -(0.5 * math.log(0.8) + math.log(0.4)) / 3)
    assert parts.koleo.item() == pytest.approx(k, abs=1e-6)
    assert parts.total.item() == pytest.approx(parts.nt_xent.item() + 0.01 * k, abs=1e-6)
    parts.total.backward()
    assert torch.isfinite(z2.grad).all() and z2.grad.abs().sum() > 0


def test_bad_inputs_are_refused_with_shapes():
    with pytest.raises(GaitforecastError, match="same shape"):
        nt_xent(torch.ones(3, 2), torch.ones(4, 2))
    with pytest.raises(GaitforecastError, match="at least 2"):
        nt_xent(torch.ones(1, 2), torch.ones(1, 2))
    with pytest.raises(GaitforecastError, match="temperature"):
        nt_xent(torch.eye(2), torch.eye(2), 0.0)
