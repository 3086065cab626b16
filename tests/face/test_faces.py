"""Several faces tracked with stable identities (face.faces.MultiFaceTracker), on real footage and on
clips built here from real faces: two people who cross, two look-alikes who cross, a face that leaves
and comes back. Real MediaPipe, real H.264 through PyAV; no mocks."""

from __future__ import annotations

import av
import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.face import FaceSelector, FaceStatus
from edidub_engine.face.faces import MultiFaceTracker
from edidub_engine.media import iter_frames, probe_video

INTERVIEW = "twoface_interview.mp4"  # split screen: anchor left (~174 px face), guest right (~193 px), every frame
PATCH_W, PATCH_H = 260, 320


@pytest.fixture(scope="module")
def interview(footage_path):
    """The whole interview tracked once with "all": (frames, FacesFrames, tracker's costs and lost ranges)."""
    info = probe_video(footage_path(INTERVIEW))
    with MultiFaceTracker("all") as tracker:
        result = list(tracker.track(iter_frames(info, 0, info.frame_count)))
        return info, result, tracker.detector_runs, tracker.mesh_runs, tracker.lost_ranges(), tracker.identities


def _centre_x(obs) -> float:
    return (obs.box[0] + obs.box[2]) / 2


def test_interview_two_faces_keep_their_sides_through_the_whole_clip(interview):
    info, result, detector_runs, mesh_runs, lost, identities = interview
    frames = info.frame_count
    assert len(result) == frames == 438
    assert identities == [FaceSelector.nth(0), FaceSelector.nth(1)]  # two faces, numbered left to right
    assert lost == {}
    for face, left in ((0, True), (1, False)):
        found = [r[face] for r in result if r[face].status is FaceStatus.OK]
        assert len(found) >= 0.95 * frames, f"face {face} found in {len(found)} of {frames} frames"
        placed = [r[face] for r in result if r[face].box is not None]
        assert all((_centre_x(o) < info.width / 2) == left for o in placed), f"face {face} changed sides"
    # the cost: about one mesh per face per frame, and the detector every few frames
    assert mesh_runs <= 1.1 * 2 * frames, mesh_runs
    assert detector_runs <= frames / 4, detector_runs


def test_selectors_name_faces_as_face_does(footage_path):
    info = probe_video(footage_path(INTERVIEW))
    frames = 30
    with MultiFaceTracker(["1", "largest", "100,300"]) as tracker:
        result = list(tracker.track(iter_frames(info, 0, frames)))
        indices = [tracker.face_index(s) for s in ("1", "largest", "100,300")]
        assert tracker.mesh_runs <= 1.1 * 2 * frames  # three selectors, two people: two meshes a frame
    assert indices[0] == 1 and indices[2] == 0 and indices[1] in (0, 1)  # the two faces are about the same size
    assert all(r["1"].ok and _centre_x(r["1"]) > 640 and r["100,300"].ok and _centre_x(r["100,300"]) < 640 for r in result)
    same = "1" if indices[1] == 1 else "100,300"
    assert all(np.array_equal(r["largest"].landmarks, r[same].landmarks) for r in result)


@pytest.fixture(scope="module")
def faces(footage_path):
    """Real face patches (PATCH_H × PATCH_W) of the interview: the anchor and the guest, 48 frames each."""
    info = probe_video(footage_path(INTERVIEW))
    anchor, guest = [], []
    for _, frame in iter_frames(info, 280, 328):
        anchor.append(frame[60 : 60 + PATCH_H, 270 : 270 + PATCH_W].copy())
        guest.append(frame[20 : 20 + PATCH_H, 752 : 752 + PATCH_W].copy())
    return anchor, guest


