"""OTIO adapter ``edidub_json``: EdiDub shot lists as JSON (suffix ``.edidub``; ``.json`` is left to others).

``otio.adapters.read_from_file("shots.edidub")`` gives a Timeline
(one clip per shot on a picture track, the dub audio on an audio track ``"Dub"``);
``write_to_string(timeline, adapter_name="edidub_json", dub_track="FR dialogue")`` runs the
shot conversion on any timeline.  Loaded by file path by OTIO's plugin system, so imports are absolute.
"""

from otio_adapters import shotlist_io


def read_from_string(input_str):
    return shotlist_io.to_timeline(shotlist_io.from_json(input_str))


def read_from_file(filepath):
    with open(filepath, encoding="utf-8-sig") as f:
        return read_from_string(f.read())


def write_to_string(input_otio, *, dub_track=shotlist_io.NOT_GIVEN, picture_tracks=None, handles=shotlist_io.NOT_GIVEN, output=None,
                    options=None):
    """The shots of ``input_otio`` (``dub_track``: its dub audio track; ``None`` picture only; a shot list's own
    timeline knows it). Only these arguments are accepted: a misspelt one is an error, not a silent default."""
    return shotlist_io.to_json(shotlist_io.adapter_shots(input_otio, dub_track=dub_track, picture_tracks=picture_tracks, handles=handles,
                                                       output=output, options=options))
