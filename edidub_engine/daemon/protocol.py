"""Wire protocol v1 of the EdiDub daemon: the envelope, the message contents, the error codes.

This module is the protocol's single source of truth: the server decodes
requests with it, the client encodes them with it, and the JSON Schemas in
``docs/schema/`` are generated from the dataclasses below (``python -m
edidub_engine.daemon.schema``).  It imports only msgpack and the light
``errors``/``shot`` modules, because the client (loaded inside Resolve's and
Premiere's Python) imports it.

The protocol is versioned apart from the package (``PROTOCOL_VERSION``):
a minor version adds optional fields or message types, and both sides ignore
content fields they do not know; a new major version is refused with
``UNSUPPORTED_VERSION``.  ``docs/protocol.md`` is the prose description.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import types
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any, Union

import msgpack

from edidub_engine.errors import (
    CancelledError,
    EdidubError,
    InvalidArgumentError,
    MediaDecodeError,
    MediaEncodeError,
    MediaNotFoundError,
    ModelMissingError,
    NoFaceError,
    OutputExistsError,
)
from edidub_engine.shot import RenderedClip, ShotRequest

__all__ = [
    "ACTIONS",
    "DEFAULT_EVENTS_PORT",
    "DEFAULT_REQUEST_PORT",
    "MAX_MESSAGE_BYTES",
    "MAX_SHOTS_PER_SUBMIT",
    "MAX_TIMELINE_CHARS",
    "PROTOCOL_VERSION",
    "AuthFailedError",
    "BusyError",
    "DaemonDownError",
    "ErrorCode",
    "ErrorInfo",
    "EventKind",
    "ForbiddenError",
    "Header",
    "InternalError",
    "JobEvent",
    "JobNotFoundError",
    "JobState",
    "JobView",
    "Message",
    "MsgType",
    "Priority",
    "ProtocolError",
    "UnknownMessageError",
    "UnsupportedVersionError",
    "error_from_wire",
    "from_wire",
    "to_wire",
]

PROTOCOL_VERSION = "1.1"
PROTOCOL_MAJOR = 1
DEFAULT_REQUEST_PORT = 47610  # ROUTER; the PUB socket for events is the next port
DEFAULT_EVENTS_PORT = 47611
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # libzmq drops the connection of a peer that sends more (ZMQ_MAXMSGSIZE)
MAX_SHOTS_PER_SUBMIT = 1000
MAX_TIMELINE_CHARS = 7 * 1024 * 1024  # an OTIO JSON timeline in submit_timeline (the message must stay under 8 MiB)
_MAX_STR = 4096
_MAX_ID = 128


# -- enums ------------------------------------------------------------------------------------
class MsgType(str, enum.Enum):
    """Every message type; requests and replies pair up as ``<action>_request`` / ``<action>_reply``."""

    HELLO_REQUEST = "hello_request"
    HELLO_REPLY = "hello_reply"
    SUBMIT_REQUEST = "submit_request"
    SUBMIT_REPLY = "submit_reply"
    SUBMIT_TIMELINE_REQUEST = "submit_timeline_request"
    SUBMIT_TIMELINE_REPLY = "submit_timeline_reply"
    STATUS_REQUEST = "status_request"
    STATUS_REPLY = "status_reply"
    RESULT_REQUEST = "result_request"
    RESULT_REPLY = "result_reply"
    LIST_JOBS_REQUEST = "list_jobs_request"
    LIST_JOBS_REPLY = "list_jobs_reply"
    CANCEL_REQUEST = "cancel_request"
    CANCEL_REPLY = "cancel_reply"
    MODELS_REQUEST = "models_request"
    MODELS_REPLY = "models_reply"
    ADAPT_REQUEST = "adapt_request"
    ADAPT_REPLY = "adapt_reply"
    SHUTDOWN_REQUEST = "shutdown_request"
    SHUTDOWN_REPLY = "shutdown_reply"
    ERROR_REPLY = "error_reply"  # the answer to a message whose type could not be read or is unknown
    JOB_EVENT = "job_event"  # PUB only, topic ``job.<id>``


class ErrorCode(str, enum.Enum):
    """Stable error codes on the wire; the first block is shared with :mod:`edidub_engine.errors`."""

    INVALID_ARG = "INVALID_ARG"
    NOT_FOUND = "NOT_FOUND"
    BAD_MEDIA = "BAD_MEDIA"
    ENCODE_FAILED = "ENCODE_FAILED"
    OUTPUT_EXISTS = "OUTPUT_EXISTS"
    NO_FACE = "NO_FACE"
    MODEL_MISSING = "MODEL_MISSING"
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"
    # protocol and daemon
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    UNKNOWN_MSG_TYPE = "UNKNOWN_MSG_TYPE"
    BUSY = "BUSY"
    FORBIDDEN = "FORBIDDEN"
    # raised by the client only, never sent
    DAEMON_DOWN = "DAEMON_DOWN"
    AUTH_FAILED = "AUTH_FAILED"


class Priority(str, enum.Enum):
    """An interactive "Dub shot" from an editor jumps ahead of every queued batch job."""

    INTERACTIVE = "interactive"
    BATCH = "batch"

    @property
    def rank(self) -> int:
        return 0 if self is Priority.INTERACTIVE else 1


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class EventKind(str, enum.Enum):
    QUEUED = "queued"  # accepted (or re-queued after a restart)
    STARTED = "started"  # a worker took it
    PROGRESS = "progress"  # stage / frames_done / frames_total / eta_s changed
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


# -- errors the daemon and the client add to the engine's tree ------------------------------------
class ForbiddenError(EdidubError):
    """A path outside the daemon's media roots (after resolving ``..`` and symlinks), or a local-only request from afar."""

    code = "FORBIDDEN"
    exit_status = 8


