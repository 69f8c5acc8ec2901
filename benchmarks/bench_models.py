"""Training-step speed of the model families on this CPU (one process, side by side).

    .venv/bin/python benchmarks/bench_models.py [--threads N] [--batch B] [--json]

A step is forward + backward + AdamW on a SimCLR batch (B sequences x 2 views, one forward over 2B).
Rows: the original GaitPT (gaitpt-v1 width 32: fp32, dropout 0.05, sequential LayerNorm/GELU blocks,
8 heads), the v2 family at the same widths (its own heads, and 8 heads like v1), the family's listed sizes (T 60, batch B),
then every size of the default sweep profile as it trains (its frames, batch size and precision). Achieved GFLOP/s = 3 x forward FLOPs x 2 views x sequences/s,
compared with a measured square-matmul peak in the dtype the row ran in. Runs in about a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time

import torch
import torch.nn.functional as F

from gaitforecast.sweep.spec import load_profile
from gaitforecast.models import FAMILY_WIDTHS, build_model, config_for, count_params, forward_flops
from gaitforecast.models.config import ModelConfig
from gaitforecast.models.mup import param_groups
from gaitforecast.models.runtime import cpu_features, matmul_peak_gflops, pick_autocast_dtype, pin_threads


def simclr_step_rate(cfg: ModelConfig, batch: int, dtype: torch.dtype | None, min_seconds: float,
                     max_steps: int = 6) -> tuple[float, int]:
    """Sequences per second of full training steps (after one warm-up step) and the number of steps timed."""
    model = build_model(cfg, seed=0).train()
    opt = torch.optim.AdamW(param_groups(model, cfg, lr=1e-4, weight_decay=0.05))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.frames, 18, 2, generator=gen) * 0.3
    views = torch.cat((x + 0.01 * torch.randn(x.shape, generator=gen), x * 1.05))  # [2B, T, 18, 2]
    positives = torch.arange(2 * batch).roll(batch)
    eye = torch.eye(2 * batch, dtype=torch.bool)

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            z = model(views)
        z = F.normalize(z.float(), dim=-1)
        logits = (z @ z.T / 0.1).masked_fill(eye, float("-inf"))
        loss = F.cross_entropy(logits, positives)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()  # no .item(): nothing forces a host sync inside the loop

    step()
    steps, start = 0, time.perf_counter()
    while steps < max_steps and (steps == 0 or time.perf_counter() - start < min_seconds):
        step()
        steps += 1
    return batch * steps / (time.perf_counter() - start), steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=8, help="sequences per step (x2 views)")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per row")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    auto = pick_autocast_dtype("cpu")
    started = datetime.datetime.now().isoformat(timespec="seconds")
    peaks = {None: matmul_peak_gflops(torch.float32), torch.bfloat16: matmul_peak_gflops(torch.bfloat16)}

    v1 = config_for("gaitpt-v1", 32)
    rows_cfg = [("original GaitPT (v1, fp32)", v1, None, args.batch),
                ("v2 @ v1 widths, 8 heads", config_for("gaitpt", 32, heads=(8, 8, 8, 8)), auto, args.batch),
                ("v2 @ v1 widths (family)", config_for("gaitpt", 32), auto, args.batch)]
    rows_cfg += [(f"family gaitpt w={w}", config_for("gaitpt", w), auto, args.batch)
                 for w in FAMILY_WIDTHS["gaitpt"][:-1]]
    rows_cfg += [(f"family gaitformer d={w}", config_for("gaitformer", w), auto, args.batch)
                 for w in FAMILY_WIDTHS["gaitformer"]]
    # The default profile's runs as they train: its frames, batch size and precision.
    profile = load_profile("default")
    profile_dtype = {"fp32": None, "bf16": torch.bfloat16, "auto": auto}[profile.train.precision]
    rows_cfg += [(f"default {block.arch} w={w} T={profile.data.frames}",
                  config_for(block.arch, w, frames=profile.data.frames), profile_dtype, profile.train.batch_size)
                 for block in profile.grid for w in block.widths]

    rows = []
    for label, cfg, dtype, batch in rows_cfg:
        rate, steps = simclr_step_rate(cfg, batch, dtype, args.seconds)
        fwd = forward_flops(cfg)
        achieved = 3 * fwd * 2 * rate / 1e9
        rows.append(dict(label=label, arch=cfg.arch, width=cfg.width, heads=list(cfg.heads), batch=batch,
                         params=count_params(cfg)[0], fwd_gflop=fwd / 1e9,
                         dtype="bf16" if dtype else "fp32", steps=steps, seq_per_s=rate,
                         gflops=achieved, pct_peak=100 * achieved / peaks[dtype]))
        print(f"{label:32s} {rows[-1]['params']/1e6:6.2f}M {fwd/1e9:7.3f} GF/seq {rows[-1]['dtype']} "
              f"{rate:8.2f} seq/s {achieved:7.1f} GFLOP/s ({rows[-1]['pct_peak']:4.1f}% of the first peak)", file=sys.stderr)
    # re-measure: other processes on a shared machine can depress the first reading
    for dtype in peaks:
        peaks[dtype] = max(peaks[dtype], matmul_peak_gflops(dtype or torch.float32))
    for row in rows:
        row["pct_peak"] = 100 * row["gflops"] / peaks[torch.bfloat16 if row["dtype"] == "bf16" else None]
    speedup = rows[2]["seq_per_s"] / rows[0]["seq_per_s"]
    speedup8 = rows[1]["seq_per_s"] / rows[0]["seq_per_s"]
    report = dict(started=started, torch=torch.__version__, threads=args.threads, batch=args.batch,
                  cpu=cpu_features(), autocast=str(auto), matmul_peak_gflops={"fp32": peaks[None], "bf16": peaks[torch.bfloat16]},
                  rows=rows, speedup_v2_family_vs_v1=speedup, speedup_v2_8heads_vs_v1=speedup8,
                  v1_config=dataclasses.asdict(v1) | {"extra": None})
    print(f"matmul peak fp32 {peaks[None]:.0f} GFLOP/s, bf16 {peaks[torch.bfloat16]:.0f} GFLOP/s; "
          f"v2/v1 speed-up at the published widths: {speedup:.2f}x (family heads), {speedup8:.2f}x (8 heads)",
          file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
