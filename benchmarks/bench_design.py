"""Benchmark of the active sweep design: does choosing runs adaptively reach the full grid's forecast for less?

    OMP_NUM_THREADS=1 python benchmarks/bench_design.py [--draws 10] [--resamples 300] [--batch 2]
                                                        [--only synthetic|grid|lattice|chinchilla] [--oracle]

Each draw plays the loop of ``run-small --adaptive`` against a table that stands in for training: the seed design
(8 cheap runs spread over log N x log D, laws.design.spread_runs), then fit -> bootstrap -> suggest (the budget
left: half the grid's compute) -> "train" (reveal the table's values of the suggested runs), measuring after every
refit the forecast's 95 % interval width at the target budget (the predicted metric at each ensemble member's
compute-optimal split, what ``suggest`` reports as ``current_width``) and its error. The full grid is every run of
the table fitted at once, measured the same way. A draw *matches* at the first compute where the adaptive width
is at most the full grid's and its error at most the full grid's error plus a quarter of the full grid's width
(about one standard error of that forecast); when half the grid's compute is spent without a match, the loop
goes on with the rest, to report how much it took. A draw *fails* when it took more than half. Printed per
table: each draw's full-grid width and error, the ratio (adaptive compute at the match / the grid's), where the
adaptive design stood once half was spent, the median and maximum ratio and the failure rate.

- synthetic: the project's synthetic-truth tables (laws.synthetic.synthetic_runs: 60 configurations log-uniform
  in N 1e7-1e9 x D 1e8-1e10, a Chinchilla law with E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28, C = 6ND,
  1 % log-normal noise; a new table per draw); target 1e21 FLOPs; error = |forecast - the true law's minimum|.
- grid: the same law on a full 6 x 6 factorial grid of the same ranges (a new noise draw per draw).
- lattice: the same 6 x 6 grid is the baseline, but the adaptive design picks from an 11 x 11 lattice over the
  same ranges with 2 seeds per configuration (242 runs, each its own noise draw): what a sweep spec that lists
  more widths, data fractions and seeds than one would train gives the design. It goes on to the grid's whole
  compute at most.
- chinchilla: Epoch's reconstruction (5 highest-loss rows dropped); the grid is the 187 runs up to 5.3e20 FLOPs
  (the backtest's default cutoff), the 53 larger runs are the truth: target = the largest of them, error = median
  |law - actual| over them. Draws differ by the bootstrap seed and by the pool the seed design is drawn from.

Where the truth is known (every table but chinchilla) each draw also prints the oracle: a design that knows the
true law, greedy most-variance-removed per FLOP under its first-order information, started from every run; the
least share of the grid's compute at which it reaches the grid's forecast variance, and the width ratio it
reaches within half. And the true-law width of this design's runs, at half the grid's compute and at its match:
the refit's measured width scatters about it, so a match where the true-law ratio is above 1 was a refit that came
out narrow; the draw then goes on to its *true-law match*, the first compute where its runs' true-law width is at
most the grid's (and the error criterion holds), reported beside the measured one. A subset of the grid never carries more information than the grid, so picking from the
grid's own runs the oracle needs most of its compute; ``--oracle`` prints the oracle for other candidate pools
(seconds). For chinchilla, whose truth is unknown, the oracle runs under the law fitted to all its runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gaitforecast.laws import CostModel  # noqa: E402
from gaitforecast.errors import GaitforecastError  # noqa: E402
from gaitforecast.laws.candidates import Candidates, spread_runs  # noqa: E402
from gaitforecast.laws.belief import fit_for_design, forecast_ensemble  # noqa: E402
from gaitforecast.laws.design import plan_next  # noqa: E402
from gaitforecast.laws.forms import get_form  # noqa: E402
from gaitforecast.laws.synthetic import synthetic_runs, theta_from_params  # noqa: E402

CSV = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "chinchilla_epoch.csv"
TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
COST = CostModel.per_param_sample(6.0)
SEED_RUNS = 8  # the seed design: a Chinchilla law has 5 parameters and needs 7 configurations
TABLES = ("synthetic", "grid", "lattice", "chinchilla")


def log_minimum(theta: np.ndarray, budget: float, points: int = 20001) -> float:
    """ln of a Chinchilla law's loss at its compute-optimal split of ``budget`` (a grid of ``points`` over N)."""
    n = np.geomspace(1e6, 1e13, points)
    return float(np.min(get_form("chinchilla").log_predict(theta, {"params": np.log(n),
                                                                    "samples": np.log(budget / (6.0 * n))})[0]))


