"""
The signals that stop a foreground emulator (SIGINT, SIGTERM), recorded
from before it serves to after, so none is lost in any phase of start-up.

Python's own SIGINT handler raises `KeyboardInterrupt` wherever the main
thread happens to be; one raised in a weakref callback or a ``__del__``
(an import, the garbage collector) is printed and dropped, and the server
then serves on. Here a signal is first written down, then acted on.

Light on purpose (the standard library only): the command line installs
it before it imports uvicorn and builds the sample data.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Final, Protocol

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class StopRequested(BaseException):
    """Raised by the handler while `StopSignals.interrupting` is set."""


class _Stoppable(Protocol):
    should_exit: bool


class StopSignals:
    """
    While entered (in the main thread; elsewhere a no-op), SIGINT and
    SIGTERM are recorded in `received` instead of raising. Then:

    - *server* set (a uvicorn server): it is told to exit, whether it
      serves yet or not (uvicorn's own handlers, while it serves, record
      the signal and raise it again once stopped: it reaches this one);
    - else `interrupting` set: `StopRequested` is raised too, to cut short
      what comes before serving (imports, sample data). If something
      swallows it, `received` still tells the caller not to serve.

    On exit, the handlers found on entry are put back.
    """

    def __init__(self, *, interrupting: bool = False) -> None:
        self.received: signal.Signals | None = None
        self.interrupting = interrupting
        self.server: _Stoppable | None = None
        self._previous: dict[signal.Signals, Any] = {}

    @property
    def stopped(self) -> bool:
        return self.received is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
        server = self.server
        if server is not None:
            server.should_exit = True
        elif self.interrupting:
            raise StopRequested

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            try:
                for signum in STOP_SIGNALS:
                    self._previous[signum] = signal.signal(signum, self._handle)
            except BaseException:  # StopRequested, from the first one installed
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Nothing raises from here on: the stop is recorded, not acted on.
        self.interrupting = False
        while self._previous:
            signum, handler = self._previous.popitem()
            signal.signal(signum, handler)
