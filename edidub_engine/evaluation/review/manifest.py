"""A review set on disk: ``batch.json`` (the shots the page shows) and the originals' proxies.

``edidub eval`` writes one beside its run; for an ``edidub batch`` output one is built beside
the dubbed timeline from the batch's state, when ``edidub review`` is pointed at it.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import EdidubError, MediaNotFoundError
from ...files import write_json_atomically
from .export import read_json
from .proxy import PROXY_DIR, make_proxy, proxy_name

__all__ = ["review_set_for_batch", "write_batch_manifest"]


def write_batch_manifest(batch_dir: str | Path, shots: list[dict], *, title: str = "EdiDub batch", proxies: bool = True) -> Path:
    """``batch.json``: the shots ``edidub review`` shows (original range, dubbed file, warnings).

    With ``proxies``, each original's range is also written as a browser-playable
    H.264 proxy under ``proxies/`` (``original_proxy``); where one cannot be made,
    the shot says so in its warnings and the page plays the original itself.
    """
    folder = Path(batch_dir)
    shots = [dict(s) for s in shots]
    for i, shot in enumerate(shots if proxies else []):
        try:
            start, end = int(shot.get("start_frame", 0)), int(shot["end_frame"])
            relative = f"{PROXY_DIR}/{proxy_name(i, str(shot['shot_id']), start, end)}"
            (folder / PROXY_DIR).mkdir(exist_ok=True)
            if not (folder / relative).is_file():  # made for this very range by an earlier build of the set
                make_proxy(shot["original"], start, end, folder / relative)
            shot["original_proxy"] = relative
        except (EdidubError, OSError, KeyError, ValueError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            shot["warnings"] = [*shot.get("warnings", []), f"no browser-playable proxy of the original ({reason}); "
                                "the page plays the original file, which a browser may not decode"]
    return write_json_atomically(folder / "batch.json", {"title": title, "shots": shots}, indent=1)


def review_set_for_batch(path: str | Path) -> Path:
    """The review folder of an ``edidub batch`` output: ``<timeline>_review/`` beside the dubbed timeline.

    ``path`` is the dubbed timeline (or its ``.edidub-batch.json`` state). Each finished shot's
    source range and rendered clip come from the state; the folder's ``batch.json`` and proxies
    are (re)built from it, while its ``review.sqlite`` (the verdicts) is kept.
    """
    from ...batch.core import STATE_SUFFIX, state_path_for

    path = Path(path).expanduser()
    state_path = path if path.name.endswith(STATE_SUFFIX) else state_path_for(path)
    state = read_json(state_path, missing=f"{path} is not a batch output: {state_path.name} is missing",
                      hint="give the dubbed timeline `edidub batch` wrote, or a folder written by `edidub eval`")
    shots = []
    for shot_id, entry in (state.get("shots") or {}).items():
        clip = entry.get("clip") or {}
        source = (clip.get("qc") or {}).get("source") or {}
        if not clip.get("path") or not source.get("path"):
            continue  # submitted, never finished
        quality = (clip.get("qc") or {}).get("quality") or {}
        shots.append({"shot_id": shot_id, "original": source["path"], "dubbed": clip["path"],
                      "start_frame": int(source["start_frame"]), "end_frame": int(source["end_frame"]),
                      "rate": clip.get("rate", "25"), "timecode": clip.get("timecode", ""),
                      "warnings": [f"QC review: {r}" for r in quality.get("reasons", [])]
                      + ([", ".join(f"face {f['face']}: QC {f['verdict']}" for f in quality["faces"])] if quality.get("faces") else [])})
    if not shots:
        raise MediaNotFoundError(f"{state_path.name} lists no finished shot, so there is nothing to review",
                                 hint="run the batch to the end first")
    folder = state_path.with_name(state_path.name[: -len(STATE_SUFFIX)].rsplit(".", 1)[0] + "_review")
    folder.mkdir(exist_ok=True)
    write_batch_manifest(folder, shots, title=f"{state.get('timeline', path.name)}: {state.get('language') or 'dub'}")
    return folder
