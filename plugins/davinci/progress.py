"""How a script shows progress and messages, and asks for a name: a UIManager window where Resolve offers one,
else the Console.

Both take the same ``step`` / ``cancel`` callables, so the flows never know which one they have.  The Console
cannot ask: there :meth:`~ConsoleProgress.ask` takes the proposal (the flows say where to set it instead).
"""

from __future__ import annotations

import time
from typing import Any, Callable

__all__ = ["ConsoleProgress", "UIProgress", "make_progress"]


class ConsoleProgress:
    """Progress and messages on Resolve's Console (Workspace ▸ Console) or a terminal."""

    def __init__(self, out: Callable[[str], None] | None = None):
        self._out = out or (lambda text: print(text, flush=True))
        self._last = None

    def message(self, title: str, text: str) -> None:
        self._out(f"[EdiDub] {title}: {text}")

    def ask(self, title: str, label: str, proposal: str) -> str | None:
        """The editor's answer (None: cancelled); the Console takes ``proposal`` as it is."""
        if proposal:
            self._out(f"[EdiDub] {title}: {label}: {proposal}")
        return proposal

    def run(self, title: str, step: Callable[[], tuple[float, str, bool]], cancel: Callable[[], None], poll_s: float = 0.5) -> bool:
        """Call ``step()`` until it says done; returns False when cancelled (never, on the console)."""
        while True:
            fraction, text, done = step()
            line = f"[EdiDub] {title}: {int(fraction * 100):3d}% {text}"
            if line != self._last:
                self._out(line)
                self._last = line
            if done:
                return True
            time.sleep(poll_s)


class UIProgress(ConsoleProgress):
    """A small UIManager window: a status line, a text progress bar and Cancel."""

    def __init__(self, fusion: Any, bmd: Any):
        super().__init__()
        self.ui = fusion.UIManager
        self.disp = bmd.UIDispatcher(self.ui)

    def message(self, title: str, text: str) -> None:
        super().message(title, text)
        ui, disp = self.ui, self.disp
        win = disp.AddWindow(
            {"ID": "EdiDubMessage", "WindowTitle": f"EdiDub: {title}", "Geometry": [200, 200, 520, 180]},
            ui.VGroup([ui.Label({"ID": "Text", "Text": text, "WordWrap": True}), ui.Button({"ID": "OK", "Text": "OK"})]),
        )
        disp.On.OK.Clicked = lambda ev: disp.ExitLoop()
        disp.On.EdiDubMessage.Close = lambda ev: disp.ExitLoop()
        win.Show()
        disp.RunLoop()
        win.Hide()

    def ask(self, title: str, label: str, proposal: str) -> str | None:
        ui, disp = self.ui, self.disp
        win = disp.AddWindow(
            {"ID": "EdiDubAsk", "WindowTitle": f"EdiDub: {title}", "Geometry": [200, 200, 460, 130]},
            ui.VGroup([
                ui.Label({"ID": "Text", "Text": label, "WordWrap": True}),
                ui.LineEdit({"ID": "Answer", "Text": proposal}),
                ui.HGroup([ui.HGap(0, 1), ui.Button({"ID": "Cancel", "Text": "Cancel"}), ui.Button({"ID": "OK", "Text": "OK"})]),
            ]),
        )
        answer: dict[str, str | None] = {"text": None}

        def ok(ev):
            answer["text"] = str(win.GetItems()["Answer"].Text or "").strip()
            disp.ExitLoop()

        disp.On.OK.Clicked = ok
        disp.On.Cancel.Clicked = lambda ev: disp.ExitLoop()
        disp.On.EdiDubAsk.Close = lambda ev: disp.ExitLoop()
        win.Show()
        disp.RunLoop()
        win.Hide()
        return answer["text"]

    def run(self, title, step, cancel, poll_s: float = 0.5) -> bool:
        ui, disp = self.ui, self.disp
        win = disp.AddWindow(
            {"ID": "EdiDubProgress", "WindowTitle": f"EdiDub: {title}", "Geometry": [200, 200, 460, 130]},
            ui.VGroup([
                ui.Label({"ID": "Status", "Text": "Sending to the EdiDub daemon…"}),
                ui.Label({"ID": "Bar", "Text": _bar(0.0)}),
                ui.HGroup([ui.HGap(0, 1), ui.Button({"ID": "Cancel", "Text": "Cancel"})]),
            ]),
        )
        timer = ui.Timer({"ID": "EdiDubTick", "Interval": int(poll_s * 1000)})
        state = {"done": False, "cancelled": False}

        def tick(ev):
            fraction, text, done = step()
            items = win.GetItems()
            items["Status"].Text = text
            items["Bar"].Text = _bar(fraction)
            if done:
                state["done"] = True
                disp.ExitLoop()

        def stop(ev):
            state["cancelled"] = True
            cancel()
            disp.ExitLoop()

        disp.On.EdiDubTick.Timeout = tick
        disp.On.Cancel.Clicked = stop
        disp.On.EdiDubProgress.Close = stop
        timer.Start()
        win.Show()
        disp.RunLoop()
        timer.Stop()
        win.Hide()
        return not state["cancelled"]


def _bar(fraction: float, width: int = 40) -> str:
    n = max(0, min(width, int(round(fraction * width))))
    return "█" * n + "░" * (width - n) + f" {int(fraction * 100)}%"


def make_progress(fusion: Any = None, bmd: Any = None) -> ConsoleProgress:
    """The UIManager window where Resolve offers one (``fusion`` and ``bmd`` from the Scripts menu), else the console."""
    if fusion is not None and bmd is not None:
        try:
            if "UIManager" in dir(fusion) or getattr(fusion, "UIManager", None) is not None:
                return UIProgress(fusion, bmd)
        except Exception:
            pass
    return ConsoleProgress()
