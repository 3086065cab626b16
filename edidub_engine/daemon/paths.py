"""Where a request may read and write: only under the daemon's media roots.

Every path in a request is resolved to its real path (``..`` collapsed,
every symlink followed) *before* it is compared with the real paths of the
roots, so neither ``root/../etc`` nor a symlink inside a root pointing out of
it gets through (FORBIDDEN).  The request handed to the runner carries the
resolved paths, so the runner opens exactly what was checked.  Paths must be
absolute: the daemon's working folder means nothing to a plugin.

The output name is settled here too (``<source stem>_<shot_id>_dub`` by
default, the extension following the codec), so the daemon can refuse an
output that already exists at submit time, refuse two queued jobs writing
the same file, and clean a crashed attempt's hidden temporary file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edidub_engine.daemon.protocol import ForbiddenError
from edidub_engine.errors import EdidubError, InvalidArgumentError, MediaNotFoundError, OutputExistsError
from edidub_engine.shot import OUTPUT_EXTENSIONS, ShotRequest

__all__ = ["CODEC_EXTENSIONS", "MediaRoots", "PreparedShot", "partial_files", "remove_partial"]

# Same as edidub_engine.media.Codec(...).extension (a test checks); not imported, to keep PyAV out of the socket loop.
CODEC_EXTENSIONS = OUTPUT_EXTENSIONS  # one table for the whole engine
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PreparedShot:
    request: ShotRequest  # paths resolved, output dir and name filled in
    output_path: Path


class MediaRoots:
    """The folders requests may touch, as real paths."""

    def __init__(self, roots: Sequence[str | os.PathLike], *, output_root: str | os.PathLike | None = None):
        resolved = []
        for root in roots:
            real = Path(os.path.realpath(Path(root).expanduser()))
            if not real.is_dir():
                raise InvalidArgumentError(f"media root {root} is not a folder", hint="pass existing folders to --media-root")
            resolved.append(real)
        if not resolved:
            raise InvalidArgumentError("the daemon needs at least one --media-root", hint="requests may only read and write under media roots")
        self.roots: tuple[Path, ...] = tuple(resolved)
        self.output_root: Path | None = None
        if output_root is not None:
            self.output_root = self.resolve(str(output_root), what="--output-root")
            if not self.output_root.is_dir():
                raise InvalidArgumentError(f"--output-root {output_root} is not a folder")

    def resolve(self, path: str, *, what: str) -> Path:
        """The real path of an existing ``path`` under a root; :class:`ForbiddenError` outside, NOT_FOUND if missing."""
        if not isinstance(path, str) or not path or "\x00" in path or len(path) > 4096:
            raise InvalidArgumentError(f"{what}: not a usable path")
        if not os.path.isabs(path):
            raise InvalidArgumentError(f"{what}: {path!r} is not an absolute path", hint="the daemon has no working folder of yours; send absolute paths")
        # First as far as the path exists (so nothing outside the roots is probed any further), then strictly:
        # realpath alone is lexical past a missing component ("root/missing/.." would become "root").
        for strict in (False, True):
            try:
                real = Path(os.path.realpath(path, strict=strict))
            except FileNotFoundError:
                raise MediaNotFoundError(f"{what}: {path} does not exist", hint="check the path", details={"path": path}) from None
            except (OSError, ValueError, RuntimeError):
                raise InvalidArgumentError(f"{what}: {path!r} cannot be resolved") from None
            if not any(real == root or real.is_relative_to(root) for root in self.roots):
                raise ForbiddenError(
                    f"{what}: {path} is outside the daemon's media roots",
                    hint="put the media under one of the roots the daemon was started with (--media-root)",
                    details={"path": path, "media_roots": [str(r) for r in self.roots]},
                )
        return real

    def _existing_file(self, path: str, what: str, *, role: str) -> Path:
        """``role`` ("source", "dub_audio") goes into the error's details: a timeline skips that one clip."""
        try:
            return self.readable(path, what)
        except EdidubError as err:
            err.details.setdefault("path", path)
            err.details["role"] = role
            raise

    def readable(self, path: str, what: str) -> Path:
        """The real path of a readable file under a root; NOT_FOUND, FORBIDDEN or INVALID_ARG otherwise."""
        plate = self._plate(path, what)
        if plate is not None:
            return plate
        real = self.resolve(path, what=what)
        try:
            ok = real.is_file() and os.access(real, os.R_OK)
        except OSError:
            ok = False
        if not ok:
            raise MediaNotFoundError(f"{what}: {path} is not a readable file", hint="check the path and that its drive is mounted", details={"path": path})
        return real

    def _plate(self, path: str, what: str) -> Path | None:
        """An EXR/DPX image sequence (a pattern, or a folder holding one) under a root: its pattern, frames readable."""
        named = Path(path)
        is_pattern = named.suffix.lower() in (".exr", ".dpx") and ("%" in named.name or "#" in named.name)
        try:
            folder_named = not is_pattern and named.is_absolute() and named.is_dir()
        except OSError:  # a name too long, a path that cannot be asked: not a plate; resolve() says what is wrong
            return None
        if not is_pattern and not folder_named:
            return None
        folder = self.resolve(str(named.parent if is_pattern else named), what=what)
        from edidub_engine.media.sequence import find_sequence

        files = find_sequence(folder / named.name if is_pattern else folder)
        if files is None:
            return None
        if not all(os.access(files.file(i), os.R_OK) for i in (0, files.count - 1)):
            raise MediaNotFoundError(f"{what}: the frames of {path} cannot be read", hint="check the files' permissions", details={"path": path})
        return Path(files.pattern)

    def prepare(self, shot: ShotRequest) -> PreparedShot:
        """Check every path of ``shot`` and return it with resolved paths and its final output path."""
        where = f"shot {shot.shot_id!r}"
        source = self._existing_file(shot.source.path, f"{where} source", role="source")
        audio = tuple(
            dataclasses.replace(seg, path=str(self._existing_file(seg.path, f"{where} dub_audio[{i}]", role="dub_audio")))
            for i, seg in enumerate(shot.dub_audio)
        )
        lines = tuple(  # each face's own line (a two-shot): the same rules as dub_audio
            dataclasses.replace(line, dub_audio=tuple(
                dataclasses.replace(seg, path=str(self._existing_file(seg.path, f"{where} lines[{k}] dub_audio[{i}]", role="dub_audio")))
                for i, seg in enumerate(line.dub_audio)))
            for k, line in enumerate(shot.lines)
        )
        if shot.output.dir is None:
            if self.output_root is None:
                raise InvalidArgumentError(f"{where}: output.dir is required (this daemon has no --output-root)")
            out_dir = self.output_root
        else:
            out_dir = self.resolve(shot.output.dir, what=f"{where} output.dir")
        if out_dir.exists() and not out_dir.is_dir():
            raise InvalidArgumentError(f"{where}: output.dir {shot.output.dir} is a file, not a folder",
                                       hint="name the folder the render goes into (output.name names the file)")
        if not out_dir.is_dir():
            raise InvalidArgumentError(f"{where}: output folder {shot.output.dir} does not exist", hint="create it first; the daemon does not create folders")
        stem = re.sub(r"[._-]*(%0?\d*d|#+)$", "", source.stem) or source.parent.name  # an image sequence: its name
        name = shot.output.name or _UNSAFE_NAME_CHARS.sub("_", f"{stem}_{shot.shot_id}_dub")
        if "/" in name or "\\" in name or "\x00" in name or name.startswith(".") or len(name) > 200:
            raise InvalidArgumentError(
                f"{where}: output.name {name[:80]!r} must be a plain file name (no folders, not hidden, at most 200 characters)"
            )
        extension = CODEC_EXTENSIONS[shot.output.codec]
        if extension and name.lower().endswith(extension):
            name = name[: -len(extension)]
        final = out_dir / f"{name}{extension}"
        if os.path.lexists(final):
            raise OutputExistsError(
                f"{where}: output {final} already exists; EdiDub never overwrites a file",
                hint="choose another output.name, or delete the existing file yourself",
                details={"path": str(final)},
            )
        request = dataclasses.replace(
            shot,
            source=dataclasses.replace(shot.source, path=str(source)),
            dub_audio=audio,
            lines=lines,
            output=dataclasses.replace(shot.output, dir=str(out_dir), name=name),
        )
        return PreparedShot(request, final)


def partial_files(final_path: Path) -> list[Path]:
    """The hidden temporary files an interrupted writer of ``final_path`` may have left (see media.atomic)."""
    folder = final_path.parent
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f".{glob_escape(final_path.stem)}.partial-*{glob_escape(final_path.suffix)}"))


def remove_partial(partial: Path) -> None:
    """Remove what :func:`partial_files` found: a file, or an image sequence's hidden folder of frames."""
    if partial.is_dir() and not partial.is_symlink():
        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial.unlink(missing_ok=True)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
