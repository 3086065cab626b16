"""Issue 20: outside the mouth a dub is its source sample for sample, in the source's own pixel format.

Each test writes its own source from a shared GRID clip — 8-bit H.264, 10-bit ProRes 422 HQ with
detail below the 8-bit step, 10-bit HEVC tagged BT.2020/PQ, 12-bit ProRes 4444 — dubs it with the
starter at few steps to lossless FFV1 (with the patch, whose alpha is the matte), and compares the
decoded planes themselves, not RGB after a conversion.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from edidub_engine.media import iter_pictures, probe_video, read_frames
from edidub_engine.media.native import NativePicture
from edidub_engine.render import LoadedModels, ShotRenderer
from edidub_engine.shot import ShotRequest

FRAMES = 8
PQ_2020 = (9, 9, 16, 1)  # matrix, primaries, transfer, range (FFmpeg codes): BT.2020 non-constant, PQ, limited


@pytest.fixture(scope="module")
def models(starter_bundle):
    return LoadedModels.load(starter_bundle)


@pytest.fixture(scope="module")
def grid(footage_path):
    return read_frames(footage_path("grid_bbaf2n.mpg"), 20, 20 + FRAMES)


def _write_source(path, rgb, *, codec, pix_fmt, options=None, tags=None, fine_detail=False):
    """Encode RGB frames as ``pix_fmt``; ``fine_detail`` adds ±3 codes of luma texture below the 8-bit step."""
    rng = np.random.default_rng(0)
    matrix = "BT2020" if tags and tags[0] == 9 else "ITU601"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = rgb.shape[2], rgb.shape[1], pix_fmt
        if tags:
            ctx = stream.codec_context
            ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = tags
        for k, image in enumerate(rgb):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format=pix_fmt, src_colorspace=matrix, dst_colorspace=matrix, dst_color_range="MPEG")
            if fine_detail:
                luma = frame.planes[0]
                words = np.frombuffer(luma, np.uint16).reshape(luma.height, -1)
                words[:, : luma.width] = np.clip(words[:, : luma.width].astype(int) + rng.integers(-3, 4, (luma.height, luma.width)), 64, 940)
            frame.pts, frame.time_base = k, Fraction(1, 25)
            if tags:
                frame.colorspace, frame.color_range = tags[0], tags[3]
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _planes(path, color, pix_fmt=None):
    """Each picture's planes as int arrays; ``pix_fmt``: first converted to that format (an output stored at
    another depth or subsampling, compared in the source's)."""
    return [[p.array.astype(np.int32) for p in NativePicture(picture if pix_fmt in (None, picture.format.name)
                                                             else picture.reformat(format=pix_fmt), color).planes]
            for _, picture in iter_pictures(path)]


def _tags(path):
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return int(ctx.colorspace), int(ctx.color_primaries), int(ctx.color_trc), int(ctx.color_range)


def _matte_reach(patch_path, dilate_px=4):
    """Per frame, where the edit may reach: the patch's alpha > 0, grown by a few pixels (the alpha is stored
    at 8 bits, and a chroma sample covers its neighbours)."""
    reach = []
    with av.open(str(patch_path)) as container:
        for frame in container.decode(video=0):
            alpha = frame.to_ndarray(format="rgba")[..., 3] > 0
            reach.append(cv2.dilate(alpha.astype(np.uint8), np.ones((2 * dilate_px + 1,) * 2, np.uint8)) > 0)
    return reach


def _dub(models, source, audio, out_dir, codec):
    out_dir.mkdir()
    request = ShotRequest.from_dict({
        "shot_id": "native", "source": {"path": str(source), "start_frame": 0, "end_frame": FRAMES},
        "dub_audio": [{"path": str(audio)}], "output": {"dir": str(out_dir), "codec": codec, "patch": codec in ("ffv1", "prores_hq")},
    })
    return ShotRenderer(models).dub_shot(request)


