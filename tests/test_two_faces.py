"""Two-shots (issue 32): every speaking face gets its own line, in one pass, and nothing else moves.

On ../shared/footage/twoface_interview.mp4 (a split-screen interview: the anchor left, face 0; the guest right,
face 1). Each face's mouth is measured again from the files with the multi-face tracker, as the lip-sync tests
measure one face (mouth opening against the source's and against the lines' loudness).
"""

from __future__ import annotations

import functools
import wave
from pathlib import Path

import numpy as np
import pytest

from edidub_engine.render import LoadedModels, ShotRenderer
from edidub_engine.shot import ShotRequest

FRAMES = 200  # eight seconds: enough of each actor's own mouths to close one on the line's silences (in 100 frames the guest never closes his)
CLIP = "twoface_interview.mp4"


@pytest.fixture(scope="module")
def renderer():
    return ShotRenderer(LoadedModels.load())


def _dub(renderer, out: Path, **request):
    return renderer.dub_shot(ShotRequest.from_dict({"shot_id": "two", "output": {"dir": str(out), "codec": "ffv1"}, **request}))


def _source(footage_path) -> dict:
    return {"path": str(footage_path(CLIP)), "start_frame": 0, "end_frame": FRAMES}


@functools.lru_cache(maxsize=8)  # the source is tracked once for all the tests
def _landmarks(path: Path, frames: int) -> list[list]:
    """Faces 0 and 1's landmarks per frame (None where not found), tracked from the file."""
    from edidub_engine.face import FaceStatus, MultiFaceTracker
    from edidub_engine.media import iter_frames, probe_video

    out = [[None] * frames, [None] * frames]
    with MultiFaceTracker(["0", "1"]) as tracker:
        for index, frame in iter_frames(probe_video(path), 0, frames):
            seen = tracker.process(frame, index)
            for k in range(2):
                if seen[str(k)].status is FaceStatus.OK:
                    out[k][index] = seen[str(k)].landmarks
    return out


def _openings(path: Path, frames: int) -> np.ndarray:
    """[2, frames] mouth openings of faces 0 and 1 (NaN where not found), tracked from the file."""
    from edidub_engine.mouth import mouth_opening

    return np.array([[np.nan if lm is None else mouth_opening(lm)[0] for lm in face] for face in _landmarks(path, frames)])


def _loudness(path: Path, frames: int) -> np.ndarray:
    from fractions import Fraction

    from edidub_engine.media import load_audio
    from edidub_engine.mouth import loudness_db

    return loudness_db(load_audio(path, sample_rate_hz=16000), Fraction(25), frames)


def _changed(source: Path, dubbed: Path, frames: int) -> np.ndarray:
    """[frames, H, W] bool: where the dub's decoded pixels differ from the source's."""
    from edidub_engine.media import iter_frames, probe_video

    return np.stack([np.abs(a.astype(np.int16) - b).max(axis=2) > 0
                     for (_, a), (_, b) in zip(iter_frames(probe_video(source), 0, frames), iter_frames(probe_video(dubbed), 0, frames))])


