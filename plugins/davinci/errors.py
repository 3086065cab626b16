"""The one error the Resolve scripts show the editor.

Its own module because every part of the bridge raises it (reading, placing, the flows) and
:mod:`.resolve_bridge` imports those parts: defined there, it would make them import back.
"""

from __future__ import annotations

__all__ = ["ResolveScriptError"]


class ResolveScriptError(Exception):
    """A message for the editor (what happened, what to do); the scripts show it and stop."""

    def __init__(self, message: str, hint: str | None = None, code: str = "RESOLVE"):
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code

    def text(self) -> str:
        return self.message + (f"\n\nWhat to do: {self.hint}" if self.hint else "")
