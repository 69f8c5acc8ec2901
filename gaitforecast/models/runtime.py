"""CPU speed settings for training: feature detection, autocast dtype, thread pinning, matmul peak.

Use at the start of a training process: ``pin_threads(n)`` before any torch work, then run the step under
``torch.autocast("cpu", dtype=pick_autocast_dtype("cpu"))`` when that is not None, and record
``cpu_features()`` and the dtype with the run (bf16 shifts losses slightly, which matters for fits).
Set GAITFORECAST_DTYPE=fp32 or bf16 to override the detection.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path

import torch

from gaitforecast.errors import GaitforecastError

_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "avx512_fp16")


@lru_cache(maxsize=1)
def cpu_features() -> dict:
    """CPU flags that matter for training speed, PyTorch's dispatch level and the core count.

    {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "avx512_fp16": bool,
     "torch_capability": e.g. "AVX512", "cores": int, "model": str}
    """
    flags: set[str] = set()
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    features: dict = {flag: flag in flags for flag in _FLAGS}
    features["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    features["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    features["model"] = model
    return features


def pick_autocast_dtype(device: str | torch.device = "cpu") -> torch.dtype | None:
    """bfloat16 where the CPU multiplies bf16 natively (AVX512-BF16 or AMX), else None (stay fp32).

    GAITFORECAST_DTYPE=fp32|bf16 overrides the detection.
    """
    override = os.environ.get("GAITFORECAST_DTYPE", "").lower()
    if override in ("fp32", "float32"):
        return None
    if override in ("bf16", "bfloat16"):
        return torch.bfloat16
    if override:
        raise GaitforecastError(f"GAITFORECAST_DTYPE={override!r} is not understood; use fp32 or bf16")
    if torch.device(device).type != "cpu":
        return torch.bfloat16 if torch.device(device).type == "cuda" else None
    f = cpu_features()
    return torch.bfloat16 if (f["avx512_bf16"] or f["amx_bf16"]) else None


def pin_threads(n: int) -> None:
    """Use exactly n intra-op threads (and 1 inter-op thread); call before any torch work.

    With W parallel training processes on C cores give each C // W threads; oversubscribing costs ~5x.
    """
    if n < 1:
        raise GaitforecastError(f"thread count must be at least 1, got {n}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once the first parallel work has run
        pass


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, size: int = 1024, seconds: float = 0.5) -> float:
    """Measured GFLOP/s of a square matmul (the practical peak to compare achieved throughput against)."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(2):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9
