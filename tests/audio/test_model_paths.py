"""The model resolver: explicit path, then $EDIDUB_MODELS, then the user data folder; never the working directory."""

from __future__ import annotations

import pytest

from edidub_engine.errors import ModelMissingError
from edidub_engine.model_paths import resolve_model, user_models_dir


def _model(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_order_is_explicit_then_env_then_user_folder(tmp_path, monkeypatch, isolated_models):
    user = _model(isolated_models / "m")
    assert user_models_dir() == isolated_models
    assert resolve_model("m") == user
    env = _model(tmp_path / "env" / "m")
    monkeypatch.setenv("EDIDUB_MODELS", str(tmp_path / "env"))
    assert resolve_model("m") == env
    explicit = _model(tmp_path / "mine")
    assert resolve_model("m", explicit=explicit) == explicit


def test_user_folder_defaults_to_local_share(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_models_dir() == tmp_path / ".local" / "share" / "edidub" / "models"


def test_missing_names_every_place_and_never_uses_the_working_directory(tmp_path, monkeypatch, isolated_models):
    _model(tmp_path / "m")  # a model in the working directory must not be found
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDIDUB_MODELS", "relative/models")
    with pytest.raises(ModelMissingError) as err:
        resolve_model("m", what="test model", hint="make it")
    assert err.value.code == "MODEL_MISSING"
    assert str(isolated_models / "m") in err.value.message
    assert "not an absolute path" in err.value.message
    assert err.value.hint == "make it"


def test_missing_explicit_path_is_not_replaced_by_another_model(tmp_path, monkeypatch, isolated_models):
    _model(isolated_models / "m")
    with pytest.raises(ModelMissingError, match=str(tmp_path / "nope")):
        resolve_model("m", explicit=tmp_path / "nope")
