"""Shared test fixtures: where the project's shared footage lives, and skipping when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FOOTAGE = REPO_ROOT.parent / "shared" / "footage"


@pytest.fixture(autouse=True)
def _own_connection_file(tmp_path, monkeypatch):
    """Each test's daemons (`edidub serve` writes its keys there) and clients meet at a file of its own,
    never at the user's ~/.local/share/edidub/daemon/connection.json."""
    monkeypatch.setenv("EDIDUB_CONNECTION_FILE", str(tmp_path / "edidub-daemon" / "connection.json"))


@pytest.fixture(scope="session")
def footage_path():
    """``footage_path("grid_bbaf2n.mpg")`` → its path under ../shared/footage, or skip the test."""

    def find(name: str) -> Path:
        path = FOOTAGE / name
        if not path.is_file():
            pytest.skip(f"shared footage {path} is absent (tests read it from ../shared/footage)")
        return path

    return find


@pytest.fixture(scope="session")
def starter_bundle(tmp_path_factory):
    """The shipped starter bundle (the real weights a fresh install dubs with), copied, with few
    diffusion steps (and SRD windows without overlap) so the tests that dub through the daemon, the
    plugins and the batch stay fast."""
    import json
    import shutil

    from edidub_engine.models.bundle import DEFAULT_BUNDLE, SHIPPED_DIR

    out = tmp_path_factory.mktemp("bundle") / DEFAULT_BUNDLE
    shutil.copytree(SHIPPED_DIR / DEFAULT_BUNDLE, out)
    meta = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
    meta["defaults"] = {"steps": 3, "inversion_steps": 3, "srd_steps": 2}
    (out / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    # the SRD on windows that do not overlap: each frame restored once (the picture tests use the shipped settings)
    for network, steps in (("lsd", {"steps": 3, "inversion_steps": 3}), ("srd", {"steps": 2, "window_stride": 5})):
        sampling = out / network / "sampling.json"
        if sampling.is_file():  # each network's own settings win over bundle.json's defaults
            values = json.loads(sampling.read_text(encoding="utf-8"))
            sampling.write_text(json.dumps({**values, **steps}, indent=2) + "\n", encoding="utf-8")
    return out
