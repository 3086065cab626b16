"""``edidub doctor``: what this machine can do, in lines a person can act on."""

from __future__ import annotations

import os
from collections.abc import Iterator


OK, OPTIONAL, WARN, MISSING = "ok", "optional", "warn", "MISSING"  # MISSING alone makes doctor fail


def report(*, models: str | None = None, hubert_dir: str | None = None, clips: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """``(line, status)`` pairs: hardware, model bundle, speech frontends, codecs, and for each of ``clips``
    its pixel format, bit depth and colour tags with what a dub keeps of them.

    ``OPTIONAL`` is something absent that dubbing does not need (the HuBERT frontend when
    the bundle uses log-mel units), ``WARN`` something that works, slower or safer than
    asked (a fast path that fell back), ``MISSING`` something dubbing cannot do without.
    """
    import torch

    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            yield f"GPU {i}: {props.name}, {props.total_memory / 2**30:.0f} GiB", OK
        yield ("fast path on GPU: bf16 autocast, channels-last-3d, torch.compile (override with --precision fp32 "
               "--compile off for the reference path)"), OK
    else:
        yield f"no CUDA GPU: dubbing runs on the CPU ({os.cpu_count()} cores, torch {torch.__version__}), slowly", WARN

    from .errors import EdidubError
    from .models.bundle import read_bundle, resolve_bundle

    frontend = None
    try:
        info = read_bundle(resolve_bundle(models))
        card, frontend = info.card, info.frontend
        yield (f"model bundle {info.name} {info.version} at {info.path} (speech frontend: {info.frontend}; "
               f"{card.get('summary') or card.get('description') or 'no model card summary'})"), OK
        yield from _fast_paths(info.path, torch)
    except EdidubError as err:
        yield f"model bundle: {err.message} — {err.hint}", MISSING

    yield "speech frontend 'mel': built in, needs no weights", OK
    from .audio import HUBERT_MODEL_NAME
    from .model_paths import resolve_model

    try:
        path = resolve_model(HUBERT_MODEL_NAME, explicit=hubert_dir, what="HuBERT model")
        yield f"speech frontend 'hubert': {path}", OK
    except EdidubError as err:
        if frontend == "hubert":
            yield f"speech frontend 'hubert' (this bundle's): {err.message} — {err.hint}", MISSING
        else:
            yield f"speech frontend 'hubert' (the paper's; not needed by this bundle): {err.message}", OPTIONAL

    import av

    for name, use in (("prores_aw", "ProRes 422 HQ masters"), ("libx264", "H.264 review copies"), ("ffv1", "FFV1 lossless checks"),
                      ("prores_ks", "ProRes 4444 patches with alpha and ProRes 4444 XQ masters"), ("dnxhd", "DNxHR HQX masters")):
        try:
            av.codec.Codec(name, "w")
            yield f"encoder {name}: {use}", OK
        except Exception:  # noqa: BLE001 - an encoder missing from this FFmpeg build
            yield f"encoder {name}: not in this FFmpeg build ({use} unavailable)", MISSING

    from .media.probe import probe_video
    from .media.summary import picture_summary

    for clip in clips:
        try:
            picture = picture_summary(probe_video(clip))
        except EdidubError as err:
            yield f"clip {clip}: {err.message} — {err.hint}", WARN
            continue
        depth = f"{picture['bit_depth']}-bit" if picture["bit_depth"] else "unknown depth"
        yield (f"clip {clip}: {picture['codec']} {picture['profile'] or ''} {picture['pix_fmt']} ({depth}), "
               f"{picture['color']['description']}; {picture['dub_keeps']}").replace("  ", " "), OK


def _fast_paths(bundle, torch) -> Iterator[tuple[str, str]]:
    """The self-check every worker runs (``DubbingPipeline``), here for each device's default path."""
    from .acceleration import Acceleration
    from .config import DubSettings
    from .models import load_model
    from .pipeline import DubbingPipeline

    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else ["cpu"]
    for device in devices:
        lsd = load_model(bundle / "lsd").float().to(device)
        srd = load_model(bundle / "srd").float().to(device)
        pipeline = DubbingPipeline(lsd=lsd, srd=srd, settings=DubSettings(), acceleration=Acceleration.auto(device))
        check = pipeline.fast_path
        if not check.checked:
            yield f"{device}: runs the reference path ({check.used.describe()}, eager)", OK
            continue
        figures = ", ".join(f"{k} {v}" for k, v in check.to_dict()["tried"][0]["agreement_db"].items())
        if check.fell_back:
            yield f"{device}: {check.message()}", WARN  # dubbing works, on a safer path
        else:
            yield f"{device}: fast path {check.used.describe()} agrees with the reference ({figures} dB)", OK
