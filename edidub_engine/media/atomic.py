"""Publish an output file atomically, never overwriting (the safety contract).

An output is written under a hidden temporary name in its target folder
(``.name.partial-XXXX.mov``, same extension so muxers pick the right format)
and appears under its final name only when complete: ``os.link`` publishes
it without clobbering (it fails if the name was taken meanwhile), then the
temporary name is removed. A writer killed mid-way leaves only the hidden
temporary file, never a half-written file under the final name.

The target folder must exist: the engine does not create folders on a
caller's behalf (a typo in a path should fail loudly, not scatter renders).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from edidub_engine.errors import InvalidArgumentError, MediaEncodeError, OutputExistsError

__all__ = ["AtomicOutput", "refuse_existing"]

_LINK_UNSUPPORTED = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def _umask() -> int:
    """The process umask: from /proc on Linux (no window in which other threads see another mask), else set-and-restore."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refuse_existing(path: Path) -> None:
    """Raise OutputExistsError if ``path`` names anything already."""
    if os.path.lexists(path):
        raise OutputExistsError(
            f"output {path} already exists; EdiDub never overwrites a file",
            hint="choose another output name, or delete the existing file yourself",
            details={"path": str(path)},
        )


class AtomicOutput:
    """A hidden temporary file that becomes ``final_path`` on :meth:`publish`."""

    def __init__(self, final_path: str | os.PathLike):
        self.final_path = Path(final_path).expanduser().absolute()
        folder = self.final_path.parent
        if not folder.is_dir():
            raise InvalidArgumentError(
                f"output folder {folder} does not exist (for {self.final_path.name})",
                hint="create the folder first, or choose an existing one",
                details={"path": str(self.final_path)},
            )
        refuse_existing(self.final_path)
        try:
            fd, temp_name = tempfile.mkstemp(prefix=f".{self.final_path.stem}.partial-", suffix=self.final_path.suffix, dir=folder)
        except OSError as exc:
            raise MediaEncodeError(
                f"cannot write in {folder} ({exc.strerror})", hint="check the folder's permissions and free space"
            ) from None
        os.close(fd)
        self.temp_path = Path(temp_name)
        self._done = False

    def publish(self) -> Path:
        """Give the finished temporary file its final name, never replacing another file."""
        if self._done:
            raise MediaEncodeError(f"{self.final_path.name} was already published or discarded")
        self._done = True
        try:
            # mkstemp made it 0600; a render is for the NLE and other users too, as the umask allows
            os.chmod(self.temp_path, 0o666 & ~_umask())
            with open(self.temp_path, "rb") as handle:
                os.fsync(handle.fileno())
            try:
                os.link(self.temp_path, self.final_path)
            except FileExistsError:
                raise OutputExistsError(
                    f"output {self.final_path} appeared while it was being rendered; it was left untouched",
                    hint="choose another output name, or delete the existing file yourself",
                    details={"path": str(self.final_path)},
                ) from None
            except OSError as exc:
                if exc.errno not in _LINK_UNSUPPORTED:
                    raise
                self._publish_without_links()
        except OSError as exc:
            self._remove_temp()
            raise MediaEncodeError(
                f"cannot publish {self.final_path} ({exc.strerror or exc})", hint="check the folder's permissions and free space"
            ) from None
        except BaseException:
            self._remove_temp()
            raise
        self._remove_temp()
        return self.final_path

    def _publish_without_links(self) -> None:
        """For filesystems without hard links: claim the name exclusively, then rename over our claim."""
        try:
            fd = os.open(self.final_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise OutputExistsError(
                f"output {self.final_path} appeared while it was being rendered; it was left untouched",
                hint="choose another output name, or delete the existing file yourself",
            ) from None
        os.close(fd)
        os.replace(self.temp_path, self.final_path)

    def discard(self) -> None:
        """Remove the temporary file; the final name is never touched."""
        self._done = True
        self._remove_temp()

    def _remove_temp(self) -> None:
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass
