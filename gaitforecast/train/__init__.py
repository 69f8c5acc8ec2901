"""Self-supervised pretraining of one run and its zero-shot evaluation.

    result = train_run(config, cache_dir)      # config from gaitforecast.sweep.planner; returns a RunResult
    parts = ssl_loss(z1, z2, temperature=0.1)  # NT-Xent + 0.01 x KoLeo

The loop never writes the store; the sweep driver does (see gaitforecast.sweep.executors).
"""

from gaitforecast.train.loop import RunResult, train_run
from gaitforecast.train.objective import LossParts, koleo, nt_xent, ssl_loss

__all__ = ["LossParts", "RunResult", "koleo", "nt_xent", "ssl_loss", "train_run"]
