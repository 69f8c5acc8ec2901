"""The product's main metric: the one sweeps print, `fit`/`backtest`/`summary` default to and the dashboard opens on.

Cross-view rank-1 on synth-casiab (mean of the NM, BG and CL probes; "quick" size: 40 identities x 6 views),
chosen by measurement on the default profile's sweep (numbers in its header and the README): against its
alternative, cross-view rank-5 of the NM probes (also recorded, ``synth-casiab.rank5_nm``), it has the same
signal-to-seed-noise ratio (~16:1 over the sweep) and half the held-out backtest error in metric points.
This module is the only place the name is written.
"""

MAIN_METRIC = "synth-casiab.rank1_mean"

import re  # noqa: E402

# What a metric is, for the laws: "loss" (lower is better, any positive value), "accuracy" (a fraction, higher is
# better) or "error" (a fraction, lower is better). Inferred from the name only where the name is unambiguous;
# otherwise the user says (--kind), and `import-runs --kind` stores it with the runs.
KINDS = ("loss", "accuracy", "error")
_LOSS = re.compile(r"loss|nll|perplexity|ppl|mse|rmse|mae|mape|bpb|bpc|xent|cross.?entropy")
_ERROR = re.compile(r"(^|[_\-.])(err|error|wer|cer|eer)(s|_rate)?([_@\-.]|\d|$)")
_ACCURACY = re.compile(r"^(rank-?\d+|top-?\d+|acc|accuracy|map|minp|recall|precision)([_@\-.].*)?$"
                       r"|(^|[_\-.])(acc|accuracy|top-?\d+)$")


def kind_from_name(metric: str) -> str | None:
    """The kind a metric's name makes certain (judged on the part after the suite prefix), else None.

    ``val_loss``, ``ssl_loss_heldout``, ``mape`` -> loss; ``top1_err``, ``wer`` -> error; ``rank1_mean``, ``mAP``,
    ``val_acc``, ``top1`` -> accuracy; ``score``, ``x`` -> None.
    """
    leaf = str(metric).rsplit(".", 1)[-1].lower()
    if _LOSS.search(leaf):
        return "loss"
    if _ERROR.search(leaf):
        return "error"
    if _ACCURACY.search(leaf):
        return "accuracy"
    return None


def check_kind(kind: str) -> str:
    """``kind`` if it is one of KINDS, else a GaitforecastError naming them."""
    from gaitforecast.errors import GaitforecastError

    if kind not in KINDS:
        raise GaitforecastError(f"unknown metric kind {kind!r}; use one of {', '.join(KINDS)}")
    return kind
