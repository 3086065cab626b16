"""The one exception tree of EdiDub Engine.

Every error a user can meet is an :class:`EdidubError` with a stable ``code``
(the same string travels on the wire protocol), a ``message`` for a person that
names the shot/file involved, and a ``hint`` that says what to do about it.
The CLI prints ``message`` and ``hint`` and exits non-zero; it never shows a
traceback for these.
"""

from __future__ import annotations

from typing import Any


class EdidubError(Exception):
    """Base of every error the engine raises on purpose."""

    code: str = "INTERNAL"
    exit_status: int = 1

    def __init__(self, message: str, *, hint: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = dict(details or {})

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} — {self.hint}"

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``{code, message, details}`` (hint folded into details)."""
        details = dict(self.details)
        if self.hint:
            details.setdefault("hint", self.hint)
        return {"code": self.code, "message": self.message, "details": details}


class InvalidArgumentError(EdidubError):
    """A request or command-line value that cannot be honoured as given."""

    code = "INVALID_ARG"
    exit_status = 2


class RangeOutsideMediaError(InvalidArgumentError):
    """A frame or time range that is not inside the media."""


class MediaNotFoundError(EdidubError):
    """A media file that does not exist or cannot be opened for reading."""

    code = "NOT_FOUND"
    exit_status = 3


class MediaDecodeError(EdidubError):
    """A file that exists but is not decodable media of the kind needed."""

    code = "BAD_MEDIA"
    exit_status = 3


class MediaEncodeError(EdidubError):
    """Encoding or writing an output failed; no file is left under the final name."""

    code = "ENCODE_FAILED"
    exit_status = 4


class OutputExistsError(EdidubError):
    """The output path already holds a file; the engine never overwrites media."""

    code = "OUTPUT_EXISTS"
    exit_status = 5


class NoFaceError(EdidubError):
    """No usable face in a whole shot (single frames without a face are passed through, not errors)."""

    code = "NO_FACE"
    exit_status = 6


class ModelMissingError(EdidubError):
    """A model file or folder the engine needs is not on disk (nothing is ever downloaded)."""

    code = "MODEL_MISSING"
    exit_status = 7


class CancelledError(EdidubError):
    """A job stopped because somebody asked it to."""

    code = "CANCELLED"
    exit_status = 130
