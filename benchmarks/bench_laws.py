"""Benchmark of the analysis engine on the 240 Chinchilla runs (Epoch's reconstruction, 5 highest-loss dropped).

    python benchmarks/bench_laws.py [--resamples 1000] [--csv ../shared/data/chinchilla_epoch.csv]

Prints the fitted parameters, the time of the point fit, of the point fit + bootstrap (issue 5 target: under
10 s for 1000 resamples on 2 cores), of an allocation with intervals, and of a rollout backtest.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pandas as pd  # noqa: E402

from gaitforecast.laws import CostModel, allocate, backtest, bootstrap, fit_law  # noqa: E402

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


if __name__ == "__main__":
    main()
