"""Face: tracking (MediaPipe; one face, or several with identities), alignment (crops and their
transforms), masks, paste-back.

Importing this package loads no model; :class:`FaceTracker` and :class:`MultiFaceTracker` load MediaPipe when built.
Coordinates are native frame pixels in OpenCV's convention (the top-left pixel's centre is
(0, 0)); crops are square, their frame→crop transforms 2×3 float64 matrices.
"""

from edidub_engine.face.alignment import (
    CROP_PX,
    AlignmentSmoother,
    FaceAlignment,
    fit_similarity,
    smooth_alignments,
    warp_crop,
)
from edidub_engine.face.faces import ALL_FACES, FacesFrame, MultiFaceTracker
from edidub_engine.face.compose import add_changes, apply_change, edit_weight, paste_back, paste_change
from edidub_engine.face.masks import feathered_matte, landmarks_to_crop, lower_face_mask
from edidub_engine.face.stream import TrackedFrame, track_and_align
from edidub_engine.face.tracking import (
    FaceObservation,
    FaceSelector,
    FaceStatus,
    FaceTracker,
    SelectorMode,
)

__all__ = [
    "ALL_FACES",
    "FacesFrame",
    "MultiFaceTracker",
    "add_changes",
    "apply_change",
    "CROP_PX",
    "AlignmentSmoother",
    "FaceAlignment",
    "FaceObservation",
    "FaceSelector",
    "FaceStatus",
    "FaceTracker",
    "SelectorMode",
    "TrackedFrame",
    "edit_weight",
    "feathered_matte",
    "fit_similarity",
    "landmarks_to_crop",
    "lower_face_mask",
    "paste_back",
    "paste_change",
    "smooth_alignments",
    "track_and_align",
    "warp_crop",
]
