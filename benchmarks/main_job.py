"""Wall time of the README main job, this tree against another, in one run on the same machine.

    .venv/bin/python benchmarks/main_job.py [--baseline SRC_DIR] [--repeats 2] [--clip CLIP --audio LINE]

Dubs ``../shared/footage/retalking_face2.mp4`` to ``dub_fr_french1.wav`` (the README's first command) in a fresh
process with an empty inversion cache, ``--repeats`` times, alternating with the baseline when one is given:
``SRC_DIR`` holds another version's ``edidub_engine/`` (e.g. ``git archive REV edidub_engine | tar -x -C SRC_DIR``),
run from there with this environment. Prints each run's seconds and the medians' ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOOTAGE = REPO.parent / "shared" / "footage"


def run_once(source_tree: Path, clip: Path, audio: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="main-job-") as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache"), "PYTHONPATH": str(source_tree)}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edidub_engine", "dub", str(clip), "--audio", str(audio), "-o", str(Path(tmp) / "out.mov"), "-q"],
                       cwd=source_tree, env=env, check=True, capture_output=True)
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="a folder holding another version's edidub_engine/ to time against")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--clip", type=Path, default=FOOTAGE / "retalking_face2.mp4")
    ap.add_argument("--audio", type=Path, default=FOOTAGE / "dub_fr_french1.wav")
    args = ap.parse_args()
    trees = {"this tree": REPO} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    times: dict[str, list[float]] = {name: [] for name in trees}
    for i in range(args.repeats):
        for name, tree in trees.items():
            seconds = run_once(tree, args.clip, args.audio)
            times[name].append(seconds)
            print(f"run {i + 1} {name}: {seconds:.1f} s", flush=True)
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.1f} s over {len(values)} run(s)")
    if args.baseline:
        print(f"this tree / baseline: {statistics.median(times['this tree']) / statistics.median(times['baseline']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
