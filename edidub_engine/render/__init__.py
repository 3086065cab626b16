"""One shot end to end: ShotRequest → decode → track → units → pipeline → paste-back → encoded RenderedClip.

A shot streams, so memory does not follow its length and the GPU does not wait:

1. a track thread decodes and tracks the face, keeping per frame only what is
   small (status, landmarks, the crop transform, the LSD-size crop and mask)
   (:mod:`.track`);
2. the calling thread groups frames into stretches of usable frames and runs
   each LSD section (inversion, then guided sampling) as soon as it is decided
   — the sections are exactly those of the whole-shot plan, the previous
   section's output carried over — then the SRD chunk by chunk (a chunk is
   decoded once to cut its high-resolution crops) (:mod:`.job`);
3. an encode thread decodes each chunk again, pastes the restored crops into
   the native frames and writes them, in order.

Frames without a usable face (none found, low confidence, a stretch too short
to edit) are written as decoded and listed with the reason; the edit ramps in
and out over a few frames next to them.  Everything that does not depend on
the dub (the track, in blocks; the original units; each section's inversion)
is kept in the inversion cache, so a second language for the same shot skips
it.  The output is written under a temporary name and published only when
complete; a failure or cancel stops every stage and publishes nothing
(:mod:`.renderer`). :mod:`.models` loads a bundle, :mod:`.runner` serves bundles
to the daemon.
"""

from .models import LSD_MARGIN_DB, SRD_MARGIN_DB, LoadedModels, lsd_verdict, srd_beats_bicubic, srd_verdict
from .renderer import ShotRenderer, next_version
from .runner import ModelRunner, dub_shot, runner_for_device
from .track import FrameRecord, ShotTrack, iter_track, track_shot

__all__ = ["FrameRecord", "LSD_MARGIN_DB", "LoadedModels", "ModelRunner", "SRD_MARGIN_DB", "ShotRenderer", "ShotTrack", "dub_shot", "iter_track",
           "next_version", "lsd_verdict", "runner_for_device", "srd_beats_bicubic", "srd_verdict", "track_shot"]
