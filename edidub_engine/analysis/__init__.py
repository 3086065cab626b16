"""What is in a shot before anyone dubs it: faces, pose, hands over the face, cuts, who speaks when."""

from .cuts import CutDetector
from .report import ShotAnalysis, SpeakingFace, analyze_clip
from .speakers import SpeakersConfig, SpeakerTurns, find_speakers

__all__ = ["CutDetector", "ShotAnalysis", "SpeakersConfig", "SpeakerTurns", "SpeakingFace", "analyze_clip", "find_speakers"]
