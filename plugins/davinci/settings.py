"""What the editor chooses once per project, remembered between runs.

A JSON file keyed by project name in the user config folder (:func:`settings_path`):
``$XDG_CONFIG_HOME/edidub/resolve-projects.json`` (Linux, default ``~/.config``),
``~/Library/Application Support/EdiDub/resolve-projects.json`` (macOS),
``%APPDATA%\\EdiDub\\resolve-projects.json`` (Windows).  Resolve's own project settings
accept only Resolve's keys, so they cannot hold ours.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["QUALITY_PRESETS", "ProjectSettings", "load_settings", "save_settings", "settings_path"]

QUALITY_PRESETS: dict[str, dict[str, Any]] = {
    "draft": {"steps": 10, "inversion_steps": 10},  # a quick look at timing
    "standard": {},  # the model bundle's own defaults
    "final": {"steps": 50, "inversion_steps": 50},  # the paper's settings
}


@dataclass
class ProjectSettings:
    """What the editor chooses once per project.

    ``dub_audio_track``: 1-based audio track holding the dub speech (None: A2 when the timeline
    has two or more audio tracks, else A1).  ``picture_track``: 1-based video track of the
    picture (None: the track of the selected clip).  ``output_folder``: where renders go (""
    = an ``EdiDub`` folder beside the source media, created when missing; it must lie under one
    of the daemon's ``--media-root`` folders).  ``quality``: a key of :data:`QUALITY_PRESETS`.
    ``daemon``: request endpoint ("" = ``$EDIDUB_DAEMON``, else the daemon's connection file, else tcp://127.0.0.1:47610).

    ``model``: the model bundle Dub Shot and Dub Timeline dub with (``options.model``; "" = the daemon's default).
    Adapt to Actor sets it to the bundle it made, so the project's next dubs use the actor's model.
    ``actor``: the name Adapt to Actor gives its bundle ("" = the first word the selected clips' names share,
    ``ANNA`` for ``ANNA_sc12_t3``; asked, with that proposal, where Resolve shows windows).
    ``adapt_minutes`` / ``adapt_steps``: its budget (either or both; the daemon stops at the first reached, and
    earlier when validation stops improving).  ``adapt_validate_every``: steps between validations.
    ``adapt_base``: the bundle it starts from ("" = the daemon's default).
    ``strength``: how far each dubbed mouth may move from the original's toward the one the dub line asks for
    (``options.strength``, over 0 to 1; 1, the default, follows the line fully).
    ``face_tracks``: two-shots, ``{"0": 2, "1": 3}``: each face (counted left to right from 0, or ``"largest"``)
    and the 1-based audio track holding its dub lines; every face listed gets its own line in one render, every
    other face keeps its pixels. Empty: one face, the dub track.
    """

    dub_audio_track: int | None = None
    picture_track: int | None = None
    output_folder: str = ""
    quality: str = "standard"
    daemon: str = ""
    daemon_timeout_s: float = 5.0
    language: str = "DUB"  # the dub's language code, for the batch's dubbed-timeline track name
    model: str = ""
    actor: str = ""
    adapt_minutes: float | None = 20.0
    adapt_steps: int | None = None
    adapt_validate_every: int = 100
    adapt_base: str = ""
    strength: float = 1.0
    face_tracks: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> "ProjectSettings":
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in (data or {}).items() if k in known} if isinstance(data, dict) else {}
        out = cls(**kept)
        if out.quality not in QUALITY_PRESETS:
            out.quality = "standard"
        if isinstance(out.strength, bool) or not isinstance(out.strength, (int, float)) or not 0 < out.strength <= 1:
            out.strength = 1.0  # a hand-edited value out of range: the default, as for quality
        return out


def settings_path() -> str:
    """The per-user JSON file that remembers each project's settings."""
    if sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support", "EdiDub")
    elif os.name == "nt":
        base = os.path.join(os.environ.get("APPDATA") or os.path.expanduser("~"), "EdiDub")
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        base = os.path.join(xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".config"), "edidub")
    return os.path.join(base, "resolve-projects.json")


def _read_all() -> dict[str, Any]:
    try:
        with open(settings_path(), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def load_settings(project_name: str) -> ProjectSettings:
    return ProjectSettings.from_dict(_read_all().get(project_name))


def save_settings(project_name: str, settings: ProjectSettings) -> None:
    data = _read_all()
    data[project_name] = asdict(settings)
    path = settings_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)
