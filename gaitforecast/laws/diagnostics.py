"""Is a fit worth trusting? Seed noise from replicate runs and plain-language warnings.

Call :func:`diagnose` after fitting (and bootstrapping); it returns the seed-noise estimate and a list of
warnings: noise comparable to the signal the law explains, too little compute span, a parameter at a bound,
a search that did not converge, bootstrap refits that failed.
"""

from __future__ import annotations

import numpy as np

from gaitforecast.laws.bootstrap import BootstrapResult
from gaitforecast.laws.data import LawData
from gaitforecast.laws.fit import FittedLaw

MIN_DECADES = 1.0  # less compute span than this and an extrapolation is mostly guesswork
NOISE_SIGNAL_RATIO = 0.5
EXPONENT_CI_WIDTH = 0.5  # an exponent whose 95 % bootstrap interval is wider than this is not identified


def unidentified_exponents(boot: BootstrapResult) -> dict[str, list[float]]:
    """The law's exponents the runs do not identify (95 % interval wider than EXPONENT_CI_WIDTH), with their
    intervals; empty when every exponent is identified."""
    ci = boot.param_ci()
    return {name: ci[name] for name in boot.law.form.exponent_names
            if not (np.all(np.isfinite(ci[name])) and ci[name][1] - ci[name][0] < EXPONENT_CI_WIDTH)}


def interval_at_bounds(boot: BootstrapResult, level: float = 0.95) -> dict[str, str]:
    """Free internal parameters whose bootstrap interval reaches a bound of the search (while the point estimate
    may not), with the side: {theta name: "lower" | "upper"}."""
    law = boot.law
    names = law.form.theta_names()
    tail = 50.0 * (1.0 - level)
    lo_q, hi_q = np.percentile(boot.thetas, [tail, 100.0 - tail], axis=0)
    out = {}
    for i, (lo, hi) in enumerate(law.form.bounds(law.data.logy)):
        if i in law.held:
            continue
        if lo_q[i] <= lo + 1e-6 * max(1.0, abs(lo)):
            out[names[i]] = "lower"
        elif hi_q[i] >= hi - 1e-6 * max(1.0, abs(hi)):
            out[names[i]] = "upper"
    return out


def influential_runs(law: FittedLaw, extend: float = 10.0, outlier_sd: float = 3.0) -> dict | None:
    """Do a handful of outlying runs move the forecast? The runs more than ``outlier_sd`` robust SDs off the point
    fit are left out together and the law refitted (lmfit, from the point fit, held parameters kept); when the
    forecast at ``extend`` x the largest run's compute (every input axis scaled alike) moves by more than the
    scatter of one run (the robust residual SD, log units), they are reported: {"ids", "shift_log",
    "params_without"}; else None. (One at a time such runs barely move a Huber fit; together they can: the 5
    highest-loss rows of the Chinchilla table move its data exponent from 0.37 to 0.45.)"""
    from gaitforecast.laws.fit import lmfit_refit

    form, data = law.form, law.data
    logx = {k: data.logx[k] for k in form.inputs}
    resid = data.logy - form.log_predict(law.theta, logx)[0]
    centre = np.median(resid)
    sd = max(1.4826 * float(np.median(np.abs(resid - centre))), 1e-12)
    out = np.abs(resid - centre) > outlier_sd * sd
    if not out.any() or data.n - int(out.sum()) < form.min_runs:
        return None
    theta = lmfit_refit(form, data.subset(~out), law.theta, law.huber_delta, set(law.held))
    step = np.log(extend) / len(form.inputs)
    at = {k: np.array([v.max() + step]) for k, v in logx.items()}
    shift = float(abs(form.log_predict(theta, at)[0][0] - form.log_predict(law.theta, at)[0][0]))
    if shift <= sd:
        return None
    return {"ids": [str(x) for x in data.ids[out]], "shift_log": shift,
            "params_without": {k: float(v) for k, v in form.params(theta).items()}}


def seed_noise(data: LawData) -> dict:
    """Pooled within-configuration standard deviation from replicate runs (seeds of one configuration).

    Returned as ``sd_log`` (of the log fitted target, i.e. relative) and ``sd`` (metric units), with the number
    of replicated configurations; both are None when no configuration has two runs.
    """
    sq, dof, sq_raw = 0.0, 0, 0.0
    raw = data.to_metric_units(data.y)
    for g in np.unique(data.groups):
        idx = data.groups == g
        if idx.sum() >= 2:
            sq += float(np.sum((data.logy[idx] - data.logy[idx].mean()) ** 2))
            sq_raw += float(np.sum((raw[idx] - raw[idx].mean()) ** 2))
            dof += int(idx.sum()) - 1
    n_groups = int(sum((data.groups == g).sum() >= 2 for g in np.unique(data.groups)))
    if dof == 0:
        return {"sd_log": None, "sd": None, "replicated_configs": 0}
    return {"sd_log": float(np.sqrt(sq / dof)), "sd": float(np.sqrt(sq_raw / dof)), "replicated_configs": n_groups}