class UnsupportedVersionError(EdidubError):
    """The peer speaks a protocol major version this side does not."""

    code = "UNSUPPORTED_VERSION"
    exit_status = 9


class UnknownMessageError(InvalidArgumentError):
    """A message type this daemon does not serve (an older daemon, or a typo)."""

    code = "UNKNOWN_MSG_TYPE"


class BusyError(EdidubError):
    """The queue is full, or a result was asked for before the job finished."""

    code = "BUSY"
    exit_status = 10


class JobNotFoundError(EdidubError):
    """No job with that id in the daemon's store."""

    code = "NOT_FOUND"
    exit_status = 3


class InternalError(EdidubError):
    """A daemon bug or an unexpected failure of the runner; the daemon log has the traceback."""

    code = "INTERNAL"
    exit_status = 70


class DaemonDownError(EdidubError):
    """No daemon answered at the endpoint within the timeout (client side only)."""

    code = "DAEMON_DOWN"
    exit_status = 11


class AuthFailedError(DaemonDownError):
    """The daemon refused the CURVE handshake: wrong server key, or this client's key is not authorised."""

    code = "AUTH_FAILED"


class ProtocolError(InvalidArgumentError):
    """A message that is not a well-formed v1 envelope; ``header`` is what could be read of it."""

    def __init__(self, message: str, *, header: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.header = header or {}


_ERROR_CLASSES: dict[str, type[EdidubError]] = {
    "INVALID_ARG": InvalidArgumentError,
    "NOT_FOUND": JobNotFoundError,
    "BAD_MEDIA": MediaDecodeError,
    "ENCODE_FAILED": MediaEncodeError,
    "OUTPUT_EXISTS": OutputExistsError,
    "NO_FACE": NoFaceError,
    "MODEL_MISSING": ModelMissingError,
    "CANCELLED": CancelledError,
    "INTERNAL": InternalError,
    "UNSUPPORTED_VERSION": UnsupportedVersionError,
    "UNKNOWN_MSG_TYPE": UnknownMessageError,
    "BUSY": BusyError,
    "FORBIDDEN": ForbiddenError,
    "DAEMON_DOWN": DaemonDownError,
    "AUTH_FAILED": AuthFailedError,
}


def error_from_wire(error: dict[str, Any]) -> EdidubError:
    """The EdidubError subclass for a wire error (``{code, message, details}``).

    ``NOT_FOUND`` maps to :class:`JobNotFoundError` unless ``details`` names a
    ``path`` (then :class:`MediaNotFoundError`).  An unknown code still gives an
    :class:`EdidubError` whose ``code`` is the wire's, so callers can switch on it.
    """
    code = str(error.get("code") or "INTERNAL")
    details = error.get("details") if isinstance(error.get("details"), dict) else {}
    details = dict(details)
    hint = details.pop("hint", None)
    kind = _ERROR_CLASSES.get(code)
    if code == "NOT_FOUND" and "path" in details:
        kind = MediaNotFoundError
    made = (kind or EdidubError)(str(error.get("message") or code), hint=hint if isinstance(hint, str) else None, details=details)
    if kind is None:
        made.code = code
    return made


# -- content dataclasses -------------------------------------------------------------------------
def _limit(**kw: Any) -> dict[str, Any]:
    """Field metadata read by the decoder and the schema generator (max_length, minimum, maximum, max_items)."""
    return {"wire": kw}


@dataclass(frozen=True)
class Header:
    """Every message's header; ``msg_id`` is unique per message, ``session`` per client instance."""

    msg_id: str = field(metadata=_limit(max_length=_MAX_ID, min_length=1))
    msg_type: str = field(metadata=_limit(max_length=64, min_length=1))
    protocol: str = field(metadata=_limit(max_length=16, min_length=1))
    session: str = field(metadata=_limit(max_length=_MAX_ID))
    date: str = field(metadata=_limit(max_length=64))


@dataclass(frozen=True)
class ErrorInfo:
    code: str = field(metadata=_limit(max_length=64))
    message: str = field(metadata=_limit(max_length=65536))
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    """One model the runner uses, as it reports it (nothing is downloaded; ``present`` says if it is on disk)."""

    name: str
    present: bool
    path: str | None = None
    version: str | None = None
    sha256: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobView:
    """A job as status/list_jobs report it; times are ISO 8601 UTC."""

    job_id: str
    shot_id: str
    state: JobState
    priority: Priority
    submitted_at: str
    frames_done: int = 0
    frames_total: int = 0
    stage: str | None = None
    eta_s: float | None = None
    attempts: int = 0
    cancel_requested: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    output_path: str | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True)
