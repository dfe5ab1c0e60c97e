"""The service manager an update restarts through, and how it tells whether the new version came up.

"Came up" means: it said ``READY=1`` within ``ready_timeout_s`` (the agent does once every component
is running) and then kept running for ``settle_s``. Two managers:

- :class:`SystemdService` (production): ``systemctl restart UNIT`` (for ``Type=notify`` it returns
  once the unit is READY, or fails when it exits or misses ``TimeoutStartSec``), then ``systemctl
  show`` until ``settle_s`` has passed: still ``active``/``running``, same main PID, no new restart;
- :class:`ChildService` (tests, or a board without systemd): the manager is this process. It runs
  ``edge-agent run --config FILE`` as a child with ``$NOTIFY_SOCKET`` on a socket it listens on, as
  systemd would, and stops the child with SIGTERM on :meth:`ChildService.stop`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outcome:
    """Whether the restarted service came up, and what was seen."""

    ready: bool
    detail: str


class Service(Protocol):
    """What an update needs of the service manager."""

    def restart(self, *, ready_timeout_s: float, settle_s: float) -> Outcome:
        """Restart the service; whether the new process became READY and stayed up."""
        ...

    def stop(self) -> None:
        """Stop what this manager started (nothing for systemd, which keeps the service)."""
        ...


def _systemctl(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=timeout, check=False)


class SystemdService:
    """The real unit, through ``systemctl`` (see the module docstring)."""

    def __init__(self, unit: str) -> None:
        self.unit = unit

    def _show(self) -> dict[str, str]:
        done = _systemctl("show", "-p", "ActiveState,SubState,MainPID,NRestarts", self.unit, timeout=10)
        return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)

    def restart(self, *, ready_timeout_s: float, settle_s: float) -> Outcome:
        """``systemctl restart``, then watch the unit for ``settle_s``."""
        try:
            done = _systemctl("restart", self.unit, timeout=ready_timeout_s + 10)
        except subprocess.TimeoutExpired:
            return Outcome(False, f"{self.unit} not ready within {ready_timeout_s:g} s")
        if done.returncode != 0:
            return Outcome(
                False, f"systemctl restart {self.unit}: {done.stderr.strip()[-300:] or done.returncode}"
            )
        first = self._show()
        deadline = time.monotonic() + settle_s
        while True:
            now = self._show()
            if now.get("ActiveState") != "active" or now.get("SubState") != "running":
                return Outcome(
                    False, f"{self.unit} {now.get('ActiveState')}/{now.get('SubState')} after READY"
                )
            if now.get("MainPID") != first.get("MainPID") or now.get("NRestarts") != first.get("NRestarts"):
                return Outcome(False, f"{self.unit} restarted after READY (pid {now.get('MainPID')})")
            if time.monotonic() >= deadline:
                return Outcome(True, f"{self.unit} ready and running (pid {now.get('MainPID')})")
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def stop(self) -> None:
        """The unit stays running under systemd."""


class ChildService:
    """``edge-agent run`` as a child of this process, watched through its own notify socket."""

    def __init__(self, config: Path, *, argv: list[str] | None = None) -> None:
        self.config = config
        self.argv = argv or [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)]
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="edge-agent-notify-")
        self._log = Path(self._dir.name) / "child.log"

    def _start(self, sock_path: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        with self._log.open("ab") as log:
            return subprocess.Popen(self.argv, env=env, stdout=subprocess.DEVNULL, stderr=log)

    def _tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1][-300:] if lines else ""

    def restart(self, *, ready_timeout_s: float, settle_s: float) -> Outcome:
        """Stop the current child (if any), start a new one, wait for READY=1, then watch it settle."""
        self.stop()
        sock_path = os.path.join(self._dir.name, "notify")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(sock_path)
            proc = self.proc = self._start(sock_path)
            deadline = time.monotonic() + ready_timeout_s
            while True:
                if proc.poll() is not None:
                    return Outcome(
                        False, f"exited with status {proc.returncode} before READY: {self._tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    return Outcome(False, f"not ready within {ready_timeout_s:g} s")
                readable, _, _ = select.select([sock], [], [], min(left, 0.2))
                if readable and b"READY=1" in sock.recv(4096).split(b"\n"):
                    break
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            if proc.poll() is not None:
                return Outcome(False, f"exited with status {proc.returncode} after READY: {self._tail()}")
            time.sleep(0.1)
        return Outcome(True, f"ready and running (pid {proc.pid})")

    def stop(self) -> None:
        """SIGTERM the child and wait for it (SIGKILL after 30 s)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """Stop the child and remove the notify socket's directory."""
        self.stop()
        self._dir.cleanup()
