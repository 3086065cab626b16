"""What is in a shot before anyone dubs it: faces, pose, hands over the face, cuts."""

from .cuts import CutDetector
from .report import ShotAnalysis, analyze_clip

__all__ = ["CutDetector", "ShotAnalysis", "analyze_clip"]