class JobEvent:
    """Published on the PUB socket under topic ``job.<job_id>``."""

    job_id: str
    event: EventKind
    state: JobState
    frames_done: int = 0
    frames_total: int = 0
    stage: str | None = None
    eta_s: float | None = None
    output_path: str | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True)
class HelloRequest:
    """Say who is calling (for the daemon's log); the reply says what the daemon can do."""

    client: str = field(default="", metadata=_limit(max_length=200))


@dataclass(frozen=True)
class HelloReply:
    protocol: str
    engine_version: str
    capabilities: list[str]
    devices: list[str]
    models: list[ModelInfo]
    events_endpoint: str
    media_roots: list[str]
    output_root: str | None = None
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_shots_per_submit: int = MAX_SHOTS_PER_SUBMIT
    # per worker: device, alive, ready (models loaded), error (why not), restarts and last_error (errors it outlived)
    workers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SubmitRequest:
    """One or many shots; all are checked before any is queued (all or nothing)."""

    shots: list[ShotRequest] = field(metadata=_limit(min_items=1, max_items=MAX_SHOTS_PER_SUBMIT))
    priority: Priority = Priority.BATCH


@dataclass(frozen=True)
class SubmitReply:
    job_ids: list[str]  # in the order of ``shots``


@dataclass(frozen=True)
class SubmitTimelineRequest:
    """Dub a whole OTIO timeline: every picture clip with dub speech under it on ``dub_track`` becomes a job (otio_adapters.shots_from_timeline, the one clip-range → shot conversion); all are checked before any is queued. ``result`` with the reply's ``batch_id`` returns the dubbed timeline."""

    timeline: str = field(metadata=_limit(max_length=MAX_TIMELINE_CHARS, min_length=1))  # otio_json text of one Timeline
    dub_track: str = field(metadata=_limit(max_length=200, min_length=1))  # audio track name, or "A2"
    picture_tracks: list[str] | None = field(default=None, metadata=_limit(max_items=100))  # names or "V1"; null: every video track
    language: str = field(default="FR", metadata=_limit(max_length=16, min_length=1))  # names the new track "EdiDub <LANG>"
    output_dir: str | None = None  # absolute, under a media root; null: the daemon's --output-root
    codec: str = field(default="prores_hq", metadata=_limit(max_length=16))
    options: dict[str, Any] | None = None  # DubOptions for every shot (steps, inversion_steps, guidance_scale, seed, face, strength)
    handles: int | None = field(default=12, metadata=_limit(minimum=0, maximum=100_000))  # null: the whole clip
    priority: Priority = Priority.BATCH


