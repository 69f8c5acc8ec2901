"""Throughput of the synthetic gait world: sequences of 60 frames rendered per second.

Run with nothing else heavy on the machine:  python benchmarks/bench_world.py [--n 40000] [--threads 2]
Prints wall-clock sequences/s (the figure the target of >= 10,000/s on 2 cores refers to) and the
per-core rate from process CPU time, which is less sensitive to other load on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from gaitforecast.data.world import WorldConfig, random_walks, render, sample_identities  # noqa: E402


def measure(n: int, threads: int, frames: int = 60, repeats: int = 3) -> dict:
    cfg = WorldConfig(frames=frames)
    rng = np.random.default_rng(0)
    identities = sample_identities(2048, rng)
    walks = random_walks(rng.integers(0, 2048, n), rng)
    render(cfg, identities, walks.take(slice(0, 2048)), seed=0, threads=threads)  # warm-up
    best_wall, best_cpu = float("inf"), float("inf")
    for r in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        render(cfg, identities, walks, seed=r, threads=threads)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return {"sequences": n, "frames": frames, "threads": threads, "seq_per_s": n / best_wall,
            "seq_per_cpu_s": n / best_cpu, "load_avg_1min": os.getloadavg()[0], "cpus": os.cpu_count()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40_000, help="sequences per timed run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    res = measure(args.n, args.threads, args.frames)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"synthetic world: {res['seq_per_s']:,.0f} sequences/s ({args.frames} frames, {args.threads} threads, "
              f"best of 3 x {args.n:,}); {res['seq_per_cpu_s']:,.0f} per CPU-second; "
              f"load average {res['load_avg_1min']:.1f} on {res['cpus']} CPUs")


if __name__ == "__main__":
    main()