def compute_span_decades(data: LawData) -> float | None:
    """Decades of training compute the runs span (None without FLOPs)."""
    if "flops" not in data.logx:
        return None
    return float((data.logx["flops"].max() - data.logx["flops"].min()) / np.log(10.0))


def diagnose(fit: FittedLaw | BootstrapResult) -> dict:
    """Seed noise, compute span and warnings for a fitted (optionally bootstrapped) law."""
    boot = fit if isinstance(fit, BootstrapResult) else None
    law = boot.law if boot else fit
    data = law.data
    warnings: list[str] = []
    noise = seed_noise(data)
    logx = {k: data.logx[k] for k in law.form.inputs}
    fitted_log, _ = law.form.log_predict(law.theta, logx)
    signal = float(np.std(fitted_log))
    if noise["sd_log"] is not None and noise["sd_log"] > NOISE_SIGNAL_RATIO * signal:
        warnings.append(
            f"seed noise ({noise['sd_log']:.3g} in log units) is comparable to the spread the law explains "
            f"({signal:.3g}); add seeds or span more compute before trusting extrapolations"
        )
    span = compute_span_decades(data)
    if span is not None and span < MIN_DECADES:
        warnings.append(f"the runs span only {span:.2f} decades of compute; extrapolations are weakly constrained")
    if not law.converged:
        warnings.append(law.status)
    names = law.form.theta_names()
    for name, why in law.fixed_why.items():
        warnings.append(f"{name} held at {law.fixed[name]:.3g} ({why}); the other parameters were fitted with it "
                        "fixed, and their intervals assume it")
    free_at_bound = [n for n in law.at_bound if names.index(n) not in law.held]
    if free_at_bound:
        warnings.append(f"parameter(s) {', '.join(free_at_bound)} at a bound: not identified by these runs")
    if boot is not None:
        reach = interval_at_bounds(boot)
        if reach:
            warnings.append("95 % interval(s) reach a bound of the search, so the runs do not pin them down: "
                            + "; ".join(f"{n} up to its {side} bound" for n, side in reach.items()))
    if law.starts_agreeing < 2:
        warnings.append("only one of the polished starts reached the best objective; the optimum may be fragile")
    identified = None
    if boot is not None:
        loose = unidentified_exponents(boot)
        identified = {name: name not in loose for name in law.form.exponent_names}
        for name, (lo, hi) in loose.items():
            warnings.append(f"exponent {name} is not identified by these runs: its 95 % interval [{lo:.3g}, {hi:.3g}] "
                            f"is wider than {EXPONENT_CI_WIDTH}")
    if boot is not None and boot.n_failed > 0.05 * boot.n_resamples:
        share = boot.n_failed / boot.n_resamples
        warnings.append(f"{boot.n_failed} of {boot.n_resamples} bootstrap refits ({share:.0%}) "
                        "did not converge; they are kept in the intervals at the best point found (the hard "
                        "resamples widen them honestly), but treat the intervals as rough")
    moved = influential_runs(law)
    if moved:
        shown = ", ".join(moved["ids"][:5]) + (" ..." if len(moved["ids"]) > 5 else "")
        warnings.append(f"{len(moved['ids'])} outlying run(s) ({shown}) move the forecast 10x beyond the largest run "
                        f"by {moved['shift_log']:.1%} (more than one run's scatter): check them, or refit without "
                        "them (--drop-worst) and compare")
    if noise["sd_log"] is None:
        warnings.append("seed noise unknown: no configuration was run with more than one seed. Rerun two or three "
                        "configurations with other seeds (e.g. a [[grid]] block with seeds = [1, 2]) to know how much "
                        "of the scatter is noise")
    if data.clipped:
        warnings.append(f"{data.clipped} run(s) at the edge of [0, 1] were clipped by 1e-4 to fit the log of "
                        f"{data.fitted_as}")
    if data.extra.get("checkpoint_runs"):
        warnings.append(f"{data.extra['checkpoint_rows']} rows are checkpoints of {data.extra['checkpoint_runs']} "
                        "training runs: the bootstrap resamples each run's rows together, but a mid-schedule "
                        "checkpoint has not annealed its learning rate, so it sits above what a run of that length "
                        "reaches and the forecast leans pessimistic; prefer the final checkpoint of runs of each "
                        "length")
    if data.dropped_missing:
        warnings.append(f"{data.dropped_missing} run(s) without a value for {data.metric} were left out")
    return {"seed_noise": noise, "signal_sd_log": signal, "compute_span_decades": span, "identified": identified,
            "influential": moved, "warnings": warnings}
