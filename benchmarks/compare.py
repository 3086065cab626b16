"""After/before ratios of two benchmark figure files (``suite.py --json``, or any of the scripts' JSON).

Every numeric figure found under the same path in both files is listed, with
its ratio after/before read the way it matters: for rates (fps, GFLOP/s,
speed-ups) a ratio above 1 is a speed-up; for seconds and MiB a ratio below 1
is the gain. Figures equal in both files (frame counts, step counts, settings)
are left out unless ``--all``. The machines of both runs are printed first:
ratios between different devices or a loaded machine (``loadavg_1m``) say little.

    .venv/bin/python benchmarks/compare.py BEFORE.json AFTER.json [--all] [--match TEXT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HIGHER_IS_BETTER = ("fps", "gflops_per_s", "speedup", "units_per_compute_s")
SKIP = {"environment", "args", "acceleration", "settings"}  # descriptions, not figures


def flatten(data, prefix: str = "") -> dict[str, float]:
    """``{"a/b/c": number}`` for every numeric leaf (lists indexed, or keyed by a row's name field when it has one)."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if key not in SKIP:
                out.update(flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            name = next((str(value[k]) for k in ("stage", "preset", "frontend", "name") if isinstance(value, dict) and k in value), str(i))
            out.update(flatten(value, f"{prefix}/{name}"))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out[prefix] = float(data)
    return out


def kind(path: str) -> str:
    leaf = path.rsplit("/", 1)[-1]
    if leaf.endswith(HIGHER_IS_BETTER):
        return "speed-up"
    if leaf.endswith("_mib"):
        return "memory"
    if leaf.endswith("_s") or leaf == "seconds":
        return "time"
    return "ratio"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--all", action="store_true", help="also list figures that are equal in both")
    parser.add_argument("--match", default="", help="only figures whose path contains this")
    args = parser.parse_args(argv)
    before, after = (json.loads(p.read_text(encoding="utf-8")) for p in (args.before, args.after))
    for label, data in (("before", before), ("after", after)):
        env = data.get("environment") or {}
        print(f"{label:<6}: {env.get('device_name', '?')} ({env.get('device', '?')}), torch {env.get('torch', '?')}, "
              f"{env.get('threads', '?')} threads, load {env.get('loadavg_1m', '?')}, commit {env.get('git_commit', '?')[:20]}, "
              f"{env.get('date', '?')}")
    if (before.get("environment") or {}).get("device_name") != (after.get("environment") or {}).get("device_name"):
        print("warning: the two runs used different devices; ratios compare machines, not code")
    a, b = flatten(before), flatten(after)
    common = [k for k in a if k in b and args.match in k]
    shown = [k for k in common if args.all or a[k] != b[k]]
    width = max((len(k) for k in shown), default=10)
    print(f"\n{'figure':<{width}}  {'before':>12}  {'after':>12}  after/before")
    for k in shown:
        ratio = b[k] / a[k] if a[k] else float("nan")
        print(f"{k:<{width}}  {a[k]:12.5g}  {b[k]:12.5g}  {ratio:7.3f}  {kind(k)}")
    print(f"\n{len(shown)} figures ({len(common) - len(shown)} equal in both left out; "
          f"{len(a) - len(common)} only before, {len(b) - len(common)} only after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