def true_minimum(budget: float) -> float:
    """The true law's loss at its compute-optimal split of ``budget`` (fine grid over N)."""
    return float(np.exp(log_minimum(theta_from_params("chinchilla", TRUTH), budget, 200001)))


def synthetic_table(seed: int, noise: float = 0.01, levels: int = 6, seeds: int = 1) -> pd.DataFrame:
    """The truth on a full ``levels`` x ``levels`` factorial grid over N 1e7-1e9 x D 1e8-1e10, each configuration
    run ``seeds`` times (its own noise draw)."""
    n, d = np.meshgrid(np.geomspace(1e7, 1e9, levels), np.geomspace(1e8, 1e10, levels), indexing="ij")
    n, d = np.repeat(n.ravel(), seeds), np.repeat(d.ravel(), seeds)
    form = get_form("chinchilla")
    pred, _ = form.log_predict(theta_from_params("chinchilla", TRUTH), {"params": np.log(n), "samples": np.log(d)})
    loss = np.exp(pred + np.random.default_rng(seed).normal(0.0, noise, len(n)))
    return pd.DataFrame({"id": [f"g{i}" for i in range(len(n))], "arch": "synthetic", "params": n, "samples": d,
                         "flops": 6.0 * n * d, "loss": loss})


def chinchilla_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = pd.read_csv(CSV)
    runs = pd.DataFrame({"id": [f"c{i}" for i in range(len(raw))], "arch": "chinchilla", "params": raw["Model Size"],
                         "flops": raw["Training FLOP"], "loss": raw["loss"]})
    runs["samples"] = runs["flops"] / (6.0 * runs["params"])
    runs = runs.drop(runs["loss"].nlargest(5).index).reset_index(drop=True)
    grid = runs[runs["flops"] <= 5.3e20].reset_index(drop=True)
    return grid, runs[runs["flops"] > 5.3e20].reset_index(drop=True)


def error_of(predicted: float, law, target: float, test: pd.DataFrame | None) -> float:
    """The forecast's error: against the true law's minimum at the target (synthetic), or the median absolute
    error over the held-out larger runs (chinchilla)."""
    if test is None:
        return abs(predicted - true_minimum(target))
    values = law.predict(params=test["params"].to_numpy(), samples=test["samples"].to_numpy())
    return float(np.median(np.abs(values - test["loss"].to_numpy())))


def measure(runs: pd.DataFrame, target: float, resamples: int, seed: int, test: pd.DataFrame | None):
    """(width, error) of the forecast ``runs`` give, or (None, None) when they cannot carry the law yet."""
    try:
        fc = forecast_ensemble(fit_for_design(runs, "loss", "chinchilla", resamples, seed), target, COST, seed=seed)
    except GaitforecastError:
        return None, None
    return fc.width, error_of(fc.predicted, fc.law, target, test)


