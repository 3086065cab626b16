"""``edidub review``: a local page where a supervisor rates, approves or rejects dubbed shots."""

from .export import export_csv, export_otio, load_batch
from .server import ReviewServer
from .store import ReviewStore

__all__ = ["ReviewServer", "ReviewStore", "export_csv", "export_otio", "load_batch"]
