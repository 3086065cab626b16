"""DaVinci Resolve integration: the "Dub Shot" / "Dub Timeline" scripts and their installer.

* ``scripts/`` — the two menu scripts, copied by ``edidub install resolve``.
* :mod:`.resolve_bridge` — what they do (read the shot, submit, progress, place the result).
* :mod:`.install` — ``edidub install resolve [--user] [--uninstall]``.

See ``README.md`` in this folder.  Importing this package imports nothing.
"""