def _write_clip(path, frames) -> list[tuple[int, np.ndarray]]:
    """Encode RGB frames as H.264 at 25 fps with PyAV and decode them back through edidub_engine.media."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "16"}
        for picture in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    info = probe_video(path)
    return list(iter_frames(info, 0, info.frame_count))


def _crossing(tmp_path, first, second, frames=48, width=1120):
    """``first`` moves left to right in front of ``second``, which moves right to left; their centres per frame."""
    pictures, paths = [], []
    for t in range(frames):
        a = 180 + (width - 360) * t / (frames - 1)
        b = width - a
        canvas = np.full((400, width, 3), 40, np.uint8)
        for patches, x in ((second, b), (first, a)):  # the first is drawn last: in front
            x0 = int(round(x - PATCH_W / 2))
            canvas[40 : 40 + PATCH_H, x0 : x0 + PATCH_W] = patches[t % len(patches)]
        pictures.append(canvas)
        paths.append((a, b))
    return _write_clip(tmp_path / "crossing.mp4", pictures), paths


def test_two_people_who_cross_keep_their_identities(tmp_path, faces):
    anchor, guest = faces
    clip, paths = _crossing(tmp_path, anchor, guest)
    with MultiFaceTracker(["0", "1"]) as tracker:
        result = list(tracker.track(clip))
        lost = tracker.lost_ranges()
    apart = [t for t, (a, b) in enumerate(paths) if abs(a - b) > PATCH_W]
    for face in (0, 1):
        for t, r in enumerate(result):
            obs = r[face]
            if obs.box is not None:  # wherever it is placed, it is on its own person's path, never the other's
                assert abs(_centre_x(obs) - paths[t][face]) < 60, (face, t, _centre_x(obs), paths[t])
        assert all(result[t][face].ok for t in apart), f"face {face} not found where the faces stand apart"
    assert lost == {}  # the anchor and the guest look nothing alike: nothing to be unsure of
    assert _centre_x(result[-1][0]) > _centre_x(result[-1][1])  # face 0 (the anchor, first on the left) ends on the right


def test_look_alikes_who_cross_are_never_swapped_silently(tmp_path, faces):
    _, guest = faces
    clip, paths = _crossing(tmp_path, guest, guest)  # the same face twice: after the crossing no one can tell who is who
    with MultiFaceTracker(["0", "1"]) as tracker:
        result = list(tracker.track(clip))
        lost = tracker.lost_ranges()
    for face in (0, 1):
        for t, r in enumerate(result):
            if r[face].ok:  # every confident answer is right
                assert abs(_centre_x(r[face]) - paths[t][face]) < 60, (face, t, _centre_x(r[face]), paths[t])
    # and where it cannot be sure it says so: both identities lost from the crossing to the end
    key0, key1 = FaceSelector.nth(0), FaceSelector.nth(1)
    assert set(lost) == {key0, key1}
    crossing = next(t for t, (a, b) in enumerate(paths) if abs(a - b) < PATCH_W / 2)
    for key in (key0, key1):
        assert len(lost[key]) == 1 and crossing - 2 <= lost[key][0][0] <= crossing + 2 and lost[key][0][1] == len(clip), lost[key]
    assert all(r.unsure == {key0, key1} and not r[0].ok and not r[1].ok for r in result[-5:])


def test_a_face_that_leaves_and_comes_back_keeps_its_number(tmp_path, faces):
    anchor, guest = faces
    pictures = []
    for t in range(70):
        canvas = np.full((400, 1120, 3), 40, np.uint8)
        canvas[40 : 40 + PATCH_H, 100 : 100 + PATCH_W] = anchor[t % len(anchor)]
        if t < 15:
            canvas[40 : 40 + PATCH_H, 760 : 760 + PATCH_W] = guest[t]
        elif t >= 45:  # back after 30 frames away, elsewhere
            canvas[70 : 70 + PATCH_H, 520 : 520 + PATCH_W] = guest[t % len(guest)]
        pictures.append(canvas)
    clip = _write_clip(tmp_path / "leaves.mp4", pictures)
    with MultiFaceTracker("all") as tracker:
        result = list(tracker.track(clip))
        assert tracker.identities == [FaceSelector.nth(0), FaceSelector.nth(1)]  # no third face was made of the return
        assert tracker.lost_ranges() == {}
    assert all(r[1].status is FaceStatus.NO_FACE for r in result[16:45])
    back = [r[1] for r in result[45:]]
    # a face gone for longer than max_lost_frames is looked for at the detector's pace (every 8 frames)
    assert all(o.ok for o in back[8:]), [o.status.value for o in back]
    assert all(abs(_centre_x(o) - 650) < 60 for o in back if o.box is not None)
    assert all(r[0].ok for r in result)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(InvalidArgumentError):
        MultiFaceTracker([])
    with pytest.raises(InvalidArgumentError):
        MultiFaceTracker(["biggest"])
    with pytest.raises(InvalidArgumentError):
        MultiFaceTracker("all", detect_every=0)
    tracker = MultiFaceTracker("all")
    with pytest.raises(InvalidArgumentError):
        tracker.process(np.zeros((10, 10), np.uint8), 0)
    blank = tracker.process(np.zeros((288, 360, 3), np.uint8), 0)
    assert blank.faces == {} and blank.num_faces == 0
    tracker.close()
    with pytest.raises(InvalidArgumentError):
        tracker.process(np.zeros((288, 360, 3), np.uint8), 1)
