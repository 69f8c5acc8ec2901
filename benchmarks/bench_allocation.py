"""Coverage of the allocation intervals: how often the 95 % interval of N_opt holds the true compute-optimal size.

Synthetic-truth Chinchilla tables (the truth of Hoffmann et al.'s fit, 30 configurations over 1e7-1e9 parameters
and 1e8-1e10 samples, log-normal noise), fitted with the default engine (chinchilla law, 300 run-level resamples),
then asked for the budget 1x, 10x and 100x the largest run's. Prints the share of draws whose N_opt interval
covers the closed-form optimum of the true law, and the median interval width in decades.

    python benchmarks/bench_allocation.py --noise 0.02 --draws 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gaitforecast.laws import CostModel, LawFitter, allocate, bootstrap, closed_form, prepare
from gaitforecast.laws.synthetic import synthetic_runs

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
MULTIPLES = (1, 10, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.02, help="sd of the log noise (0.02 = 2 %%)")
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    hits = {m: [] for m in MULTIPLES}
    widths = {m: [] for m in MULTIPLES}
    started = time.perf_counter()
    cost = CostModel.per_param_sample(6.0)
    for seed in range(args.draws):
        runs = synthetic_runs("chinchilla", TRUTH, n_configs=30, seed=seed, noise=args.noise,
                              params_range=(1e7, 1e9), samples_range=(1e8, 1e10), metric="loss")
        boot = bootstrap(LawFitter(law="chinchilla").fit(prepare(runs, "loss", ())), n_resamples=300, seed=seed)
        largest = float(runs["flops"].max())
        for m in MULTIPLES:
            lo, hi = allocate(boot, largest * m, cost).params_opt_ci
            true_n, _ = closed_form(TRUTH, largest * m, 6.0)
            hits[m].append(lo <= true_n <= hi)
            widths[m].append(np.log10(hi / lo))
    for m in MULTIPLES:
        print(f"noise {args.noise:g}, budget {m}x the largest run: N_opt 95 % interval covers the truth in "
              f"{np.mean(hits[m]):.0%} of {args.draws} draws, median width {np.median(widths[m]):.2f} decades")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
