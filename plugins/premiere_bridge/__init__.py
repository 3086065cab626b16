"""EdiDub for Premiere Pro: a local WebSocket bridge (``edidub bridge premiere``) and the panel.

* :mod:`.server` — the bridge (asyncio + ``websockets``) between the panel and the daemon.
* :mod:`.convert` — the panel's tick times → OTIO → :class:`~edidub_engine.shot.ShotRequest`.
* :mod:`.timing` — ticks (254016000000 per second) and timebases → frames and rational rates.
* :mod:`.token` — the per-user token file the panel's first message must quote.
* ``panel/`` — the UXP plugin (``manifest.json``) with a CEP fallback (``CSXS/manifest.xml``).
"""

from pathlib import Path

PANEL_DIR = Path(__file__).resolve().parent / "panel"

__all__ = ["PANEL_DIR"]
