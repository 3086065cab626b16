"""The daemon side of the Resolve scripts: reaching the daemon, and watching its jobs in a progress window.

Its own module because every flow uses it — Dub Shot and Dub Timeline (:mod:`.resolve_bridge`)
and Adapt to Actor (:mod:`.adapt`) — and :mod:`.resolve_bridge` dispatches to all of them: kept
there, :mod:`.adapt` would have to import it back.
"""

from __future__ import annotations

from collections.abc import Callable

from edidub_engine.client import Client, DaemonDownError, JobState, JobView
from edidub_engine.errors import EdidubError

from .errors import ResolveScriptError
from .progress import ConsoleProgress
from .reading import _Context

__all__ = ["SERVE_HINT", "connect", "watch"]

SERVE_HINT = "start it in a terminal with `edidub serve --media-root <folder that holds your media and renders>`"


def connect(ctx: _Context) -> Client:
    """A client for the project's daemon (``daemon`` setting, else the connection file), checked with ``hello``."""
    client = Client(ctx.settings.daemon or None, timeout_s=ctx.settings.daemon_timeout_s, name="edidub-resolve")
    try:
        client.hello()
    except DaemonDownError as exc:
        client.close()
        raise ResolveScriptError(f"no EdiDub daemon is running ({exc.message})", SERVE_HINT, "DAEMON_DOWN") from None
    return client


def _shots_text(views: list[JobView]) -> str:
    finished = sum(v.state.terminal for v in views)
    running = [v for v in views if v.state is JobState.RUNNING]
    stage = running[0].stage if running else ("queued" if finished < len(views) else "done")
    return f"{finished}/{len(views)} shot(s) done — {stage}" if len(views) > 1 else f"{stage or 'working'}"


def watch(client: Client, job_ids: list[str], progress: ConsoleProgress, title: str, *,
          describe: Callable[[list[JobView]], str] = _shots_text,
          label: Callable[[JobView], str] = lambda view: f"shot {view.shot_id!r}") -> dict[str, JobView] | None:
    """Poll the jobs' status into ``progress`` until all have ended; their last views, or None when the editor
    (or anyone) cancelled one.  A failed job raises its error as a :class:`ResolveScriptError`, named by ``label``.

    ``frames_done`` / ``frames_total`` fill the bar whatever they count (frames for a dub, training steps for an
    adaptation); ``describe`` writes the status line.
    """
    state: dict[str, dict[str, JobView]] = {"views": {}}

    def step():
        views = {j: client.status(j) for j in job_ids}
        state["views"] = views
        total = sum(max(v.frames_total, 1) for v in views.values())
        done_frames = sum(v.frames_total if v.state.terminal else min(v.frames_done, v.frames_total) for v in views.values())
        finished = sum(v.state.terminal for v in views.values())
        return done_frames / total if total else 0.0, describe(list(views.values())), finished == len(views)

    def cancel():
        for j in job_ids:
            try:
                client.cancel(j)
            except EdidubError:
                pass

    if not progress.run(title, step, cancel):
        return None
    views = state["views"]
    for view in views.values():
        if view.state is JobState.CANCELLED:
            return None
        if view.state is JobState.FAILED:
            err = view.error
            message = getattr(err, "message", None) or "the job failed"
            hint = (getattr(err, "details", None) or {}).get("hint")
            name = label(view)
            raise ResolveScriptError(message if message.startswith(name) else f"{name}: {message}", hint, getattr(err, "code", "FAILED"))
    return views