@dataclass(frozen=True)
class SubmitTimelineReply:
    batch_id: str
    job_ids: list[str]  # one per shot, in timeline order
    shot_ids: list[str]  # the shots' ids, in the same order
    skipped: list[dict[str, Any]]  # clips left out: {clip, track, track_index, record_start_frame, record_end_frame, reason, message, clip_path}
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AdaptClipSpec:
    """One take of the actor: frames ``[start_frame, end_frame)`` of ``path`` (``end_frame`` null: to the end)."""

    path: str = field(metadata=_limit(max_length=4096, min_length=1))  # absolute, under a media root
    start_frame: int = field(default=0, metadata=_limit(minimum=0, maximum=100_000_000))
    end_frame: int | None = field(default=None, metadata=_limit(minimum=1, maximum=100_000_000))


@dataclass(frozen=True)
class AdaptRequest:
    """Fine-tune a served bundle's LSD on one actor's takes (``edidub adapt``) as a job: progress, cancel and
    restart like a dub. When it is done the new bundle ``name`` is served (``models``), and a shot names it in
    ``options.model``; ``result`` gives its path and validation figures. Give ``steps``, ``minutes`` or both."""

    name: str = field(metadata=_limit(max_length=64, min_length=1))  # the new bundle's name: letters, digits, - _ .
    clips: list[AdaptClipSpec] = field(metadata=_limit(min_items=1, max_items=100))
    base: str | None = field(default=None, metadata=_limit(max_length=64))  # a served bundle; null: the default
    steps: int | None = field(default=None, metadata=_limit(minimum=1, maximum=10_000_000))
    minutes: float | None = field(default=None, metadata=_limit(minimum=0.1, maximum=100_000))
    validate_every: int = field(default=100, metadata=_limit(minimum=1, maximum=1_000_000))
    priority: Priority = Priority.BATCH


@dataclass(frozen=True)
class AdaptReply:
    job_id: str
    bundle_path: str  # where the adapted bundle will be published


@dataclass(frozen=True)
class StatusRequest:
    job_id: str = field(metadata=_limit(max_length=_MAX_ID, min_length=1))


@dataclass(frozen=True)
class StatusReply:
    job: JobView


@dataclass(frozen=True)
class ResultRequest:
    """A job's rendered clip (``job_id``), or a batch's dubbed timeline (``batch_id`` from submit_timeline); give exactly one."""

    job_id: str | None = field(default=None, metadata=_limit(max_length=_MAX_ID, min_length=1))
    batch_id: str | None = field(default=None, metadata=_limit(max_length=_MAX_ID, min_length=1))


@dataclass(frozen=True)
class ResultReply:
    """For a job: ``job_id`` and ``clip``.  For a batch: ``batch_id``, ``timeline`` (otio_json text with the dubbed clips on a new "EdiDub <LANG>" track), ``dubbed`` (shot ids on it), ``failed`` (``{shot_id, job_id, state, error}`` of shots left out)."""

    job_id: str | None = None
    clip: RenderedClip | None = None
    batch_id: str | None = None
    timeline: str | None = field(default=None, metadata=_limit(max_length=MAX_MESSAGE_BYTES))
    dubbed: list[str] | None = None
    failed: list[dict[str, Any]] | None = None
    # for an adapt job: {name, path, before_db, after_db, steps, best_step, seconds, stopped}
    bundle: dict[str, Any] | None = None


@dataclass(frozen=True)
class ListJobsRequest:
    """Newest first; ``states`` filters (default: every state)."""

    states: list[JobState] | None = field(default=None, metadata=_limit(max_items=len(JobState)))
    limit: int = field(default=100, metadata=_limit(minimum=1, maximum=10_000))


@dataclass(frozen=True)
class ListJobsReply:
    jobs: list[JobView]


@dataclass(frozen=True)
class CancelRequest:
    job_id: str = field(metadata=_limit(max_length=_MAX_ID, min_length=1))


@dataclass(frozen=True)
class CancelReply:
    """``state`` after the request: a queued job is cancelled at once, a running one stops at its next step."""

    job_id: str
    state: JobState
    cancel_requested: bool


@dataclass(frozen=True)
class ModelsRequest:
    pass


@dataclass(frozen=True)
class ModelsReply:
    models: list[ModelInfo]


@dataclass(frozen=True)
class ShutdownRequest:
    """Stop the daemon; a running job is re-queued and resumes on the next start. Local peers only."""


