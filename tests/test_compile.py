"""`--compile`: the training step under torch.compile computes what eager does, is recorded per run, and is refused
cleanly where it cannot work.

The first test compiles for real (torch's inductor backend builds C++ kernels: ~1-2 min on a 2-core CPU for the
one-layer model used here); the others check the plumbing with torch.compile replaced by a recorder.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo

from gaitforecast.models import build_model, config_for
from gaitforecast.store import RunStore
from gaitforecast.sweep.backend import Task, execute_task
from gaitforecast.sweep.planner import plan
from gaitforecast.sweep.spec import load_spec
from gaitforecast.train import loop
from reliability_util import shared_cache, write_spec
from test_cli_runs import gaitforecast

__all__ = ["shared_cache"]  # the fixture, imported for pytest


def _loss_and_grads(model: torch.nn.Module, runner: torch.nn.Module, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = runner(x).float().pow(2).mean()
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.flatten() for p in model.parameters()])


def test_compiled_gaitpt_step_matches_eager_and_does_not_recompile():
    cfg = config_for("gaitpt", 4, frames=8, depth=1)
    x = torch.randn(8, 8, 18, 2, generator=torch.Generator().manual_seed(0)) * 0.3
    eager = build_model(cfg, seed=0).train()
    loss_e, grads_e = _loss_and_grads(eager, eager, x)
    model = build_model(cfg, seed=0).train()
    compiled = loop.compiled_model(model, torch.device("cpu"))
    assert compiled is not model
    loss_c, grads_c = _loss_and_grads(model, compiled, x)
    # the same function up to bf16 rounding (measured: losses 0.7044 / 0.7038, gradients 0.2 % of the largest)
    assert loss_c == pytest.approx(loss_e, rel=5e-3)
    assert float((grads_c - grads_e).abs().max()) <= 0.01 * float(grads_e.abs().max())
    # a second step reuses the compiled graph: the rotary tables are buffers, not a dict the graph guards on
    with torch._dynamo.config.patch(error_on_recompile=True):
        loss_again, _ = _loss_and_grads(model, compiled, x)
    assert loss_again == pytest.approx(loss_c, rel=1e-6)


@pytest.fixture
def compile_recorder(monkeypatch):
    """torch.compile replaced by a recorder that returns the model (eager): the plumbing, not the compiler."""
    calls = []

    def record(model, **kwargs):
        calls.append(kwargs)
        return model

    monkeypatch.setattr(torch, "compile", record)
    return calls


def test_compile_option_reaches_the_training_step_and_is_stored(tmp_path, shared_cache, compile_recorder):
    run = plan(load_spec(write_spec(tmp_path, fractions=(0.25,), samples=32)))[0]
    plain = execute_task(Task(run.id, run.config, str(shared_cache), 1, False))
    assert compile_recorder == [] and plain.measured["compiled"] is False
    compiled = execute_task(Task(run.id, run.config, str(shared_cache), 1, False, compile=True))
    assert compile_recorder == [{"dynamic": False}]
    assert compiled.measured["compiled"] is True
    # the recorder returned the eager model, so the figures are those of the plain run
    assert compiled.metrics == plain.metrics
    store = RunStore(tmp_path / "s.duckdb")
    with store.writer() as w:
        w.upsert_run(run.record(threads=1).finished(compiled.measured, compiled.metrics, compiled.curves).to_row())
    assert list(store.runs()["compiled"]) == [True]


def test_compile_without_a_cpp_compiler_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(loop.shutil, "which", lambda name: None)
    store = tmp_path / "s.duckdb"
    res = gaitforecast("train", "--arch", "gaitformer", "--width", "8", "--samples", "32", "--compile",
                       "--device", "cpu", "--store", str(store), cwd=tmp_path)
    assert res.returncode == 2
    assert "--compile needs a C++ compiler" in res.stderr and "Traceback" not in res.stderr
    assert not store.exists()
