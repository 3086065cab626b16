"""OTIO adapter ``edidub_json``: EdiDub shot lists as JSON (``.edidub``, ``.json``).

``otio.adapters.read_from_file("shots.json", adapter_name="edidub_json")`` gives a Timeline
(one clip per shot on a picture track, the dub audio on an audio track ``"Dub"``);
``write_to_string(timeline, adapter_name="edidub_json", dub_track="FR dialogue")`` runs the
shot conversion on any timeline.  Loaded by file path by OTIO's plugin system, so imports are absolute.
"""

from otio_adapters import shotlist_io


def read_from_string(input_str, **_ignored):
    return shotlist_io.to_timeline(shotlist_io.from_json(input_str))


def read_from_file(filepath, **_ignored):
    with open(filepath, encoding="utf-8-sig") as f:
        return read_from_string(f.read())


def write_to_string(input_otio, **kwargs):
    return shotlist_io.to_json(shotlist_io.from_timeline(input_otio, **kwargs))