@dataclass(frozen=True)
class ShutdownReply:
    pass


@dataclass(frozen=True)
class Action:
    name: str
    request: type
    reply: type


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("hello", HelloRequest, HelloReply),
        Action("submit", SubmitRequest, SubmitReply),
        Action("submit_timeline", SubmitTimelineRequest, SubmitTimelineReply),
        Action("adapt", AdaptRequest, AdaptReply),
        Action("status", StatusRequest, StatusReply),
        Action("result", ResultRequest, ResultReply),
        Action("list_jobs", ListJobsRequest, ListJobsReply),
        Action("cancel", CancelRequest, CancelReply),
        Action("models", ModelsRequest, ModelsReply),
        Action("shutdown", ShutdownRequest, ShutdownReply),
    )
}


# -- the envelope ------------------------------------------------------------------------------------
def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch_to_iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Message:
    """``{header, parent_header, content}``; ``parent_header`` is the request's header in a reply, else None (``{}`` on the wire)."""

    header: Header
    content: dict[str, Any]
    parent_header: Header | dict[str, Any] | None = None  # a dict only in error_reply (what could be read)

    @property
    def msg_type(self) -> str:
        return self.header.msg_type

    @classmethod
    def make(cls, msg_type: str | MsgType, content: dict[str, Any], *, session: str, parent: Header | dict[str, Any] | None = None) -> Message:
        header = Header(
            msg_id=uuid.uuid4().hex,
            msg_type=str(getattr(msg_type, "value", msg_type)),
            protocol=PROTOCOL_VERSION,
            session=session,
            date=utc_now_iso(),
        )
        return cls(header, content, parent)

    def pack(self) -> bytes:
        return msgpack.packb(
            {
                "header": dataclasses.asdict(self.header),
                "parent_header": _header_map(self.parent_header),
                "content": self.content,
            },
            use_bin_type=True,
        )

    @classmethod
    def unpack(cls, data: bytes) -> Message:
        """Decode and check the envelope (not the content); raises :class:`ProtocolError`."""
        try:
            raw = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
        except Exception as exc:  # msgpack raises many types on garbage (ValueError, ExtraData, StackError, Unicode…)
            raise ProtocolError(f"not a msgpack message ({type(exc).__name__})") from None
        if not isinstance(raw, dict):
            raise ProtocolError("a message must be a map {header, parent_header, content}")
        raw_header = raw.get("header")
        readable = _readable_header(raw_header)
        try:
            header = from_wire(Header, raw_header, "header", ignore_unknown=True)
        except InvalidArgumentError as err:
            raise ProtocolError(err.message, header=readable) from None
        parent = raw.get("parent_header", {})
        if parent is None or parent == {}:
            parent_header = None
        else:
            try:
                parent_header = from_wire(Header, parent, "parent_header", ignore_unknown=True)
            except InvalidArgumentError as err:
                raise ProtocolError(err.message, header=readable) from None
        content = raw.get("content")
        if not isinstance(content, dict):
            raise ProtocolError("content must be a map", header=readable)
        return cls(header, content, parent_header)


def _header_map(header: Header | dict[str, Any] | None) -> dict[str, Any]:
    if header is None:
        return {}
    return dataclasses.asdict(header) if isinstance(header, Header) else dict(header)


def _readable_header(raw: Any) -> dict[str, Any]:
    """Whatever of a broken header is safe to echo as the reply's parent_header (short strings only)."""
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if k in ("msg_id", "msg_type", "protocol", "session", "date") and isinstance(v, str) and len(v) <= _MAX_ID}


def version_supported(version: str) -> bool:
    """Same major version; minors only add optional fields and types."""
    major, _, _minor = version.partition(".")
    return major == str(PROTOCOL_MAJOR)


# -- (de)serialising dataclasses by their type hints ------------------------------------------------------
_hints_cache: dict[type, dict[str, Any]] = {}


def type_hints(cls: type) -> dict[str, Any]:
    if cls not in _hints_cache:
        _hints_cache[cls] = typing.get_type_hints(cls)
    return _hints_cache[cls]


