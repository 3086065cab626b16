"""The EdiDub daemon (``edidub serve``): a ZeroMQ ROUTER for requests, a PUB for job events,
a SQLite job store and one worker per device that keeps the models loaded.

Submodules: :mod:`.protocol` (wire v1, light: the client uses it), :mod:`.schema`
(JSON Schemas from the protocol), :mod:`.store`, :mod:`.paths` (media-root checks),
:mod:`.worker`, :mod:`.server`, :mod:`.commands` (``serve`` and ``keys``).
Importing this package imports none of them.
"""
