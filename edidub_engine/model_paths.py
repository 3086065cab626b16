"""Where models live on disk: one resolver for HuBERT, codebooks, LSD and SRD.

Order: an explicit path the user gave, then ``$EDIDUB_MODELS/<name>``, then the
user data folder (``$XDG_DATA_HOME/edidub/models/<name>``, else
``~/.local/share/edidub/models/<name>``). Never the working directory (a model
that changes with ``cd`` is a model nobody can reproduce) and never the network.

An explicit path that does not exist is an error of its own: the user asked
for that one, so silently using another model found elsewhere would surprise.
A relative ``$EDIDUB_MODELS`` is ignored (it would mean the working directory)
and the error says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from edidub_engine.errors import ModelMissingError

__all__ = ["MODELS_ENV", "model_search_paths", "resolve_model", "user_models_dir"]

MODELS_ENV = "EDIDUB_MODELS"


def user_models_dir() -> Path:
    """``$XDG_DATA_HOME/edidub/models``, or ``~/.local/share/edidub/models`` when XDG_DATA_HOME is unset or relative."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "edidub" / "models"


def model_search_paths(name: str) -> tuple[list[Path], list[str]]:
    """The implicit places for model ``name``, in order, and notes on places skipped."""
    paths: list[Path] = []
    notes: list[str] = []
    env = os.environ.get(MODELS_ENV, "")
    if env:
        env_path = Path(env).expanduser()
        if env_path.is_absolute():
            paths.append(env_path / name)
        else:
            notes.append(f"${MODELS_ENV}={env!r} was ignored: it is not an absolute path")
    paths.append(user_models_dir() / name)
    return paths, notes


def _has_config(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def resolve_model(
    name: str,
    *,
    explicit: str | os.PathLike | None = None,
    what: str = "model",
    hint: str = "",
    is_valid: Callable[[Path], bool] = _has_config,
) -> Path:
    """The path of model ``name`` (a folder, or a file when ``is_valid`` says so).

    ``is_valid`` decides what counts as present (default: a folder with a
    ``config.json``, the transformers/diffusers layout). Raises
    :class:`ModelMissingError` naming every place looked in and ``hint``.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if is_valid(path):
            return path
        state = "does not exist" if not path.exists() else "is not a usable " + what
        raise ModelMissingError(
            f"{what} {path} {state}",
            hint=hint or f"check the path; {what} folders hold config.json and the weights",
            details={"name": name, "searched": [str(path)]},
        )
    paths, notes = model_search_paths(name)
    for path in paths:
        if is_valid(path):
            return path
    searched = ", ".join(str(p) for p in paths)
    extra = f" ({'; '.join(notes)})" if notes else ""
    raise ModelMissingError(
        f"{what} '{name}' not found; looked in {searched}{extra}",
        hint=hint or f"put it at ${MODELS_ENV}/{name} or {user_models_dir() / name}, or pass its path explicitly",
        details={"name": name, "searched": [str(p) for p in paths], "notes": notes},
    )
