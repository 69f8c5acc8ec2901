"""Benchmark of the analysis engine: the Chinchilla table, a store of its own runs, interval coverage.

    python benchmarks/bench_laws.py [--resamples 1000] [--csv ../shared/data/chinchilla_epoch.csv]
                                    [--store PATH | --no-store] [--draws 10]

Prints, on the 240 Chinchilla runs (Epoch's reconstruction, 5 highest-loss dropped): the fitted parameters, the
time of the point fit, of the point fit + bootstrap, of an allocation with intervals and of a rollout backtest.
On a store of gaitforecast's own runs (``--store``, else one made here by ``run-small --profile quick``, about a
minute): the CLI's cold start (``import gaitforecast.cli``, and whole ``runs`` / ``fit`` commands) and the whole
``fit`` / ``predict --budget`` / ``backtest`` / ``compare`` commands with 1,000 resamples (issue 11 targets:
2 s, 10 s, 10 s, 30 s, 30 s). Then the 95 % prediction intervals' coverage of held-out larger runs, with and
without the extrapolation calibration (laws.extrapolation): Chinchilla rollouts at six cutoffs, and ``--draws``
synthetic-truth tables at 0.5 % and 2 % noise (issue 11 target: 90-98 %, median width reported).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gaitforecast.laws import CostModel, allocate, backtest, bootstrap, fit_law  # noqa: E402
from gaitforecast.laws.synthetic import synthetic_runs  # noqa: E402

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_epoch.csv"


def chinchilla(csv: Path) -> pd.DataFrame:
    raw = pd.read_csv(csv)
    runs = pd.DataFrame({"id": raw.index.astype(str), "params": raw["Model Size"], "flops": raw["Training FLOP"],
                         "loss": raw["loss"]})
    runs["samples"] = runs["flops"] / (6.0 * runs["params"])
    return runs.drop(runs["loss"].nlargest(5).index).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--store", type=Path, default=None, help="a store of own runs (default: make a quick one)")
    parser.add_argument("--no-store", action="store_true", help="skip the own-store section")
    parser.add_argument("--draws", type=int, default=10, help="synthetic-truth tables per noise level")
    args = parser.parse_args()
    runs = chinchilla(args.csv)

    start = time.perf_counter()
    law = fit_law(runs, "loss", "chinchilla")
    t_fit = time.perf_counter() - start
    boot = bootstrap(law, n_resamples=args.resamples, seed=0)
    t_total = time.perf_counter() - start
    start = time.perf_counter()
    alloc = allocate(boot, 5.88e23, CostModel.per_param_sample(6.0))
    t_alloc = time.perf_counter() - start
    start = time.perf_counter()
    result = backtest(runs, "loss", "chinchilla", fit_below=1e21, n_resamples=args.resamples)
    t_backtest = time.perf_counter() - start

    ci = boot.param_ci()
    print(f"runs: {law.n_runs}, threads: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, cpus: {os.cpu_count()}")
    for name, value in law.params.items():
        print(f"  {name:>5} = {value:10.4f}   95% CI [{ci[name][0]:.4f}, {ci[name][1]:.4f}]")
    print(f"status: {law.status}; Huber sum {law.objective:.5e}; relative gradient {law.grad_rel:.1e}")
    print(f"point fit:                        {t_fit:6.2f} s")
    print(f"point fit + {args.resamples} resamples:       {t_total:6.2f} s  (target < 10 s; "
          f"{boot.n_failed} refits dropped)")
    print(f"allocation at 5.88e23 w/ CIs:     {t_alloc:6.2f} s  N_opt {alloc.params_opt:.3g} "
          f"[{alloc.params_opt_ci[0]:.3g}, {alloc.params_opt_ci[1]:.3g}], D/N {alloc.samples_per_param:.1f}")
    print(f"backtest (fit <= 1e21, {args.resamples} res.): {t_backtest:6.2f} s  median |rel err| "
          f"{result.median_rel_error:.2%}, bias {result.bias:+.2%}, PI coverage {result.coverage:.0%}")
    if not args.no_store:
        own_store(args.store)
    coverage(runs, args.draws)


def _cli(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gaitforecast.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - start, done


def own_store(store: Path | None) -> None:
    """Whole CLI commands on a store of gaitforecast's own runs, as a user runs them."""
    if store is None:
        store = Path(tempfile.mkdtemp()) / "quick.duckdb"
        took, done = _cli("run-small", "--profile", "quick", "--store", str(store), "--json")
        if done.returncode:
            raise SystemExit(f"run-small failed: {done.stderr[-2000:]}")
        print(f"\nown store: run-small --profile quick made {store} in {took:.0f} s")
    else:
        print(f"\nown store: {store}")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gaitforecast.cli"], check=True)
    print(f"cold start, python -c 'import gaitforecast.cli': {time.perf_counter() - start:5.2f} s (target <= 2 s)")
    for command in (["runs"], ["fit"], ["predict", "--budget", "1e14"], ["backtest"], ["compare"]):
        took, done = _cli(*command, "--store", str(store), "--json")
        note = "" if done.returncode == 0 else f"  (exit {done.returncode}: {done.stderr.strip().splitlines()[-1]})"
        print(f"gaitforecast {' '.join(command):24s} {took:6.2f} s{note}")


def coverage(chinchilla: pd.DataFrame, draws: int) -> None:
    """95 % prediction-interval coverage of held-out larger runs, calibrated vs the bootstrap alone."""
    print("\ncoverage of held-out larger runs by 95 % prediction intervals (calibrated / bootstrap alone)")
    for cutoff in (None, 2e20, 3e20, 4e20, 7e20, 1e21):
        cal = backtest(chinchilla, "loss", "chinchilla", fit_below=cutoff, n_resamples=1000)
        raw = backtest(chinchilla, "loss", "chinchilla", fit_below=cutoff, n_resamples=1000, calibrate=False)
        print(f"  Chinchilla, fit <= {cal.fit_below:.2g} FLOPs, {cal.n_test:3d} held out: {cal.coverage:6.1%} / "
              f"{raw.coverage:6.1%}   median width {cal.median_interval_width:.4f} / {raw.median_interval_width:.4f}")
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    for noise in (0.005, 0.02):
        tallies = {True: [0, 0, []], False: [0, 0, []]}
        for seed in range(draws):
            runs = synthetic_runs("chinchilla", truth, n_configs=60, noise=noise, seed=seed)
            for calibrated in (True, False):
                bt = backtest(runs, "loss", "chinchilla", n_resamples=300, seed=seed, calibrate=calibrated)
                tally = tallies[calibrated]
                tally[0] += int(bt.rows["inside_pi"].sum())
                tally[1] += bt.n_test
                tally[2].append(bt.median_interval_width)
        cal, raw = tallies[True], tallies[False]
        print(f"  synthetic Chinchilla law, {noise:.1%} noise, {draws} tables, {cal[1]} held out: "
              f"{cal[0] / cal[1]:6.1%} / {raw[0] / raw[1]:6.1%}   median width {np.median(cal[2]):.4f} / "
              f"{np.median(raw[2]):.4f}")


if __name__ == "__main__":
    main()
