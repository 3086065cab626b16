"""The safety contract: outputs never overwrite, and never appear half-written."""

import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError, OutputExistsError
from edidub_engine.media import AtomicOutput, ClipWriter, Codec, probe_video

FRAME = np.full((32, 48, 3), 128, np.uint8)


def test_existing_output_is_refused_and_untouched(tmp_path):
    out = tmp_path / "shot.mov"
    out.write_bytes(b"editor's precious render")
    with pytest.raises(OutputExistsError, match="shot.mov already exists") as caught:
        ClipWriter(out, width=48, height=32, rate=25)
    assert "delete" in caught.value.hint
    assert out.read_bytes() == b"editor's precious render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.mov"]


def test_output_appearing_during_render_is_not_clobbered(tmp_path):
    out = tmp_path / "shot.mkv"
    writer = ClipWriter(out, width=48, height=32, rate=25, codec=Codec.FFV1)
    writer.write(FRAME)
    out.write_bytes(b"someone else's file")
    with pytest.raises(OutputExistsError):
        writer.close()
    assert out.read_bytes() == b"someone else's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.mkv"]


def test_exception_mid_write_leaves_nothing(tmp_path):
    out = tmp_path / "shot.mov"
    with pytest.raises(RuntimeError):
        with ClipWriter(out, width=48, height=32, rate=25, audio=np.zeros(16000, np.float32)) as writer:
            writer.write(FRAME)
            temp = writer._atomic.temp_path
            assert temp.exists() and temp.name.startswith(".shot.partial-") and temp.suffix == ".mov"
            assert not out.exists()  # nothing under the final name while rendering
            raise RuntimeError("the GPU fell over")
    assert list(tmp_path.iterdir()) == []


def test_abandoned_writer_cleans_up(tmp_path):
    writer = ClipWriter(tmp_path / "shot.mkv", width=48, height=32, rate=25, codec=Codec.FFV1)
    writer.write(FRAME)
    del writer
    assert list(tmp_path.iterdir()) == []


def test_published_file_is_complete(tmp_path):
    out = tmp_path / "shot.mkv"
    with ClipWriter(out, width=48, height=32, rate=25, codec=Codec.FFV1) as writer:
        for _ in range(3):
            writer.write(FRAME)
    assert probe_video(out).frame_count == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.mkv"]


def test_missing_output_folder_is_an_argument_error(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        AtomicOutput(tmp_path / "no" / "such" / "shot.mov")
    assert not (tmp_path / "no").exists()


def test_empty_clip_is_not_published(tmp_path):
    writer = ClipWriter(tmp_path / "shot.mov", width=48, height=32, rate=25)
    with pytest.raises(InvalidArgumentError, match="no frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_published_file_is_readable_as_the_umask_allows(tmp_path, umask):
    """Not mkstemp's 0600: the NLE or a render user under another account reads the render when the umask lets it."""
    import os
    import stat

    before = os.umask(umask)
    try:
        out = tmp_path / f"shot-{umask:o}.mkv"
        with ClipWriter(out, width=48, height=32, rate=25, codec=Codec.FFV1) as writer:
            writer.write(FRAME)
    finally:
        os.umask(before)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
