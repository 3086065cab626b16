"""The mouth: its shape from face-mesh landmarks, the shape a dub line asks for, and the actor's own
mouths that give it.

Why this stage exists: the lip-sync network is conditioned on the source frame and starts from the
source's DDIM inversion, so a network that has not learned to take the mouth from the audio hands the
source's mouth back (the starter did: its lips followed the original line, ``copy_corr`` 0.96 on the
README main job). Here the mouth is decided *before* the diffusion edit, as Video Rewrite and
"Synthesizing Obama" did: the dub line's loudness sets how open the mouth is on every frame
(:mod:`.drive`), the shot's own frames whose mouth has that opening and whose head pose is closest are
chosen along a smooth path (:mod:`.donors`), and their mouths are moved onto the target frames
(:mod:`.composite`). The LSD then edits that clip (reference and inversion both from it), so a real
network refines a mouth that already says the new line rather than the old one. :mod:`.sync` measures
whether the lips follow the line: the figures every QC, check and eval report.
"""

from edidub_engine.mouth.composite import MouthTransplant, transplant
from edidub_engine.mouth.donors import Donor, DonorBank, DonorPlan
from edidub_engine.mouth.drive import MouthDriveConfig, loudness_db, target_openings
from edidub_engine.mouth.shape import OUTER_LIPS, mouth_opening, pose_signature
from edidub_engine.mouth.sync import LipSyncFigures, lip_sync_figures, lip_sync_reasons

__all__ = [
    "OUTER_LIPS",
    "Donor",
    "DonorBank",
    "DonorPlan",
    "LipSyncFigures",
    "MouthDriveConfig",
    "MouthTransplant",
    "lip_sync_figures",
    "lip_sync_reasons",
    "loudness_db",
    "mouth_opening",
    "pose_signature",
    "target_openings",
    "transplant",
]