def test_each_face_follows_its_own_line_and_nothing_else_changes(renderer, footage_path, tmp_path):
    from edidub_engine.mouth.sync import lip_sync_figures

    french, german = footage_path("dub_fr_french1.wav"), footage_path("dub_de_german1.wav")
    clip = _dub(renderer, tmp_path, source=_source(footage_path),
                lines=[{"face": "0", "dub_audio": [{"path": str(french)}]}, {"face": "1", "dub_audio": [{"path": str(german)}]}])
    faces = clip.qc["faces"]
    assert [f["face"] for f in faces] == ["0", "1"] and all(f["frames_edited"] == FRAMES for f in faces)
    assert clip.qc["quality"]["verdict"] == "ok", clip.qc["quality"]["reasons"]
    # two mouths edited, one left and one right, and not a pixel elsewhere (FFV1 keeps the source's own samples)
    changed = _changed(footage_path(CLIP), Path(clip.path), FRAMES)
    width = changed.shape[2]
    # the guest talks with his hands: where a hand lies over his lower face his own mouth stays (a moved one would erase it)
    from edidub_engine.face.hands import CoverWatch
    from edidub_engine.media import iter_frames, probe_video

    assert faces[1]["mouths"]["frames_kept_covered"] > 0
    track = _landmarks(footage_path(CLIP), FRAMES)
    with CoverWatch() as watch:
        covered = np.array([watch.covered(frame, track[1][k]) for k, (_, frame) in enumerate(iter_frames(probe_video(footage_path(CLIP)), 0, FRAMES))])
    assert covered.any() and not changed[covered][:, :, width // 2 :].any()
    # elsewhere most frames take a new mouth (one whose own mouth already has the opening the line asks for keeps it)
    assert changed[:, :, : width // 2].any(axis=(1, 2)).mean() > 0.6 and changed[~covered][:, :, width // 2 :].any(axis=(1, 2)).mean() > 0.6
    assert changed.mean() < 0.05  # two lower faces of a 1280x720 frame
    rows, cols = np.nonzero(changed.any(axis=0))
    assert set(np.unique(cols >= width // 2)) == {False, True}
    import cv2

    for k in range(FRAMES):  # every changed pixel lies inside one of the two faces (their outlines grown 30 %)
        faces_here = np.zeros(changed.shape[1:], np.uint8)
        for face in track:
            if face[k] is not None:
                hull = cv2.convexHull(face[k][:, :2].astype(np.float32)).reshape(-1, 2)
                cv2.fillConvexPoly(faces_here, ((hull - hull.mean(0)) * 1.3 + hull.mean(0)).astype(np.int32), 1)
        assert not (changed[k] & (faces_here == 0)).any(), f"frame {k}: a pixel changed outside both faces"
    # each face's lips follow its own line, not the other face's, nor the original
    src, out = _openings(footage_path(CLIP), FRAMES), _openings(Path(clip.path), FRAMES)
    original, lines = _loudness(footage_path(CLIP), FRAMES), {0: _loudness(french, FRAMES), 1: _loudness(german, FRAMES)}
    for k in range(2):
        own = lip_sync_figures(src[k], out[k], lines[k], original)
        other = lip_sync_figures(src[k], out[k], lines[1 - k], original)
        assert own.sync_dub > other.sync_dub + 0.2 and own.sync_dub > own.sync_orig + 0.2, (k, own, other)
        assert own.copy_corr < 0.6 and own.open_change > 0.3, (k, own)


def test_a_face_with_a_silent_line_closes_its_mouth_and_the_other_speaks(renderer, footage_path, tmp_path):
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 5, np.int16).tobytes())
    clip = _dub(renderer, tmp_path, source=_source(footage_path),
                lines=[{"face": "0", "dub_audio": [{"path": str(silent)}]},
                       {"face": "1", "dub_audio": [{"path": str(footage_path("dub_fr_french1.wav"))}]}])
    src, out = _openings(footage_path(CLIP), FRAMES), _openings(Path(clip.path), FRAMES)
    assert np.nanpercentile(out[0], 90) < 0.5 * np.nanmedian(src[0][src[0] > np.nanquantile(src[0], 0.5)])  # closed all along
    assert np.nanmean(out[0]) < 0.4 * np.nanmean(src[0])
    assert np.nanstd(out[1]) > 0.5 * np.nanstd(src[1])  # the other face still talks


def test_a_mixed_line_goes_to_whoever_spoke_it(renderer, footage_path, tmp_path):
    """--speakers auto: the stretches each face was given are those the speakers rule finds in the original, and a
    face's mouth is closed where it was given nothing."""
    from edidub_engine.analysis.speakers import find_speakers
    from edidub_engine.media import load_audio_for_frames, probe_video
    from edidub_engine.mouth import loudness_db

    clip = _dub(renderer, tmp_path, source=_source(footage_path), dub_audio=[{"path": str(footage_path("dub_en_jfk.flac"))}],
                speakers="auto")
    faces = {f["face"]: f for f in clip.qc["faces"]}
    info = probe_video(footage_path(CLIP))
    turns = find_speakers(_openings(footage_path(CLIP), FRAMES), loudness_db(load_audio_for_frames(info, 0, FRAMES), info.rate, FRAMES),
                          info.rate)
    for k in range(2):
        if turns.stretches(k):
            assert faces[str(k)]["speaking"] == turns.stretches(k) and faces[str(k)]["given_by"] == "speakers"
    out = _openings(Path(clip.path), FRAMES)
    for name, face in faces.items():
        given = np.zeros(FRAMES, bool)
        for a, b in face["speaking"]:
            given[a:b] = True
        if (~given).sum() >= 10 and given.sum() >= 10:
            k = int(name)
            assert np.nanmean(out[k][~given]) < np.nanmean(out[k][given]), (name, face["speaking"])
