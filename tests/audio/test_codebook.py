"""Codebook: fit on real speech, safetensors round trip, refusals; `edidub codebook fit` end to end."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
from safetensors import safe_open

from edidub_engine.audio import Codebook, MelFrontend, MelFrontendConfig, UnitEncoder, fit_codebook
from edidub_engine.audio.commands import add_codebook_parser
from edidub_engine.errors import InvalidArgumentError, ModelMissingError, OutputExistsError
from edidub_engine.media import load_audio


def test_round_trip_gives_identical_assignments(mel_codebook, dub_files, tmp_path):
    path = mel_codebook.save(tmp_path / "cb.safetensors")
    loaded = Codebook.load(path)
    feats = MelFrontend().features(load_audio(dub_files[0]))
    assert np.array_equal(loaded.centres, mel_codebook.centres)
    assert np.array_equal(loaded.assign(feats), mel_codebook.assign(feats))
    assert loaded.frontend == "mel" and loaded.frontend_settings == MelFrontend().settings()
    assert loaded.seed == 0 and loaded.clusters == 32 and loaded.null_unit == 32 and loaded.vocabulary_size == 33
    assert loaded.fitted_on["files"] == len(dub_files)
    assert loaded.fitted_on["vectors_used"] == loaded.fitted_on["vectors_seen"] <= 3000  # about 50 s of speech
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    with safe_open(str(path), framework="numpy") as fh:  # plain safetensors any tool can read
        meta = fh.metadata()
    assert meta["format"] == "edidub-codebook/1" and json.loads(meta["frontend_settings"])["n_mels"] == 80


def test_assignment_is_the_nearest_centre(mel_codebook, dub_files):
    feats = MelFrontend().features(load_audio(dub_files[1]))[:500]
    brute = np.argmin(((feats[:, None, :] - mel_codebook.centres[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(mel_codebook.assign(feats), brute)
    assert mel_codebook.assign(feats).max() < mel_codebook.null_unit  # no centre ever yields the null unit


def test_same_seed_same_codebook(dub_files):
    a = fit_codebook(MelFrontend(), dub_files[:2], clusters=8, max_vectors=600, seed=3)
    b = fit_codebook(MelFrontend(), dub_files[:2], clusters=8, max_vectors=600, seed=3)
    assert np.array_equal(a.centres, b.centres)
    assert a.fitted_on["vectors_used"] == 600 < a.fitted_on["vectors_seen"]


def test_never_overwrites_and_rejects_foreign_files(mel_codebook, tmp_path):
    path = mel_codebook.save(tmp_path / "cb.safetensors")
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        mel_codebook.save(path)
    assert path.read_bytes() == before
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a safetensors file")
    with pytest.raises(InvalidArgumentError, match="not an EdiDub codebook"):
        Codebook.load(bogus)
    with pytest.raises(ModelMissingError, match="codebook fit"):
        Codebook.load(tmp_path / "absent.safetensors")


def test_other_mel_settings_are_refused(mel_codebook):
    with pytest.raises(InvalidArgumentError, match="n_mels"):
        UnitEncoder(MelFrontend(MelFrontendConfig(n_mels=40)), mel_codebook)


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="edidub")
    add_codebook_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def small_speech_dir(tmp_path, dub_files):
    folder = tmp_path / "speech"
    (folder / "nested").mkdir(parents=True)
    os.symlink(dub_files[0], folder / dub_files[0].name)
    os.symlink(dub_files[1], folder / "nested" / dub_files[1].name)
    (folder / "notes.txt").write_text("not audio")
    return folder


def test_cli_fit_end_to_end(small_speech_dir, tmp_path, capsys):
    out = tmp_path / "cb.safetensors"
    assert _cli("codebook", "fit", str(small_speech_dir), "--units", "mel", "--clusters", "8", "--max-vectors", "800", "-o", str(out)) == 0
    codebook = Codebook.load(out)
    assert codebook.clusters == 8 and codebook.frontend == "mel" and codebook.fitted_on["files"] == 2
    assert codebook.fitted_on["source"] == str(small_speech_dir.resolve())
    assert "8 clusters" in capsys.readouterr().out
    with pytest.raises(OutputExistsError):
        _cli("codebook", "fit", str(small_speech_dir), "--units", "mel", "--clusters", "8", "-o", str(out))


def test_cli_fit_with_hubert_folder(small_speech_dir, tiny_hubert_dir, tmp_path):
    out = tmp_path / "cb.safetensors"
    argv = ["codebook", "fit", str(small_speech_dir), "--hubert", str(tiny_hubert_dir), "--layer", "1"]
    assert _cli(*argv, "--clusters", "4", "--max-vectors", "500", "--seed", "1", "-q", "-o", str(out)) == 0
    codebook = Codebook.load(out)
    assert codebook.frontend == "hubert" and codebook.frontend_settings["layer"] == 1 and codebook.seed == 1


def test_cli_fit_refusals(small_speech_dir, tmp_path, isolated_models):
    out = tmp_path / "cb.safetensors"
    with pytest.raises(ModelMissingError) as err:  # the default frontend is HuBERT; none installed here
        _cli("codebook", "fit", str(small_speech_dir), "-o", str(out))
    assert str(isolated_models / "hubert-large-ll60k") in err.value.message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgumentError, match="no audio files"):
        _cli("codebook", "fit", str(empty), "--units", "mel", "-o", str(out))
    with pytest.raises(InvalidArgumentError, match="--hubert and --layer"):
        _cli("codebook", "fit", str(small_speech_dir), "--units", "mel", "--layer", "3", "-o", str(out))
    with pytest.raises(InvalidArgumentError, match="clusters"):
        _cli("codebook", "fit", str(small_speech_dir), "--units", "mel", "--clusters", "1000000", "-o", str(out))
    assert not out.exists()


def test_help_says_the_paper_fits_one_speaker():
    parser = argparse.ArgumentParser(prog="edidub")
    sub = parser.add_subparsers(dest="command")
    add_codebook_parser(sub)
    fit_help = sub.choices["codebook"]._subparsers._group_actions[0].choices["fit"].format_help()
    assert "LJSpeech" in fit_help and "single speaker" in fit_help and "--units mel" in fit_help


def test_long_audio_is_framed_in_blocks_with_the_same_features_and_units(mel_codebook, dub_files):
    """A ten-minute dub line is featurised 30 s at a time (bounded memory); blocks must not show."""
    speech = np.concatenate([load_audio(path, sample_rate_hz=16000) for path in dub_files] * 4)
    blocked, whole = MelFrontend(), MelFrontend()
    blocked.block_frames, whole.block_frames = 97, 10**9  # many odd-sized blocks against one
    a, b = blocked.features(speech), whole.features(speech)
    assert a.shape == b.shape and len(a) > 5 * 97
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    assert np.array_equal(mel_codebook.assign(a), mel_codebook.assign(b))