def to_wire(value: Any) -> Any:
    """A dataclass (or anything nested) as plain msgpack-able maps, lists, strings and numbers."""
    if isinstance(value, (ShotRequest, RenderedClip)):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def from_wire(cls: type, data: Any, where: str, *, ignore_unknown: bool = True) -> Any:
    """Build dataclass ``cls`` from a wire map, checking every field against its type hint and limits.

    Unknown fields are ignored by default — a client reading a newer daemon's
    replies and events — and refused with ``ignore_unknown=False``, which the
    daemon uses for every map of a request's content (nested maps too).
    Missing required fields, wrong types and values over their limits raise
    :class:`InvalidArgumentError` naming ``where`` and the field.
    """
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{where} must be a map, got {_kind(data)}")
    hints = type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InvalidArgumentError(f"{where}: {f.name} is required")
            continue
        kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}", f.metadata.get("wire", {}), ignore_unknown)
    if not ignore_unknown:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InvalidArgumentError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))[:200]}")
    return cls(**kwargs)


def _kind(value: Any) -> str:
    return type(value).__name__


def _decode(hint: Any, value: Any, where: str, limits: dict[str, Any], ignore_unknown: bool = True) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise InvalidArgumentError(f"{where} must not be null")
        last: InvalidArgumentError | None = None
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, value, where, limits, ignore_unknown)
            except InvalidArgumentError as err:
                last = err
        assert last is not None
        raise last
    if hint is Any:
        return value
    if hint is str:
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{where} must be a string, got {_kind(value)}")
        if len(value) > limits.get("max_length", _MAX_STR) or len(value) < limits.get("min_length", 0):
            raise InvalidArgumentError(f"{where}: string length {len(value)} is outside what is allowed")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise InvalidArgumentError(f"{where} must be true or false, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"{where} must be a whole number, got {_kind(value)}")
        _check_bounds(value, where, limits)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgumentError(f"{where} must be a number, got {_kind(value)}")
        _check_bounds(value, where, limits)
        return float(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except (ValueError, TypeError):
            allowed = ", ".join(m.value for m in hint)
            raise InvalidArgumentError(f"{where} must be one of {allowed}, got {str(value)[:80]!r}") from None
    if hint is ShotRequest:
        return ShotRequest.from_dict(value)
    if hint is RenderedClip:
        if not isinstance(value, dict):
            raise InvalidArgumentError(f"{where} must be a map")
        try:
            return RenderedClip.from_dict(value)
        except (TypeError, KeyError, ValueError) as exc:
            raise InvalidArgumentError(f"{where} is not a rendered clip ({exc})") from None
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise InvalidArgumentError(f"{where} must be a list, got {_kind(value)}")
        if len(value) > limits.get("max_items", 10_000) or len(value) < limits.get("min_items", 0):
            raise InvalidArgumentError(f"{where}: {len(value)} items is outside what is allowed")
        (item,) = typing.get_args(hint)[:1]
        out = []
        for i, v in enumerate(value):
            try:
                out.append(_decode(item, v, f"{where}[{i}]", {}, ignore_unknown))
            except InvalidArgumentError as err:
                if item is ShotRequest:  # every per-shot refusal carries both: the shot's place and its id (null when unreadable)
                    err.details.setdefault("index", i)
                    err.details.setdefault("shot_id", _shot_id(v))
                raise
        return out
    if origin is dict:
        if not isinstance(value, dict):
            raise InvalidArgumentError(f"{where} must be a map, got {_kind(value)}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_wire(hint, value, where, ignore_unknown=ignore_unknown)
    raise TypeError(f"protocol: no wire decoding for {hint!r}")  # a bug in this module, not bad input


def _shot_id(shot: Any) -> str | None:
    """What a refused shot calls itself, if it says so readably."""
    shot_id = shot.get("shot_id") if isinstance(shot, dict) else None
    return shot_id[:200] if isinstance(shot_id, str) else None


def _check_bounds(value: float, where: str, limits: dict[str, Any]) -> None:
    if "minimum" in limits and value < limits["minimum"]:
        raise InvalidArgumentError(f"{where} must be at least {limits['minimum']}, got {value}")
    if "maximum" in limits and value > limits["maximum"]:
        raise InvalidArgumentError(f"{where} must be at most {limits['maximum']}, got {value}")


def ok_content(reply: Any) -> dict[str, Any]:
    """A reply dataclass as wire content with ``status: ok``."""
    return {"status": "ok", **to_wire(reply)}


def error_content(error: EdidubError) -> dict[str, Any]:
    return {"status": "error", **error.to_dict()}