def play(grid: pd.DataFrame, target: float, resamples: int, batch: int, seed: int, test: pd.DataFrame | None,
         start_seed: int = 0, pool: pd.DataFrame | None = None) -> dict:
    """The full grid's (width, error), then one adaptive draw with half the grid's compute as the budget (then,
    if it has not matched, the rest of the grid's compute, or of ``pool``'s): the trajectory (compute spent,
    width, error after every refit) and the compute at the first match. The adaptive design picks its runs from
    ``pool`` (default: the grid's own runs). With a known truth (``test`` None) every step also has the true-law
    width ratio of its runs to the grid's (:meth:`TrueLaw.width_ratio`), and the draw goes on to the *true-law
    match* too: the first compute where that ratio is at most 1 and the error criterion holds."""
    total = float(grid["flops"].sum())
    pool = grid if pool is None else pool
    flops = pool["flops"].to_numpy()
    cands = Candidates(pool["params"].to_numpy(), pool["samples"].to_numpy(), flops, tuple(pool["id"]))
    full_width, full_error = measure(grid, target, resamples, seed, test)
    start = np.arange(len(pool))
    if start_seed:  # other draws start from another cheap spread: picked from a random 80 % of the grid
        rng = np.random.default_rng(start_seed)
        start = np.sort(rng.choice(len(pool), size=int(0.8 * len(pool)), replace=False))
    used = np.zeros(len(pool), bool)
    used[start[spread_runs(cands.params[start], cands.samples[start], cands.flops[start], SEED_RUNS)]] = True
    steps, match, true_match = [], None, None
    truth = TrueLaw(grid, target) if test is None else None

    def done() -> bool:
        return match is not None and (true_match is not None or truth is None)

    for budget in (0.5 * total, np.inf if pool is grid else total):  # half the grid's compute, then the rest
        while not done():
            spent = float(flops[used].sum())
            affordable = ~used & (flops <= budget - spent)
            if affordable.any():
                design = plan_next(pool[used], "loss", cands.subset(affordable), target, COST, budget - spent,
                                   n=batch, law="chinchilla", n_resamples=resamples, seed=seed, horizon=None)
                width = design.current_width
                error = None if width is None else error_of(design.predicted, design.boot.law, target, test)
            else:
                width, error = measure(pool[used], target, resamples, seed, test)
            true = truth.width_ratio(pool[used]) if truth is not None else float("nan")
            steps.append({"spent": spent, "width": width, "error": error, "true": true})
            error_ok = width is not None and error <= full_error + full_width / 4
            if match is None and error_ok and width <= full_width:
                match = spent
            if true_match is None and error_ok and true <= 1.0:
                true_match = spent
            if done() or not affordable.any():
                break
            used[np.flatnonzero(affordable)[[s.index for s in design.suggestions]]] = True
    if pool is grid and used.all():  # the whole grid is the full grid (a refit of it can differ by resampling)
        match = total if match is None else match
        true_match = total if true_match is None else true_match
    at_match = next((s for s in steps if s["spent"] == match), None)
    return {"steps": steps, "match": match, "ratio": None if match is None else match / total, "pool": pool,
            "truth": truth,
            "true_ratio": None if true_match is None else true_match / total,
            "true_at_match": float("nan") if at_match is None else at_match["true"],
            "full": (full_width, full_error),
            "at_half": next((s for s in reversed(steps) if s["spent"] <= 0.5 * total), steps[-1])}


class TrueLaw:
    """A Chinchilla law's first-order information about the forecast (ln loss at the compute-optimal split of
    ``target``), with the grid's runs as the yardstick: under the law with scatter s, runs S give the forecast a
    variance s^2 grad' (J_S' J_S)^-1 grad, whatever design chose them. ``theta`` defaults to the true law."""

    def __init__(self, grid: pd.DataFrame, target: float, theta: np.ndarray | None = None) -> None:
        self.theta = theta_from_params("chinchilla", TRUTH) if theta is None else theta
        eps = 1e-5
        self.grad = np.array([(log_minimum(self.theta + eps * e, target) - log_minimum(self.theta - eps * e, target))
                              / (2 * eps) for e in np.eye(len(self.theta))])
        self.goal = self.variance(self.jacobian(grid))

    def jacobian(self, runs: pd.DataFrame) -> np.ndarray:
        """Rows d ln loss / d theta at each run."""
        logx = {"params": np.log(runs["params"].to_numpy()), "samples": np.log(runs["samples"].to_numpy())}
        return get_form("chinchilla").log_predict(self.theta, logx)[1]

    def variance(self, jac: np.ndarray) -> float:
        """grad' (J'J)^-1 grad: the forecast's variance from these runs over s^2 (inf when they do not identify
        the law)."""
        try:
            return float(self.grad @ np.linalg.solve(jac.T @ jac, self.grad))
        except np.linalg.LinAlgError:
            return float("inf")

    def width_ratio(self, runs: pd.DataFrame) -> float:
        """The forecast's width from ``runs`` over the grid's: what they give on average, free of one refit's
        noise."""
        return float(np.sqrt(self.variance(self.jacobian(runs)) / self.goal))


