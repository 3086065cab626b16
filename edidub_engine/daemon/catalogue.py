"""What ``edidub serve`` serves, read from disk when it starts: every model bundle, before any is loaded.

A worker loads its default bundle in its own thread (seconds on a CPU, a minute on a
GPU that compiles).  Until then the daemon must still answer ``models`` with what it
serves and refuse at submit a shot that names a bundle it does not have — a daemon
just started listed nothing and accepted any name, which the Premiere panel and
``edidub batch --adapt`` had to wait out — and a missing default bundle must stop
``edidub serve`` with its reason instead of leaving a worker that fails every job.

It looks where the engine's runner (``edidub_engine.render.runner_for_device``)
looks — ``$EDIDUB_MODEL_DIRS`` (``--models``), the adapted-bundle folder
(``$EDIDUB_ADAPTED_DIR``), then ``models.bundle.find_bundles``' own places — and
describes each bundle as that runner's ``describe_models`` does, less the hash of
the weights, which is known once they are loaded.  ``tests/daemon/test_real_models.py``
checks that the two lists agree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edidub_engine.errors import ModelMissingError

__all__ = ["served_bundles"]


def served_bundles() -> list[dict[str, Any]]:
    """The bundles the engine's runner will serve, default first; :class:`ModelMissingError` when the default is absent."""
    from edidub_engine.models.bundle import DEFAULT_BUNDLE, find_bundles, read_bundle

    folders = [f for f in os.environ.get("EDIDUB_MODEL_DIRS", "").split(os.pathsep) if f]
    adapted = os.environ.get("EDIDUB_ADAPTED_DIR")
    if adapted and Path(adapted).is_dir():
        folders.append(adapted)
    bundles = find_bundles(folders)
    default = os.environ.get("EDIDUB_DEFAULT_MODEL") or DEFAULT_BUNDLE
    if default not in bundles:
        raise ModelMissingError(f"default model bundle {default!r} is not among the bundles found ({', '.join(sorted(bundles)) or 'none'})",
                                hint="pass --models DIR with that bundle, or --default-model with one of those names",
                                details={"name": default, "served": sorted(bundles)})
    described = []
    for name in sorted(bundles, key=lambda n: (n != default, n)):
        info = read_bundle(bundles[name])
        described.append({"name": name, "present": True, "path": str(bundles[name]), "version": info.version, "sha256": None,
                          "details": {"default": name == default, "frontend": info.frontend, "description": info.card.get("description", ""),
                                      "check": info.card.get("check", {}).get("end_to_end")}})
    return described
