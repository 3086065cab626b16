"""DaVinci Resolve integration: the "Dub Shot" / "Dub Timeline" / "Adapt to Actor" scripts and their installer.

* ``scripts/`` — the three menu scripts, copied by ``edidub install resolve``.
* :mod:`.resolve_bridge` — what they do: the Dub Shot / Dub Timeline flows (submit, wait, report) and the
  entry every script calls, on :mod:`.reading` (the shot from Resolve), :mod:`.placement` (the result back on
  the timeline), :mod:`.jobs` (the daemon and its jobs), :mod:`.progress`, :mod:`.settings` (per project) and
  :mod:`.errors`.
* :mod:`.adapt` — Adapt to Actor: the selected takes → an ``adapt`` job → the project's ``model``.
* :mod:`.install` — ``edidub install resolve [--user] [--uninstall]``.

See ``README.md`` in this folder.  Importing this package imports nothing.
"""
