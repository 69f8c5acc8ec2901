"""Training-step speed of the model families on this CPU (one process, side by side).

    .venv/bin/python benchmarks/bench_models.py [--threads N] [--before COMMIT] [--json] [--skip-published]
                                                [--no-compile]

A step is forward + backward + AdamW on a SimCLR batch (B sequences x 2 views, one forward over 2B).
Achieved GFLOP/s = 3 x forward FLOPs x 2 views x sequences/s, compared with a square-matmul peak measured in
the same process in the dtype the row ran in. Two sections, each printing its ratios:

1. **Published size** (width 32, T 60) at batch 16, 32 and 64: the faithful original GaitPT (``fair_gaitpt.py``,
   built as the released code builds it: torch's nn.TransformerEncoder layers, 8 heads, einops, fp32; with the
   published dropout 0.05 and with dropout 0, its fastest form), gaitforecast's v1 config, and v2 in the dtype
   the sweep would use here. The ratio v2 / fair original is taken against the faster fair row.
2. **Sweep widths**: GaitPT at w4, w8, w16 and the default profile's GaitPT widths, GaitFormer at the profile's
   widths, as the default profile trains them (its frames, batch and precision), beside **before**: the GaitPT
   code of commit ``--before`` (default ef9fdca), loaded from git into this process and trained the same way.
   Rows are interleaved (before, after, before, after ...) and the median is kept, so load on a shared machine
   hits both alike; ``vs_before`` in ``--json`` has the ratio per width. Without git history the before rows are
   skipped, said so. GaitPT also runs under torch.compile as ``--compile`` trains it (steps after the compile;
   the compile's own time is printed as ``compile_s``).
Takes about 5 minutes on 2 cores (a fair-original step at batch 64 alone takes ~10 s), plus 2-10 minutes of
compiling for the compiled rows (less when torch's on-disk compile cache already holds the kernels).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fair_gaitpt import FairGaitPT  # noqa: E402

from gaitforecast.models import build_model, config_for, count_params, forward_flops  # noqa: E402
from gaitforecast.models.config import ModelConfig  # noqa: E402
from gaitforecast.models.mup import param_groups  # noqa: E402
from gaitforecast.models.runtime import cpu_features, matmul_peak_gflops, pick_autocast_dtype, pin_threads  # noqa: E402
from gaitforecast.sweep.spec import load_profile  # noqa: E402
from gaitforecast.train.loop import compiled_model  # noqa: E402

BEFORE_COMMIT = "ef9fdca"
GAITPT_WIDTHS = (4, 8, 16)  # the widths the step-speed target is stated at
REPO = Path(__file__).resolve().parent.parent


def before_gaitpt(commit: str = BEFORE_COMMIT) -> type | None:
    """The GaitPT class as it was at ``commit`` (blocks + gaitpt modules from git), or None without git."""
    modules = {}
    for name in ("blocks", "gaitpt"):
        try:
            src = subprocess.run(["git", "show", f"{commit}:gaitforecast/models/{name}.py"], cwd=REPO,
                                 capture_output=True, text=True, check=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        src = src.replace("from gaitforecast.models.blocks import", "from _before_blocks import")
        module = types.ModuleType(f"_before_{name}")
        sys.modules[module.__name__] = module
        exec(compile(src, f"{commit}:gaitforecast/models/{name}.py", "exec"), module.__dict__)  # noqa: S102
        modules[name] = module
    return modules["gaitpt"].GaitPT


class StepTimer:
    """Full SimCLR training steps of one model on a fixed random batch; ``rate()`` times a few of them."""

    def __init__(self, model: torch.nn.Module, groups: list | None, frames: int, batch: int,
                 dtype: torch.dtype | None):
        self.model, self.batch, self.dtype = model.train(), batch, dtype
        self.opt = torch.optim.AdamW(groups if groups is not None else model.parameters(), lr=1e-4)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(batch, frames, 18, 2, generator=gen) * 0.3
        self.views = torch.cat((x + 0.01 * torch.randn(x.shape, generator=gen), x * 1.05))  # [2B, T, 18, 2]
        self.positives = torch.arange(2 * batch).roll(batch)
        self.eye = torch.eye(2 * batch, dtype=torch.bool)
        self.step()  # warm-up

    def step(self) -> None:
        with torch.autocast("cpu", dtype=self.dtype or torch.bfloat16, enabled=self.dtype is not None):
            z = self.model(self.views)
        z = F.normalize(z.float(), dim=-1)
        loss = F.cross_entropy((z @ z.T / 0.1).masked_fill(self.eye, float("-inf")), self.positives)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()  # no .item(): nothing forces a host sync inside the loop

    def rate(self, min_seconds: float, max_steps: int = 4) -> float:
        steps, start = 0, time.perf_counter()
        while steps < max_steps and (steps == 0 or time.perf_counter() - start < min_seconds):
            self.step()
            steps += 1
        return self.batch * steps / (time.perf_counter() - start)


def ours(cfg: ModelConfig, batch: int, dtype: torch.dtype | None, compiled: bool = False) -> StepTimer:
    """A timer of gaitforecast's model; ``compiled``: under torch.compile as ``--compile`` trains it (the warm-up
    step, which compiles, is timed as ``timer.compile_s``)."""
    model = build_model(cfg, seed=0)
    groups = param_groups(model, cfg, lr=1e-4, weight_decay=0.05)
    start = time.perf_counter()
    timer = StepTimer(compiled_model(model, torch.device("cpu")) if compiled else model, groups, cfg.frames, batch,
                      dtype)
    timer.compile_s = time.perf_counter() - start if compiled else 0.0
    return timer


def interleaved(timers: dict[str, StepTimer], rounds: int, seconds: float) -> dict[str, float]:
    """Median sequences/s of each timer over ``rounds`` rounds that take turns."""
    rates: dict[str, list[float]] = {k: [] for k in timers}
    for _ in range(rounds):
        for key, timer in timers.items():
            rates[key].append(timer.rate(seconds))
    return {k: statistics.median(v) for k, v in rates.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--before", default=BEFORE_COMMIT, help="the commit whose GaitPT code is the 'before' rows")
    parser.add_argument("--seconds", type=float, default=1.5, help="minimum timed seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per comparison")
    parser.add_argument("--skip-published", action="store_true", help="only the sweep-widths section")
    parser.add_argument("--skip-sweep", action="store_true", help="only the published-size section")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (each compiles for "
                        "1-5 min on a 2-core CPU)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    auto = pick_autocast_dtype("cpu")
    name = {None: "fp32", torch.bfloat16: "bf16"}
    peaks = {None: matmul_peak_gflops(torch.float32), torch.bfloat16: matmul_peak_gflops(torch.bfloat16)}
    report: dict = dict(started=datetime.datetime.now().isoformat(timespec="seconds"), torch=torch.__version__,
                        threads=args.threads, cpu=cpu_features(), autocast=name.get(auto, str(auto)),
                        matmul_peak_gflops={"fp32": peaks[None], "bf16": peaks[torch.bfloat16]},
                        before=args.before, published=[], sweep=[], vs_before={})

    def row(section: str, label: str, cfg: ModelConfig, batch: int, dtype: torch.dtype | None, rate: float,
            **extra) -> dict:
        fwd = forward_flops(cfg)
        gflops = 3 * fwd * 2 * rate / 1e9
        out = dict(label=label, arch=cfg.arch, width=cfg.width, frames=cfg.frames, batch=batch,
                   params=count_params(cfg)[0], fwd_gflop=fwd / 1e9, dtype=name[dtype], seq_per_s=rate,
                   gflops=gflops, pct_peak=100 * gflops / peaks[dtype], **extra)
        report[section].append(out)
        print(f"{label:44s} B{batch:<3d} {out['dtype']} {rate:8.2f} seq/s {gflops:6.1f} GFLOP/s "
              f"({out['pct_peak']:4.1f}% of peak)" + "".join(f" {k} {v}" for k, v in extra.items()), file=sys.stderr)
        return out

    if not args.skip_published:
        v1, v2 = config_for("gaitpt-v1", 32), config_for("gaitpt", 32)
        for batch in (16, 32, 64):
            timers = {"fair 0.05": StepTimer(FairGaitPT(dropout=0.05), None, 60, batch, None),
                      "fair 0": StepTimer(FairGaitPT(dropout=0.0), None, 60, batch, None),
                      "v1": ours(v1, batch, None), "v2": ours(v2, batch, auto)}
            rates = interleaved(timers, 1, args.seconds)
            fair = max(rates["fair 0.05"], rates["fair 0"])
            row("published", "fair original GaitPT, dropout 0.05 (T 60)", v1, batch, None, rates["fair 0.05"])
            row("published", "fair original GaitPT, dropout 0 (T 60)", v1, batch, None, rates["fair 0"])
            row("published", "gaitforecast gaitpt-v1 config (T 60)", v1, batch, None, rates["v1"],
                vs_fair=round(rates["v1"] / fair, 2))
            row("published", "gaitforecast GaitPTv2 w32 (T 60)", v2, batch, auto, rates["v2"],
                vs_fair=round(rates["v2"] / fair, 2))
            del timers

    profile = load_profile("default")
    frames, batch = profile.data.frames, profile.train.batch_size
    dtype = {"fp32": None, "bf16": torch.bfloat16, "auto": auto}[profile.train.precision]
    widths = [] if args.skip_sweep else sorted({(b.arch, w) for b in profile.grid for w in b.widths}
                                               | {("gaitpt", w) for w in GAITPT_WIDTHS})
    before_cls = before_gaitpt(args.before) if widths else None
    if widths and before_cls is None:
        print(f"no git history here: the 'before' rows (commit {args.before}) are skipped", file=sys.stderr)
    for arch, width in widths:
        cfg = config_for(arch, width, frames=frames)
        timers = {"after": ours(cfg, batch, dtype)}
        if arch == "gaitpt" and before_cls is not None:
            old = before_cls(cfg)
            timers["before"] = StepTimer(old, param_groups(old, cfg, lr=1e-4, weight_decay=0.05), frames, batch, dtype)
            if not args.no_compile:
                timers["compiled"] = ours(cfg, batch, dtype, compiled=True)
        rates = interleaved(timers, args.rounds if "before" in timers else 1, args.seconds)
        if "before" in rates:
            row("sweep", f"before ({args.before}) {arch} w{width} T{frames}", cfg, batch, dtype, rates["before"])
            row("sweep", f"after {arch} w{width} T{frames} (as the sweep trains)", cfg, batch, dtype, rates["after"],
                vs_before=round(rates["after"] / rates["before"], 2))
            report["vs_before"][f"w{width}"] = round(rates["after"] / rates["before"], 3)
            if "compiled" in rates:
                row("sweep", f"after {arch} w{width} T{frames}, --compile", cfg, batch, dtype, rates["compiled"],
                    vs_before=round(rates["compiled"] / rates["before"], 2),
                    compile_s=round(timers["compiled"].compile_s, 1))
        else:
            row("sweep", f"{arch} w{width} T{frames} (as the sweep trains)", cfg, batch, dtype, rates["after"])

    for dt in peaks:  # re-measure: other processes on a shared machine can depress the first reading
        peaks[dt] = max(peaks[dt], matmul_peak_gflops(dt or torch.float32))
    for section in ("published", "sweep"):
        for r in report[section]:
            r["pct_peak"] = 100 * r["gflops"] / peaks[torch.bfloat16 if r["dtype"] == "bf16" else None]
    report["matmul_peak_gflops"] = {"fp32": peaks[None], "bf16": peaks[torch.bfloat16]}
    print(f"matmul peak fp32 {peaks[None]:.0f} GFLOP/s, bf16 {peaks[torch.bfloat16]:.0f} GFLOP/s", file=sys.stderr)
    for r in report["published"]:
        if "vs_fair" in r and "v2" in r["label"]:
            print(f"v2 / fair original at batch {r['batch']}: {r['vs_fair']:.2f}x", file=sys.stderr)
    for r in report["sweep"]:
        if "vs_before" in r:
            print(f"{r['label']}: {r['vs_before']:.2f}x before", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