def oracle_fraction(grid: pd.DataFrame, pool: pd.DataFrame, law: TrueLaw) -> tuple[float, float]:
    """What a design that knew the true law could do with ``pool``'s runs: (the least share of the grid's compute
    at which its runs reach the grid's forecast variance, the width ratio to the grid it reaches within half the
    grid's compute). Greedy most-variance-removed per FLOP (Sherman-Morrison updates), started from every run."""
    total = float(grid["flops"].sum())
    grad, goal, jac = law.grad, law.goal, law.jacobian(pool)
    flops = pool["flops"].to_numpy()
    best_fraction, best_half = np.inf, np.inf
    for first in range(len(flops)):
        cov = np.eye(len(grad)) * 1e6  # (J'J)^-1 under a vague prior
        free = np.ones(len(flops), bool)
        spent, c = 0.0, first
        while True:
            row = jac[c]
            k = cov @ row
            cov = cov - np.outer(k, k) / (1.0 + row @ k)
            free[c] = False
            spent += float(flops[c])
            var = float(grad @ cov @ grad)
            if spent <= 0.5 * total:
                best_half = min(best_half, var)
            if var <= goal:
                best_fraction = min(best_fraction, spent / total)
            if not free.any() or spent >= total or (var <= goal and spent > 0.5 * total):
                break
            u, q = jac @ (cov @ grad), np.sum((jac @ cov) * jac, axis=1)
            gain = np.where(free, u * u / (1.0 + q) / flops, -np.inf)
            c = int(np.argmax(gain))
    return best_fraction, float(np.sqrt(best_half / goal))


def _ratios(values: list) -> np.ndarray:
    return np.array([np.inf if v is None else v for v in values], dtype=float)


def _summary(ratios: np.ndarray) -> str:
    fails = int(np.sum(ratios > 0.5))
    return (f"median {np.median(ratios):.3f}, max {np.max(ratios):.3f}; failures (more than half the grid's "
            f"compute, or never): {fails} of {len(ratios)} ({fails / len(ratios):.0%})")


def report(name: str, results: list[dict], seconds: float) -> None:
    print(f"\n{name}: {len(results)} draws in {seconds:.0f} s")
    for i, r in enumerate(results):
        w, e = r["full"]
        half = r["at_half"]
        shown = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        print(f"  draw {i:2d}: full grid width {w:.4g} error {e:.4g} | matched at {shown} of its compute | at half: "
              f"width {half['width'] or float('nan'):.4g} error {half['error'] or float('nan'):.4g} "
              f"({len(r['steps'])} refits)")
        if "oracle" in r:
            true = "-" if r["true_ratio"] is None else f"{r['true_ratio']:.3f}"
            print(f"           under the true law: its runs give {r['true_at_match']:.3f}x the grid's width at the "
                  f"match, {half['true']:.3f}x at half; true-law match at {true} of the compute; the oracle's at "
                  f"{r['oracle'][0]:.3f} ({r['oracle'][1]:.3f}x the grid's width within half)")
    print("  compute ratio adaptive / full grid, measured widths: " + _summary(_ratios([r["ratio"] for r in results])))
    if all("oracle" in r for r in results):
        oracle = np.array([r["oracle"][0] for r in results])
        at_match = np.array([r["true_at_match"] for r in results])
        print("  true-law match (the design's runs reach the grid's true-law width): "
              + _summary(_ratios([r["true_ratio"] for r in results])))
        print(f"  at the measured match, the true-law width of its runs: median {np.nanmedian(at_match):.3f}x the "
              f"grid's (range {np.nanmin(at_match):.3f}-{np.nanmax(at_match):.3f}); at half the grid's compute, a "
              f"median {np.median([r['at_half']['true'] for r in results]):.3f}x")
        print(f"  oracle (knows the true law, greedy per FLOP from every start): reaches the grid's width at a median "
              f"{np.median(oracle):.3f} of its compute (max {np.max(oracle):.3f}); within half, a median "
              f"{np.median([r['oracle'][1] for r in results]):.3f}x its width")


