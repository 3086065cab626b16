"""Shared by the benchmark scripts: where the footage is, what machine ran them, and memory probes.

Every figure file records the machine (device, torch, threads, commit, date) so
``benchmarks/compare.py`` can say what two runs were; the memory probes reset the
kernel's peak-RSS counter per stage (``/proc/self/clear_refs``), so a stage's peak is its own.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from cpu_stages import rss_mib  # noqa: F401  (re-exported: the one VmRSS/VmHWM reader)

ROOT = Path(__file__).resolve().parents[1]
FOOTAGE = ROOT.parent / "shared" / "footage"
STARTER = ROOT / "edidub_engine" / "starter_models" / "edidub-starter"


def best_of(repeats: int, fn) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def pick_device():
    """``cuda`` when there is one, else the CPU (every benchmark runs where the renderer would)."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def environment(device=None) -> dict:
    """What ran the benchmark: two figure files are only comparable when this is known."""
    import torch

    device = device or pick_device()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "", False
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "git_commit": commit + ("+dirty" if dirty else ""),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "loadavg_1m": round(os.getloadavg()[0], 2),  # other work on the machine makes every figure slower
    }


def sync(device) -> None:
    """Wait for queued GPU work, so a wall-clock time covers it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peaks(device) -> None:
    """Start a stage's peak counters afresh: VmHWM (Linux ≥ 4.0, writing 5 to clear_refs) and CUDA's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux or not allowed: VmHWM then stays the process's peak so far
        pass
    if device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def memory(device) -> dict:
    """Resident memory now, peak since :func:`reset_peaks`, and the GPU's peak allocation (``None`` on CPU)."""
    gpu = None
    if device.type == "cuda":
        import torch

        gpu = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return {"rss_mib": round(rss_mib(), 1), "peak_rss_mib": round(rss_mib("VmHWM"), 1), "gpu_peak_mib": gpu}


def write_json(path: Path, data: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
