"""JSON Schemas of every protocol message, generated from :mod:`.protocol`'s dataclasses.

The checked-in copies in ``docs/schema/`` are for people and for clients in
other languages (the Premiere panel's JavaScript); a test regenerates them and
fails on any difference, so the documents cannot drift from the code.

    python -m edidub_engine.daemon.schema            # rewrite docs/schema/*.json
    python -m edidub_engine.daemon.schema --check    # exit 1 if they differ

:func:`validate` checks an instance against the small JSON Schema subset the
generator emits (draft 2020-12 keywords: type, enum, const, properties,
required, additionalProperties, items, min/maxItems, min/maxLength, minimum,
exclusiveMinimum, maximum, pattern, anyOf, allOf, local ``$ref``,
maxProperties); no jsonschema package is needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import re
import sys
import types
import typing
from fractions import Fraction
from pathlib import Path
from typing import Any, Union

from edidub_engine import shot as shot_module
from edidub_engine.daemon import protocol as p

__all__ = ["SCHEMA_DIR", "generate", "validate", "write", "main"]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

# ShotRequest's own rules (shot.py's from_dict and its option checks), which its type hints alone do not say:
# every bound the daemon enforces on a shot is here, so a client in another language sees it (docs/protocol.md, Limits).
_SECONDS = {"type": "number", "minimum": 0, "maximum": shot_module.MAX_SECONDS}
_STEPS = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": shot_module.MAX_STEPS}, {"type": "null"}]}
_SHOT_OVERRIDES: dict[tuple[type, str], dict[str, Any]] = {
    (shot_module.ShotRequest, "shot_id"): {"type": "string", "minLength": 1, "maxLength": 200},
    (shot_module.SourceRange, "path"): {"type": "string", "minLength": 1, "maxLength": 4096},
    (shot_module.SourceRange, "start_frame"): {"type": "integer", "minimum": 0, "maximum": shot_module.MAX_FRAME - 1},
    (shot_module.SourceRange, "end_frame"): {"type": "integer", "minimum": 1, "maximum": shot_module.MAX_FRAME,
                                             "description": "exclusive; greater than start_frame"},
    (shot_module.AudioSegment, "path"): {"type": "string", "minLength": 1, "maxLength": 4096},
    (shot_module.AudioSegment, "start_s"): _SECONDS,
    (shot_module.AudioSegment, "offset_s"): _SECONDS,
    (shot_module.AudioSegment, "duration_s"): {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": shot_module.MAX_SECONDS},
                                                         {"type": "null"}]},
    (shot_module.OutputSpec, "codec"): {"type": "string", "enum": list(shot_module.CODECS)},
    (shot_module.OutputSpec, "name"): {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "null"}]},
    (shot_module.DubOptions, "steps"): _STEPS,
    (shot_module.DubOptions, "inversion_steps"): _STEPS,
    (shot_module.DubOptions, "guidance_scale"): {"anyOf": [{"type": "number", "minimum": 1, "maximum": 30}, {"type": "null"}]},
    (shot_module.DubOptions, "seed"): {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    (shot_module.DubOptions, "strength"): {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    (shot_module.DubOptions, "face"): {"anyOf": [{"type": "string", "maxLength": 4096}, {"type": "integer", "minimum": 0}],
                                       "description": '"largest", a face index counted left to right from 0, or "x,y" in pixels'},
    (shot_module.DubOptions, "model"): {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "null"}]},
    (shot_module.ShotRequest, "dub_audio"): {
        "description": "the dub line (one face), or the mixed line that speakers shares out; empty when every face has its line",
        "anyOf": [
            {"$ref": "#/$defs/AudioSegment"},
            {"type": "array", "items": {"$ref": "#/$defs/AudioSegment"}, "maxItems": 10_000},
        ]
    },
    (shot_module.ShotRequest, "lines"): {"type": "array", "items": {"$ref": "#/$defs/FaceLine"}, "maxItems": shot_module.MAX_FACES},
    (shot_module.ShotRequest, "speakers"): {"anyOf": [{"type": "string", "enum": list(shot_module.SPEAKER_RULES)}, {"type": "null"}]},
    (shot_module.FaceLine, "face"): {"anyOf": [{"type": "string", "maxLength": 4096}, {"type": "integer", "minimum": 0}],
                                     "description": '"largest", an index counted left to right from 0, or "x,y" in pixels'},
    (shot_module.FaceLine, "speaking"): {"anyOf": [{"type": "array", "maxItems": 10_000, "items": {
        "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 0, "maximum": shot_module.MAX_FRAME}}},
        {"type": "null"}]},
}
_SHOT_REQUIRED = {shot_module.ShotRequest: ["shot_id", "source"], shot_module.FaceLine: ["face"]}
# shot.py rejects unknown fields in these maps wherever they appear; in a request every map is closed
# (the daemon refuses unknown fields), in replies and events the protocol's own maps stay open.
_CLOSED = {shot_module.AudioSegment, shot_module.OutputSpec, shot_module.DubOptions, shot_module.FaceLine}
_RATE = {
    "description": 'a frame rate: "30000/1001", 25 or [24000, 1001]; a decimal within 0.05 % of an NTSC rate ("29.97", "23.976", '
                   '59.94) means that NTSC rate (30000/1001…), any other decimal its exact value',
    "anyOf": [
        {"type": "string", "pattern": r"^[0-9]+(/[0-9]+|\.[0-9]+)?$"},
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
    ],
}
_ERROR_CONTENT = {
    "type": "object",
    "description": "Every failed reply: a stable code, a message for a person, details (may hold a hint).",
    "properties": {
        "status": {"const": "error"},
        "code": {"type": "string", "enum": [c.value for c in p.ErrorCode if c not in (p.ErrorCode.DAEMON_DOWN, p.ErrorCode.AUTH_FAILED)]},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
    "required": ["status", "code", "message", "details"],
}


class _Builder:
    def __init__(self, *, closed: bool = False) -> None:
        self.defs: dict[str, Any] = {}
        self.closed = closed  # a request's schema: no map admits unknown fields

    def ref(self, cls: type, extra_ok: bool = False) -> dict[str, Any]:
        name = cls.__name__ + ("Ok" if extra_ok else "")
        if name not in self.defs:
            self.defs[name] = {}  # reserve (recursion guard)
            self.defs[name] = self._dataclass(cls, extra_ok)
        return {"$ref": f"#/$defs/{name}"}

    def _dataclass(self, cls: type, extra_ok: bool) -> dict[str, Any]:
        hints = p.type_hints(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        if extra_ok:
            props["status"] = {"const": "ok"}
            required.append("status")
        for f in dataclasses.fields(cls):
            override = _SHOT_OVERRIDES.get((cls, f.name))
            if override and cls is shot_module.ShotRequest and f.name in ("dub_audio", "lines"):
                self.ref(shot_module.AudioSegment if f.name == "dub_audio" else shot_module.FaceLine)  # the override refers to it
            props[f.name] = dict(override) if override else self.hint(hints[f.name], f.metadata.get("wire", {}))
            if cls not in _SHOT_REQUIRED and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        required += _SHOT_REQUIRED.get(cls, [])
        out: dict[str, Any] = {"type": "object"}
        doc = (cls.__doc__ or "").strip()
        if doc and not doc.startswith(cls.__name__ + "("):
            out["description"] = " ".join(doc.split())
        out["properties"] = props
        if required:
            out["required"] = required
        if cls in _CLOSED or (self.closed and cls is not p.Header):  # header fields stay open (envelope extensions)
            out["additionalProperties"] = False
        return out

    def hint(self, hint: Any, limits: dict[str, Any]) -> dict[str, Any]:
        origin = typing.get_origin(hint)
        if origin in (Union, types.UnionType):
            return {"anyOf": [self.hint(h, limits) for h in typing.get_args(hint)]}
        if hint is type(None):
            return {"type": "null"}
        if hint is Any:
            return {}
        if hint is str:
            out: dict[str, Any] = {"type": "string", "maxLength": limits.get("max_length", p._MAX_STR)}
            if limits.get("min_length"):
                out["minLength"] = limits["min_length"]
            return out
        if hint is bool:
            return {"type": "boolean"}
        if hint in (int, float):
            out = {"type": "integer" if hint is int else "number"}
            for key in ("minimum", "maximum"):
                if key in limits:
                    out[key] = limits[key]
            return out
        if hint is Fraction:
            self.defs.setdefault("Rate", _RATE)
            return {"$ref": "#/$defs/Rate"}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return {"type": "string", "enum": [m.value for m in hint]}
        if origin in (list, tuple):
            out = {"type": "array", "items": self.hint(typing.get_args(hint)[0], {})}
            if "min_items" in limits:
                out["minItems"] = limits["min_items"]
            out["maxItems"] = limits.get("max_items", 10_000)
            return out
        if origin is dict:
            return {"type": "object"}
        if dataclasses.is_dataclass(hint):
            return self.ref(hint)
        raise TypeError(f"no schema for {hint!r}")


def _message_schema(msg_type: str, description: str, content: Any, *, reply: bool, build: _Builder) -> dict[str, Any]:
    header = {
        "allOf": [
            build.ref(p.Header),
            {"properties": {"msg_type": {"const": msg_type}, "protocol": {"type": "string", "pattern": r"^1(\.[0-9]+)?$"}}},
        ]
    }
    if msg_type == p.MsgType.ERROR_REPLY.value:
        parent: dict[str, Any] = {"type": "object", "description": "what could be read of the offending request's header"}
    elif reply:
        parent = build.ref(p.Header)
    else:
        parent = {"type": "object", "maxProperties": 0}
    return {
        "$schema": _DRAFT,
        "title": msg_type,
        "description": description,
        "type": "object",
        "properties": {"header": header, "parent_header": parent, "content": content},
        "required": ["header", "parent_header", "content"],
        "$defs": build.defs,
    }


def generate() -> dict[str, dict[str, Any]]:
    """Every message type's schema, keyed by file name (``hello_request.json``…)."""
    out: dict[str, dict[str, Any]] = {}
    for action in p.ACTIONS.values():
        build = _Builder(closed=True)
        doc = " ".join((action.request.__doc__ or "").split())
        doc = "" if doc.startswith(action.request.__name__ + "(") else doc
        req = f"{action.name}_request"
        out[f"{req}.json"] = _message_schema(req, doc or f"Request: {action.name}.", build.ref(action.request), reply=False, build=build)
        build = _Builder()
        content = {"anyOf": [build.ref(action.reply, extra_ok=True), {"$ref": "#/$defs/ErrorContent"}]}
        build.defs["ErrorContent"] = _ERROR_CONTENT
        rep = f"{action.name}_reply"
        out[f"{rep}.json"] = _message_schema(rep, f"Reply to {req}: status ok with the fields below, or an error.", content, reply=True, build=build)
    build = _Builder()
    build.defs["ErrorContent"] = _ERROR_CONTENT
    out["error_reply.json"] = _message_schema(
        "error_reply",
        "The reply to a message that is not a readable v1 request, or whose type this daemon does not serve.",
        {"$ref": "#/$defs/ErrorContent"},
        reply=True,
        build=build,
    )
    build = _Builder()
    out["job_event.json"] = _message_schema(
        "job_event",
        "Published on the events (PUB) socket; the frame before it is the topic job.<job_id>.",
        build.ref(p.JobEvent),
        reply=False,
        build=build,
    )
    return out


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write(folder: Path = SCHEMA_DIR) -> list[Path]:
    """(Re)write every schema file in ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = folder / name
        path.write_text(_dump(schema), encoding="utf-8")
        written.append(path)
    return written


def differences(folder: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, stale or extra in ``folder``."""
    wanted = {name: _dump(schema) for name, schema in generate().items()}
    have = {path.name: path.read_text(encoding="utf-8") for path in folder.glob("*.json")} if folder.is_dir() else {}
    return sorted(name for name in wanted.keys() | have.keys() if wanted.get(name) != have.get(name))