def oracle_pools() -> None:
    """The oracle alone (seconds): how much of the 6 x 6 grid's compute a design that knew the true law needs to
    reach the grid's forecast width, by what it may pick from."""
    grid = synthetic_table(seed=100)
    law = TrueLaw(grid, 1e21)
    print("oracle under the true law (first order), the 6 x 6 grid as the baseline, target 1e21 FLOPs:")
    for levels, seeds in ((6, 1), (6, 2), (6, 3), (11, 1), (11, 2), (11, 3)):
        fraction, at_half = oracle_fraction(grid, synthetic_table(seed=200, levels=levels, seeds=seeds), law)
        what = "the grid's own runs" if (levels, seeds) == (6, 1) else f"{levels} x {levels} lattice, {seeds} seed(s)"
        print(f"  picking from {what:<28}: reaches the grid's width at {fraction:.3f} of its compute; within half "
              f"{at_half:.3f}x its width")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2, help="runs suggested per refit (parallel workers)")
    parser.add_argument("--only", choices=TABLES, default=None)
    parser.add_argument("--oracle", action="store_true", help="print only the true-law oracle per candidate pool")
    args = parser.parse_args()
    if args.oracle:
        oracle_pools()
        return
    print(f"bench_design: {args.draws} draws per table, {args.resamples} resamples, {args.batch} run(s) per refit, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)
    for name in TABLES:
        if args.only not in (None, name):
            continue
        start, results = time.perf_counter(), []
        for draw in range(args.draws):
            if name == "synthetic":
                grid, test, target, title = (synthetic_runs("chinchilla", TRUTH, n_configs=60, noise=0.01, seed=draw,
                                                            params_range=(1e7, 1e9), samples_range=(1e8, 1e10)),
                                             None, 1e21, "synthetic-truth tables (laws.synthetic: 60 configurations "
                                             "log-uniform in N 1e7-1e9 x D 1e8-1e10, 1 % noise), target 1e21 FLOPs")
            elif name == "grid":
                grid, test, target, title = (synthetic_table(seed=100 + draw), None, 1e21,
                                             "synthetic truth on a 6 x 6 grid (N 1e7-1e9 x D 1e8-1e10, 1 % noise), "
                                             "target 1e21 FLOPs")
            elif name == "lattice":
                grid, test, target, title = (synthetic_table(seed=100 + draw), None, 1e21,
                                             "6 x 6 grid as above; the adaptive design picks from an 11 x 11 "
                                             "lattice over the same ranges, 2 seeds each, target 1e21 FLOPs")
                pool = synthetic_table(seed=200 + draw, levels=11, seeds=2)
            else:
                grid, test = chinchilla_tables()
                target = float(test["flops"].max())
                title = (f"Chinchilla table: {len(grid)} runs <= 5.3e20 FLOPs, the {len(test)} larger ones are the "
                         f"truth, target {target:.3g} FLOPs")
            result = play(grid, target, args.resamples, args.batch, draw, test,
                          start_seed=draw if name == "chinchilla" else 0, pool=pool if name == "lattice" else None)
            if test is None:  # a known truth: what a design that knew it could do
                result["oracle"] = oracle_fraction(grid, result["pool"], result["truth"])
            elif draw == 0:  # no truth: the law fitted to all the table's runs stands in for it
                whole = fit_for_design(pd.concat([grid, test]), "loss", "chinchilla", 20, 0).law.theta
                stand_in = oracle_fraction(grid, grid, TrueLaw(grid, target, whole))
            results.append(result)
            print(f"  {name} draw {draw}: ratio {results[-1]['ratio']}", file=sys.stderr, flush=True)
        report(title, results, time.perf_counter() - start)
        if name == "chinchilla":
            print(f"  oracle under the law fitted to all {len(grid) + len(test)} runs (a stand-in for the truth): "
                  f"reaches the grid's width at {stand_in[0]:.3f} of its compute; within half, {stand_in[1]:.3f}x "
                  "its width")


if __name__ == "__main__":
    main()
