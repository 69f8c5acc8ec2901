"""Law families: what a scaling law looks like, in the log-space parametrisation the fitter works in.

Every form predicts the *log* of the fitted target (loss; for an accuracy -ln accuracy, or the error rate for the
sigmoid, see ``accuracy_target``) from the log of its inputs,
so positivity of amplitudes and floors holds by construction (log-sum-exp, as Hoffmann et al. and Epoch AI do).
A form is a small immutable object: ``log_predict(theta, logx)`` returns the log-prediction and its Jacobian,
vectorised over any leading batch axes of ``theta`` (the bootstrap fits a thousand resamples at once).

Use :func:`get_form` to look a form up by name; :data:`FORM_NAMES` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from gaitforecast.errors import GaitforecastError

AXES = ("params", "samples", "flops")


def _lse_terms(terms: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """log(sum(exp(terms))) and the softmax share of each term (its derivative), stably."""
    top = np.maximum.reduce(terms)
    exps = [np.exp(t - top) for t in terms]
    total = sum(exps)
    return top + np.log(total), [e / total for e in exps]


@dataclass(frozen=True)
class LawForm:
    """Base class: a named family with internal parameters ``theta`` and user-facing ``params``."""

    name: str = ""
    inputs: tuple[str, ...] = ()
    param_names: tuple[str, ...] = ()
    exponent_names: tuple[str, ...] = ()
    description: str = ""
    accuracy_target: str = "neglog"  # what an accuracy metric is fitted as (laws.data.ACCURACY_TARGETS)
    accuracy_only: bool = False  # bounded forms fit accuracies and error rates, never a loss

    @property
    def n_theta(self) -> int:
        return len(self.param_names)

    @property
    def allocates(self) -> bool:
        """True when the form splits a compute budget into model size and samples (it has both axes)."""
        return {"params", "samples"} <= set(self.inputs)

    @property
    def answers_budget(self) -> bool:
        """True when the form predicts the metric at a compute budget (in compute, or by allocating it)."""
        return self.allocates or "flops" in self.inputs

    def fits(self, kind: str) -> bool:
        """Whether a metric of ``kind`` (loss / accuracy / error) can be fitted with this form."""
        return not (self.accuracy_only and kind == "loss")

    @property
    def min_runs(self) -> int:
        """Fewest distinct runs a fit needs: two more than the parameters, so residuals say something."""
        return self.n_theta + 2

    def log_predict(self, theta: np.ndarray, logx: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(log y_hat [..., n], Jacobian d log y_hat / d theta [..., n, p]) for theta [..., p]."""
        raise NotImplementedError

    def params(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """User-facing parameters (floats, or arrays for a batch of theta)."""
        raise NotImplementedError

    def bounds(self, logy: np.ndarray) -> list[tuple[float, float]]:
        """Box bounds on theta for this data (exponents positive, floor not above the best run)."""
        raise NotImplementedError

    def start_grid(self, logx: dict[str, np.ndarray], logy: np.ndarray) -> np.ndarray:
        """Candidate starting points [G, p] for the multi-start search, adapted to the data's scale."""
        raise NotImplementedError

    def theta_names(self) -> tuple[str, ...]:
        return self.param_names

    def theta(self, params: dict[str, float]) -> np.ndarray:
        """Internal parameter vector for user-facing ``params`` (the inverse of :meth:`params`)."""
        raise NotImplementedError

    def param_of(self, theta_name: str) -> str:
        """User-facing parameter behind an internal one (log_E -> E, logit_E -> E, log_k -> k)."""
        for prefix in ("logit_", "log_"):
            if theta_name.startswith(prefix) and theta_name[len(prefix):] in self.param_names:
                return theta_name[len(prefix):]
        return theta_name


FLOOR_SLACK = 0.1  # the floor E may sit up to ~10 % above the best run (noise), no higher

_EXPONENT_GRID = (0.05, 0.15, 0.3, 0.5, 0.8, 1.2)
_SHARE_GRID = (0.05, 0.2, 0.6, 2.0)  # amplitude term's size at the median input, as a share of median y
_FLOOR_GRID = (0.02, 0.3, 0.6, 0.9)  # floor as a share of the best (lowest) observed value


@dataclass(frozen=True)
class ChinchillaForm(LawForm):
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. Approach 3); the only form that allocates N vs D.

    theta = (log A, log B, log E, alpha, beta).
    """

    name: str = "chinchilla"
    inputs: tuple[str, ...] = ("params", "samples")
    param_names: tuple[str, ...] = ("E", "A", "B", "alpha", "beta")
    exponent_names: tuple[str, ...] = ("alpha", "beta")
    description: str = "E + A/N^alpha + B/D^beta in parameters N and samples D"

    def theta_names(self) -> tuple[str, ...]:
        return ("log_A", "log_B", "log_E", "alpha", "beta")

    def log_predict(self, theta, logx):
        theta = np.asarray(theta, dtype=float)
        a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))
        ln_n, ln_d = logx["params"], logx["samples"]
        out, (s_n, s_d, s_e) = _lse_terms([a - alpha * ln_n, b - beta * ln_d, e + 0.0 * ln_n])
        jac = np.stack([s_n, s_d, s_e, -s_n * ln_n, -s_d * ln_d], axis=-1)
        return out, jac

    def params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {
            "E": np.exp(theta[..., 2]),
            "A": np.exp(theta[..., 0]),
            "B": np.exp(theta[..., 1]),
            "alpha": theta[..., 3],
            "beta": theta[..., 4],
        }

    def theta(self, params):
        return np.array([np.log(params["A"]), np.log(params["B"]), np.log(params["E"]), params["alpha"],
                         params["beta"]], dtype=float)

    def bounds(self, logy):
        return [(-60.0, 250.0), (-60.0, 250.0), (float(logy.min()) - 25.0, float(logy.min()) + FLOOR_SLACK), (1e-3, 4.0), (1e-3, 4.0)]

    def start_grid(self, logx, logy):
        ymed = float(np.exp(np.median(logy)))
        ymin = float(np.exp(logy.min()))
        n_med, d_med = float(np.median(logx["params"])), float(np.median(logx["samples"]))
        rows = []
        for alpha, beta, share_a, share_b, floor in product(
            _EXPONENT_GRID, _EXPONENT_GRID, _SHARE_GRID, _SHARE_GRID, _FLOOR_GRID
        ):
            a = np.log(share_a * ymed) + alpha * n_med
            b = np.log(share_b * ymed) + beta * d_med
            rows.append((a, b, np.log(floor * ymin), alpha, beta))
        return np.array(rows)


@dataclass(frozen=True)
class SaturatingPowerForm(LawForm):
    """y = E + A * x^-k along one axis (params, samples or flops): a power law with an irreducible floor E.

    For error metrics this is the "error with an irreducible floor" law. theta = (log A, log E, k).
    """

    axis: str = "flops"
    description: str = "E + A * x^-k along one axis"

    def theta_names(self) -> tuple[str, ...]:
        return ("log_A", "log_E", "k")

    def log_predict(self, theta, logx):
        theta = np.asarray(theta, dtype=float)
        a, e, k = (theta[..., i, None] for i in range(3))
        ln_x = logx[self.axis]
        out, (s_x, s_e) = _lse_terms([a - k * ln_x, e + 0.0 * ln_x])
        return out, np.stack([s_x, s_e, -s_x * ln_x], axis=-1)

    def params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {"E": np.exp(theta[..., 1]), "A": np.exp(theta[..., 0]), "k": theta[..., 2]}

    def theta(self, params):
        return np.array([np.log(params["A"]), np.log(params["E"]), params["k"]], dtype=float)

    def bounds(self, logy):
        return [(-60.0, 250.0), (float(logy.min()) - 25.0, float(logy.min()) + FLOOR_SLACK), (1e-3, 4.0)]

    def start_grid(self, logx, logy):
        ymed, ymin = float(np.exp(np.median(logy))), float(np.exp(logy.min()))
        x_med = float(np.median(logx[self.axis]))
        rows = [
            (np.log(share * ymed) + k * x_med, np.log(floor * ymin), k)
            for k, share, floor in product(_EXPONENT_GRID, _SHARE_GRID, _FLOOR_GRID)
        ]
        return np.array(rows)


@dataclass(frozen=True)
class SigmoidComputeForm(LawForm):
    """Bounded sigmoid in log compute for an error rate: err = E + (c - E) / (1 + (C / C_mid)^k).

    Error starts at the chance error ``c`` (the ceiling, 1.0 unless told) for tiny compute and falls to the
    floor E for large compute. Use for accuracy-type metrics whose curve bends (emergence, saturation).
    theta = (logit(E / c), log k, log C_mid).
    """

    name: str = "sigmoid-compute"
    inputs: tuple[str, ...] = ("flops",)
    param_names: tuple[str, ...] = ("E", "k", "C_mid")
    exponent_names: tuple[str, ...] = ("k",)
    description: str = "E + (chance - E) / (1 + (C/C_mid)^k), bounded by the chance error"
    accuracy_target: str = "error"
    accuracy_only: bool = True
    chance_error: float = 1.0

    def theta_names(self) -> tuple[str, ...]:
        return ("logit_E", "log_k", "log_C_mid")

    def log_predict(self, theta, logx):
        theta = np.asarray(theta, dtype=float)
        u, log_k, m = (theta[..., i, None] for i in range(3))
        c = self.chance_error
        floor = c / (1.0 + np.exp(-u))
        k = np.exp(log_k)
        z = -k * (logx["flops"] - m)
        s = 0.5 * (1.0 + np.tanh(0.5 * z))  # logistic, overflow-free
        y = floor + (c - floor) * s
        dy_du = floor * (1.0 - floor / c) * (1.0 - s)
        ds = s * (1.0 - s)
        jac = np.stack([dy_du, (c - floor) * ds * z, (c - floor) * ds * k], axis=-1) / y[..., None]
        return np.log(y), jac

    def params(self, theta):
        theta = np.asarray(theta, dtype=float)
        return {
            "E": self.chance_error / (1.0 + np.exp(-theta[..., 0])),
            "k": np.exp(theta[..., 1]),
            "C_mid": np.exp(theta[..., 2]),
        }

    def theta(self, params):
        chance = self.chance_error
        return np.array([np.log(params["E"] / (chance - params["E"])), np.log(params["k"]),
                         np.log(params["C_mid"])], dtype=float)

    def bounds(self, logy):
        return [(-20.0, 20.0), (np.log(1e-3), np.log(20.0)), (-50.0, 250.0)]

    def start_grid(self, logx, logy):
        lo, hi = float(logx["flops"].min()), float(logx["flops"].max())
        ymin = float(np.exp(logy.min()))
        rows = []
        for floor_share, k, where in product((0.1, 0.5, 0.9), (0.1, 0.3, 1.0, 3.0), (-0.5, 0.0, 0.5, 1.0, 1.5)):
            floor = min(floor_share * ymin, 0.999 * self.chance_error)
            u = np.log(floor / (self.chance_error - floor))
            rows.append((u, np.log(k), lo + where * (hi - lo)))
        return np.array(rows)


FORMS: dict[str, LawForm] = {
    "chinchilla": ChinchillaForm(),
    "power-compute": SaturatingPowerForm(
        name="power-compute", inputs=("flops",), param_names=("E", "A", "k"), exponent_names=("k",),
        axis="flops", description="E + A * C^-k in training compute C",
    ),
    "power-params": SaturatingPowerForm(
        name="power-params", inputs=("params",), param_names=("E", "A", "k"), exponent_names=("k",),
        axis="params", description="E + A * N^-k in parameters N",
    ),
    "power-data": SaturatingPowerForm(
        name="power-data", inputs=("samples",), param_names=("E", "A", "k"), exponent_names=("k",),
        axis="samples", description="E + A * D^-k in training samples D",
    ),
    "sigmoid-compute": SigmoidComputeForm(),
}
FORM_NAMES = tuple(FORMS)


def get_form(name: str, chance_error: float | None = None) -> LawForm:
    """The law form called ``name``; ``chance_error`` sets the ceiling of the sigmoid form."""
    if name not in FORMS:
        raise GaitforecastError(f"unknown law {name!r}; choose one of {', '.join(FORM_NAMES)} (or 'auto')")
    form = FORMS[name]
    if chance_error is not None and isinstance(form, SigmoidComputeForm):
        if not 0.0 < chance_error <= 1.0:
            raise GaitforecastError(f"chance error must be in (0, 1], got {chance_error}")
        form = SigmoidComputeForm(chance_error=chance_error)
    return form
