"""DaVinci Resolve integration: the "Dub Shot" / "Dub Timeline" scripts and their installer.

* ``scripts/`` — the two menu scripts, copied by ``edidub install resolve``.
* :mod:`.resolve_bridge` — what they do: the Dub Shot / Dub Timeline flows (submit, wait, report),
  on :mod:`.reading` (the shot from Resolve), :mod:`.placement` (the result back on the timeline),
  :mod:`.progress`, :mod:`.settings` (per project) and :mod:`.errors`.
* :mod:`.install` — ``edidub install resolve [--user] [--uninstall]``.

See ``README.md`` in this folder.  Importing this package imports nothing.
"""