SOURCES = {
    "8-bit H.264": dict(codec="libx264", pix_fmt="yuv420p", options={"crf": "16"}, suffix=".mp4"),
    "10-bit ProRes 422 HQ": dict(codec="prores_ks", pix_fmt="yuv422p10le", options={"profile": "3"}, fine_detail=True, suffix=".mov"),
    "10-bit HEVC BT.2020 PQ": dict(codec="libx265", pix_fmt="yuv420p10le", options={"x265-params": "log-level=error:lossless=1"},
                                   tags=PQ_2020, fine_detail=True, suffix=".mp4"),
    "12-bit ProRes 4444": dict(codec="prores_ks", pix_fmt="yuv444p10le", options={"profile": "4"}, fine_detail=True, suffix=".mov"),
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_outside_the_matte_the_dub_is_the_source_sample_for_sample(kind, models, grid, footage_path, tmp_path):
    spec = dict(SOURCES[kind])
    source = tmp_path / ("source" + spec.pop("suffix"))
    _write_source(source, grid, **spec)
    info = probe_video(source)
    clip = _dub(models, source, footage_path("dub_fr_french1.wav"), tmp_path / "out", "ffv1")
    out = probe_video(clip.path)
    assert out.pix_fmt == info.pix_fmt, (out.pix_fmt, info.pix_fmt)  # e.g. ProRes 4444 decodes as yuv444p12le: kept
    assert _tags(clip.path)[1:3] == _tags(source)[1:3] and out.color == info.color
    reach = _matte_reach(clip.patch_path)
    edited = 0
    for k, (src, dub) in enumerate(zip(_planes(source, info.color), _planes(clip.path, out.color), strict=True)):
        for index, (a, b) in enumerate(zip(src, dub, strict=True)):
            area = cv2.resize(reach[k].astype(np.uint8), (a.shape[1], a.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
            if a.shape != reach[k].shape:  # a subsampled chroma plane: a sample is reached if any pixel it covers is
                area = cv2.dilate(area.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert np.array_equal(a[~area], b[~area]), f"{kind}: frame {k} plane {index} changed outside the matte"
            edited += int((a[area] != b[area]).sum())
    assert edited > 1000, "the mouth was edited"


@pytest.mark.parametrize("codec,kind", [("prores_hq", "10-bit ProRes 422 HQ"), ("dnxhr_hqx", "10-bit ProRes 422 HQ"),
                                         ("prores_4444xq", "12-bit ProRes 4444")])
def test_a_mezzanine_dub_differs_outside_the_matte_only_by_the_codecs_own_generation_loss(codec, kind, models, grid, footage_path, tmp_path):
    from edidub_engine.media import ClipWriter, Codec

    spec = dict(SOURCES[kind])
    source = tmp_path / ("source" + spec.pop("suffix"))
    _write_source(source, grid, **spec)
    info = probe_video(source)
    clip = _dub(models, source, footage_path("dub_fr_french1.wav"), tmp_path / "out", codec)
    out = probe_video(clip.path)
    assert out.codec == {"dnxhr_hqx": "dnxhd"}.get(codec, "prores")
    assert out.color == info.color
    # the reference: the same pictures re-encoded with the same codec by the same writer, nothing edited
    plain = tmp_path / "plain.mov"
    with ClipWriter(plain, width=info.width, height=info.height, rate=info.rate, codec=Codec(codec), color=info.color) as writer:
        for _, picture in iter_pictures(source):
            writer.write_picture(picture)
    top = int(0.25 * info.height)  # above the mouth and the matte's reach: this clip's face is in the lower half
    src, dub, ref = (_planes(p, info.color, info.pix_fmt) for p in (source, clip.path, plain))
    dub_error = np.mean([np.abs(d[0][:top] - s[0][:top]).mean() for s, d in zip(src, dub)])
    ref_error = np.mean([np.abs(r[0][:top] - s[0][:top]).mean() for s, r in zip(src, ref)])
    bias = np.mean([(d[1][:top] - s[1][:top]).mean() for s, d in zip(src, dub)])
    print(f"{codec} from {kind}: mean |luma difference| above the mouth: dub {dub_error:.3f}, plain re-encode {ref_error:.3f} codes; "
          f"Cb bias {bias:.3f}")
    assert dub_error <= ref_error + 0.05 and abs(bias) < 0.5


def test_hdr10_metadata_goes_on_to_the_prores_dub_and_its_patch(models, grid, footage_path, tmp_path):
    from edidub_engine.media.decode import source_hdr
    from edidub_engine.media.hdr import read_mov_hdr
    from edidub_engine.media.summary import picture_summary

    source = tmp_path / "hdr.mp4"
    x265 = ("log-level=error:lossless=1:repeat-headers=1:max-cll=1000,400:"
            "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)")
    _write_source(source, grid, codec="libx265", pix_fmt="yuv420p10le", options={"x265-params": x265}, tags=PQ_2020)
    info = probe_video(source)
    metadata = source_hdr(info)
    assert metadata is not None and metadata.content_light.max_cll_cd_m2 == 1000
    assert "MaxCLL 1000" in picture_summary(info)["dub_keeps"]
    clip = _dub(models, source, footage_path("dub_fr_french1.wav"), tmp_path / "out", "prores_hq")
    assert read_mov_hdr(clip.path) == metadata and read_mov_hdr(clip.patch_path) == metadata
    assert probe_video(clip.path).color == info.color
    sdr = tmp_path / "sdr.mp4"  # an SDR source gets no boxes
    _write_source(sdr, grid, **{k: v for k, v in SOURCES["8-bit H.264"].items() if k != "suffix"})
    assert source_hdr(probe_video(sdr)) is None


def test_an_odd_sized_420_dub_changes_colour_under_the_mouth_and_nothing_outside_the_matte(models, grid, footage_path, tmp_path):
    """853 wide in 4:2:0 has 427 chroma columns; taking the subsampling from a division of sizes (853 // 427 = 1) put
    the mouth's colour change on the background (issue 34). Here at 357x287, dubbed to FFV1."""
    source = tmp_path / "odd.mkv"
    _write_source(source, np.stack([cv2.resize(f, (357, 287), interpolation=cv2.INTER_AREA) for f in grid]), codec="ffv1", pix_fmt="yuv420p")
    info = probe_video(source)
    clip = _dub(models, source, footage_path("dub_fr_french1.wav"), tmp_path / "out", "ffv1")
    assert (info.width, info.height, probe_video(clip.path).pix_fmt) == (357, 287, "yuv420p")
    reach = _matte_reach(clip.patch_path, dilate_px=1)
    luma, colour = np.zeros(3), np.zeros(3)  # weighted sums of x, y and the weights
    for k, (src, dub) in enumerate(zip(_planes(source, info.color), _planes(clip.path, info.color), strict=True)):
        h, w = src[0].shape
        assert np.array_equal(src[0][~reach[k]], dub[0][~reach[k]]), f"frame {k}: luma changed outside the matte"
        padded = np.zeros((h + 1, w + 1), bool)
        padded[:h, :w] = reach[k]
        block = padded[: 2 * src[1].shape[0], : 2 * src[1].shape[1]].reshape(src[1].shape[0], 2, src[1].shape[1], 2).any(axis=(1, 3))
        for plane in (1, 2):  # a chroma sample is reached if any pixel of the 2x2 block it covers is
            assert np.array_equal(src[plane][~block], dub[plane][~block]), f"frame {k}: chroma changed outside the matte"
        dy = np.abs(dub[0] - src[0]).astype(float)
        dc = (np.abs(dub[1] - src[1]) + np.abs(dub[2] - src[2])).astype(float)
        ys, xs = np.mgrid[0:h, 0:w]
        cys, cxs = np.mgrid[0 : dc.shape[0], 0 : dc.shape[1]]
        luma += [(dy * xs).sum(), (dy * ys).sum(), dy.sum()]
        colour += [(dc * (2 * cxs + 0.5)).sum(), (dc * (2 * cys + 0.5)).sum(), dc.sum()]  # a sample's centre in frame pixels
    assert luma[2] > 1000 and colour[2] > 100, "the mouth was edited"
    centres = luma[:2] / luma[2], colour[:2] / colour[2]
    print(f"odd-sized 4:2:0: luma change centred at {centres[0].round(1)}, colour change at {centres[1].round(1)}")
    # the lips' colour sits a few pixels above the jaw's luma change (4.4 px at 358x288, where sizes divide evenly);
    # a colour change placed by a wrong subsampling lands half a frame away
    assert np.abs(centres[0] - centres[1]).max() <= 6.0, centres
