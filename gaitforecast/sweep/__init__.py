"""Sweeps: declarative specs (TOML profiles shipped here), the planner that resolves them into runs with ids,
and executors that run them on local worker processes or Ray while the driver alone writes the store.

    spec = load_profile("quick")           # or load_spec("my_sweep.toml")
    runs = plan(spec)                      # resolved configs, id = store.run_id(config), largest first
    summary = run_sweep(runs, RunStore(path), cache_dir=Path("runs/cache"), workers=2)
"""

from gaitforecast.sweep.executors import BACKENDS, SweepSummary, run_sweep
from gaitforecast.sweep.planner import PlannedRun, plan, plan_one, summarize
from gaitforecast.sweep.spec import PROFILES, SweepSpec, load_profile, load_spec, validate

__all__ = [
    "BACKENDS", "PROFILES", "PlannedRun", "SweepSpec", "SweepSummary", "load_profile", "load_spec", "plan",
    "plan_one", "run_sweep", "summarize", "validate",
]
