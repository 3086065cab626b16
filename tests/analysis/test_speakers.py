"""Who speaks when (analysis.speakers, edidub analyze --speakers): on the shared two-shot against a labelling
made by watching it, through the real console script; and the rules' properties on plain arrays."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import numpy as np
import pytest

from edidub_engine.analysis.speakers import find_speakers, mask_ranges

INTERVIEW = "twoface_interview.mp4"
FRAMES = 438

# Who speaks in twoface_interview.mp4 (25 fps, frames 0-437), labelled by watching, not by any measure of
# this module: each face's mouth was cut out of every frame and laid out 15 frames a row at 104 px (a
# second pass at 156 px with the inner-lip landmarks drawn where the first was unclear), the two faces'
# rows interleaved, with each frame's loudness printed on its tile (the sound could not be listened to;
# the loudness told where there is voice at all). A face speaks where its mouth articulates, opening and
# closing from frame to frame, while there is voice; smiles, grins and laughter with the teeth showing,
# a mouth open without voice (frames 311-316, 368-373), and pauses of 6 frames or more are not speech.
# Crosstalk is labelled where both mouths articulate at once. The anchor (face 0, left) is clear-cut;
# the guest (face 1, right) laughs and reacts with his mouth a lot, and is the less certain labelling.
ANCHOR = [(0, 36), (74, 89), (97, 116), (122, 136), (143, 174), (181, 204), (228, 236), (260, 267), (389, 429)]
GUEST = [(3, 25), (36, 40), (47, 74), (94, 104), (108, 122), (141, 169), (181, 239), (250, 259), (278, 311),
         (317, 368), (374, 405)]


def _mask(ranges) -> np.ndarray:
    out = np.zeros(FRAMES, bool)
    for a, b in ranges:
        out[a:b] = True
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory, footage_path) -> dict:
    """``edidub analyze CLIP --speakers -o report.json``, run once as a user runs it."""
    clip = footage_path(INTERVIEW)
    out = tmp_path_factory.mktemp("speakers") / "report.json"
    proc = subprocess.run([sys.executable, "-m", "edidub_engine", "analyze", str(clip), "--speakers", "--occlusion-every", "25",
                           "-o", str(out), "-q"], cwd=out.parent, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    assert "face 0 (left)" in proc.stdout and "face 1 (right)" in proc.stdout
    return json.loads(out.read_text())


def test_the_report_gives_each_face_its_stretches(report):
    faces = report["faces"]
    assert [(f["index"], f["shot"], f["side"]) for f in faces] == [(0, 0, "left"), (1, 0, "right")]
    for face in faces:
        assert face["frames"] == FRAMES and face["frames_found"] >= 0.95 * FRAMES
        assert face["lost"] == [] and face["missing"] == []
        stretches = face["speaking"]
        assert stretches and all(0 <= a < b <= FRAMES for a, b in stretches)
        assert all(b < c for (_, b), (c, _) in zip(stretches, stretches[1:]))  # half-open, sorted, apart
        assert 0 <= face["confidence"] <= 1
        x0, _, x1, _ = face["box"]
        assert (x0 + x1) / 2 < 640 if face["index"] == 0 else (x0 + x1) / 2 > 640
    assert report["speakers"]["voice_db"] < 0  # the settings travel with the figures


def test_speaking_stretches_agree_with_watching_the_clip(report):
    found = {f["index"]: _mask(f["speaking"]) for f in report["faces"]}
    agreement = {}
    for index, labels, bound in ((0, ANCHOR, 0.80), (1, GUEST, 0.75)):
        truth = _mask(labels)
        agreement[index] = float((found[index] == truth).mean())
        # the bound means something: "always speaks" and "never speaks" both fall short of it
        assert max(truth.mean(), 1 - truth.mean()) < bound - 0.05
        assert agreement[index] >= bound, (index, agreement[index])
    # and the faces are told apart: each face's stretches agree with the other face's labels far less
    assert (found[0] == _mask(GUEST)).mean() < agreement[0] - 0.15
    assert (found[1] == _mask(ANCHOR)).mean() < agreement[1] - 0.15
    # both speak at once somewhere (crosstalk), and each is silent somewhere
    assert (found[0] & found[1]).any() and (~found[0]).any() and (~found[1]).any()


def _syllables(frames: int, fps: float = 25.0, hz: float = 4.0) -> np.ndarray:
    """A mouth opening and closing at a syllable rate: 0 to 0.2 (mouth_opening units)."""
    return 0.1 + 0.1 * np.sin(2 * np.pi * hz * np.arange(frames) / fps)


def test_no_voice_means_nobody_speaks_whatever_the_mouths_do():
    openings = np.stack([_syllables(200), _syllables(200, hz=3.0)])
    turns = find_speakers(openings, np.full(200, -100.0), 25)
    assert not turns.speaking.any()


def test_the_moving_mouth_speaks_the_still_one_does_not():
    rng = np.random.default_rng(0)
    loud = np.full(250, -60.0)
    loud[50:200] = -20 + 3 * rng.standard_normal(150)  # voice over frames 50-199
    still = 0.01 + 0.001 * rng.standard_normal(250)  # a closed mouth with landmark jitter
    turns = find_speakers(np.stack([_syllables(250), still]), loud, 25)
    assert turns.stretches(0) == [[50, 200]] and turns.stretches(1) == []
    assert turns.confidence(0) > 0.9 and turns.confidence(1) > 0.9
    # two mouths moving through the voice: both speak (crosstalk is allowed)
    both = find_speakers(np.stack([_syllables(250), _syllables(250, hz=5.0)]), loud, 25)
    assert both.speaking[:, 60:190].all()


def test_a_face_speaks_only_where_it_was_found():
    loud = np.full(150, -20.0)
    opening = _syllables(150)
    opening[60:90] = np.nan  # not found (or its identity unsure) there
    turns = find_speakers(opening[None], loud, 25)
    assert not turns.speaking[0, 60:90].any() and turns.speaking[0, 10:50].all()
    assert mask_ranges(np.array([0, 1, 1, 0, 1], bool), 100) == [[101, 103], [104, 105]]


def test_speakers_needs_the_clips_sound(tmp_path):
    silent = tmp_path / "no_sound.mp4"
    with av.open(str(silent), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(5):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode())
    proc = subprocess.run([sys.executable, "-m", "edidub_engine", "analyze", str(silent), "--speakers", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "no_sound.mp4" in proc.stderr and "what to do:" in proc.stderr