# -- a validator for the subset above -----------------------------------------------------------------
class SchemaViolation(ValueError):
    pass


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(instance: Any, schema: dict[str, Any], *, root: dict[str, Any] | None = None, where: str = "$") -> None:
    """Raise :class:`SchemaViolation` naming the first place ``instance`` breaks ``schema``."""
    root = root if root is not None else schema
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        validate(instance, root["$defs"][name], root=root, where=where)
    if "type" in schema and not _TYPES[schema["type"]](instance):
        raise SchemaViolation(f"{where}: expected {schema['type']}, got {type(instance).__name__}")
    if "const" in schema and instance != schema["const"]:
        raise SchemaViolation(f"{where}: expected {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        raise SchemaViolation(f"{where}: {instance!r} not in {schema['enum']}")
    if isinstance(instance, str):
        if len(instance) > schema.get("maxLength", len(instance)) or len(instance) < schema.get("minLength", 0):
            raise SchemaViolation(f"{where}: string length {len(instance)}")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            raise SchemaViolation(f"{where}: {instance!r} does not match {schema['pattern']}")
    if _TYPES["number"](instance):
        if "minimum" in schema and instance < schema["minimum"]:
            raise SchemaViolation(f"{where}: {instance} < {schema['minimum']}")
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            raise SchemaViolation(f"{where}: {instance} <= {schema['exclusiveMinimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            raise SchemaViolation(f"{where}: {instance} > {schema['maximum']}")
    if isinstance(instance, list):
        if len(instance) > schema.get("maxItems", len(instance)) or len(instance) < schema.get("minItems", 0):
            raise SchemaViolation(f"{where}: {len(instance)} items")
        if "items" in schema:
            for i, item in enumerate(instance):
                validate(item, schema["items"], root=root, where=f"{where}[{i}]")
    if isinstance(instance, dict):
        if len(instance) > schema.get("maxProperties", len(instance)):
            raise SchemaViolation(f"{where}: too many properties")
        for key in schema.get("required", []):
            if key not in instance:
                raise SchemaViolation(f"{where}: {key} is required")
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key in props:
                validate(value, props[key], root=root, where=f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                raise SchemaViolation(f"{where}: unexpected {key}")
    for sub in schema.get("allOf", []):
        validate(instance, sub, root=root, where=where)
    if "anyOf" in schema:
        errors = []
        for sub in schema["anyOf"]:
            try:
                validate(instance, sub, root=root, where=where)
                break
            except SchemaViolation as err:
                errors.append(str(err))
        else:
            raise SchemaViolation(f"{where}: matches none of anyOf ({'; '.join(errors)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edidub_engine.daemon.schema", description="Regenerate or check docs/schema/*.json.")
    parser.add_argument("folder", nargs="?", type=Path, default=SCHEMA_DIR, help=f"default {SCHEMA_DIR}")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    if args.check:
        stale = differences(args.folder)
        for name in stale:
            print(f"stale: {args.folder / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.folder):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
