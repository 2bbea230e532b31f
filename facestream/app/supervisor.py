"""Child processes kept alive: each ``facestream`` subcommand of a stack runs as a child with its own log;
one that exits is started again after a bounded, growing delay, and the reason is logged.

Used by ``facestream up``. Stopping sends SIGTERM to every child (workers finish the frames in hand,
producers stop capturing), waits, then kills what is left.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

#: Restart delays: doubling from FIRST_DELAY_S to MAX_DELAY_S; a child that ran STEADY_S starts over at 1 s.
FIRST_DELAY_S, MAX_DELAY_S, STEADY_S = 1.0, 30.0, 60.0


@dataclass
class Child:
    """One supervised process: ``facestream <args>``, logging to ``log``."""

    name: str
    args: list[str]
    log: Path
    what: str = ""  # one line for the status output (never a credential)
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    due_at: float = 0.0  # when to start it again (after an exit)
    delay_s: float = FIRST_DELAY_S
    _log: IO[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def last_line(self) -> str:
        """The last line the child logged: usually why it stopped."""
        try:
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1].strip()[:300] if lines else ""


class Supervisor:
    """Starts children, restarts those that exit (with backoff), stops them all."""

    def __init__(self, children: list[Child], env: dict[str, str], say: Callable[[str], None] = print):
        self.children, self.env, self.say = children, env, say

    def start(self, child: Child) -> None:
        child.log.parent.mkdir(parents=True, exist_ok=True)
        if child._log is not None:
            child._log.close()
        child._log = child.log.open("a")
        child.proc = subprocess.Popen([sys.executable, "-m", "facestream", *child.args], env=self.env,
                                      stdout=child._log, stderr=subprocess.STDOUT, start_new_session=True)
        child.started_at = time.monotonic()
        self.say(f"{child.name:16} pid {child.proc.pid:<7} {child.what}  (log: {child.log})")

    def start_all(self) -> None:
        for child in self.children:
            self.start(child)

    def check(self) -> None:
        """Restart every child that has exited and whose delay has passed; log each exit once."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            if child.due_at <= child.started_at:  # a new exit: decide when to try again
                child.delay_s = FIRST_DELAY_S if now - child.started_at >= STEADY_S else child.delay_s
                child.due_at = now + child.delay_s
                self.say(f"{child.name:16} exited with {child.proc.returncode}: {child.last_line() or '(no output)'}; "
                         f"restart {child.restarts + 1} in {child.delay_s:.0f} s")
                child.delay_s = min(MAX_DELAY_S, child.delay_s * 2)
            elif now >= child.due_at:
                child.restarts += 1
                self.start(child)

    def run(self, stopped: Callable[[], bool], interval_s: float = 0.5) -> None:
        """Check the children every ``interval_s`` until ``stopped()`` says so."""
        while not stopped():
            self.check()
            time.sleep(interval_s)

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM to every child, then SIGKILL to those still running after ``grace_s``."""
        live = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for c in live:
            c.proc.terminate()
        deadline = time.monotonic() + grace_s
        for c in live:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{c.name:16} did not stop within {grace_s:.0f} s: killed")
                c.proc.kill()
                c.proc.wait()
        for c in self.children:
            if c._log is not None:
                c._log.close()
        self.say(f"stopped {len(live)} processes")
