"""A real JupyterLab server for browser tests, started as a subprocess and torn down with its group.

``running_lab(root_dir)`` is a context manager yielding a :class:`LabServer` (``url``, ``token``,
``port``, ``log_path``). The server listens on 127.0.0.1 only, on a free port, with a random token, and
is configured to make no outbound requests: no news feed, no update check, the read-only extension
manager (no PyPI), and Jupyter config/data/runtime/settings/workspace directories isolated under a
private temp directory so a user's own Lab state (open tabs, settings) never leaks into a test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LabServer", "LabStartError", "free_port", "lab_command", "running_lab"]


class LabStartError(RuntimeError):
    """The JupyterLab server did not answer ``/api/status`` in time (one line: last log line, log path)."""


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab server.

    Attributes:
        port: TCP port on 127.0.0.1.
        token: The random auth token.
        root_dir: The server's root directory (notebooks are opened relative to it).
        log_path: File receiving the server's stdout and stderr.
    """

    port: int
    token: str
    root_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8888``."""
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, notebook: str) -> str:
        """URL opening ``notebook`` (relative to ``root_dir``) in the Lab UI, token included."""
        return f"{self.url}/lab/tree/{notebook}?token={self.token}"

    def api(self, path: str, timeout: float = 5.0) -> object:
        """GET ``/api/<path>`` with the token and return the decoded JSON."""
        req = urllib.request.Request(f"{self.url}/api/{path}",
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - localhost only
            return json.loads(resp.read().decode())

    def wait_for_idle_kernel(self, timeout: float = 90.0) -> dict[str, object]:
        """Wait until a kernel is running, has a client connected and is idle; return its model.

        Raises:
            TimeoutError: No connected idle kernel within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        kernels: object = []
        while time.monotonic() < deadline:
            try:
                kernels = self.api("kernels")
            except (urllib.error.URLError, OSError, ValueError):
                # jupyter_server answers 500 while a kernel is still starting (no last_activity yet).
                kernels = []
            for k in kernels if isinstance(kernels, list) else []:
                if k.get("execution_state") == "idle" and int(k.get("connections", 0)) > 0:
                    return k
            time.sleep(0.25)
        raise TimeoutError(f"no connected idle kernel within {timeout:.0f}s (kernels: {kernels})")

    def log_text(self) -> str:
        """The server log so far (the token is masked)."""
        try:
            return self.log_path.read_text(errors="replace").replace(self.token, "<token>")
        except OSError:
            return ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lab_command(root_dir: Path, port: int, token: str) -> list[str]:
    """The ``python -m jupyterlab`` command line for an offline, localhost-only server."""
    return [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--ServerApp.root_dir={root_dir}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.allow_remote_access=False",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.collaborative=False",
    ] + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])


def _isolated_env(home: Path) -> dict[str, str]:
    """The environment for the server: Jupyter's mutable directories moved under ``home``."""
    env = dict(os.environ)
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
        "IPYTHONDIR": home / "ipython",
    }
    for key, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[key] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    # Lab's own frontend setting: never fetch the news feed nor check for updates (and do not ask).
    notification = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env.pop("JUPYTER_TOKEN", None)
    # All of this traffic is localhost: never route it through a proxy.
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(proxy, None)
    return env


def _last_line(text: str) -> str:
    """The last non-empty line of ``text`` (a server log), shortened."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and everything it started (kernels) by signalling its process group."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            # Kernels live in the same group; make sure none outlives the server.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running_lab(root_dir: Path, *, home: Path | None = None,
                start_timeout: float = 90.0) -> Iterator[LabServer]:
    """Start JupyterLab serving ``root_dir``; yield once ``/api/status`` answers; stop it on exit.

    Args:
        root_dir: Directory the server serves (``--ServerApp.root_dir``).
        home: Directory for the server's log and its isolated Jupyter state (a fresh temp dir when
            ``None``; it is then removed on exit unless the start failed).
        start_timeout: Seconds to wait for ``/api/status``.

    Raises:
        LabStartError: The server exited or did not answer in time.
    """
    own_home = home is None
    home = Path(tempfile.mkdtemp(prefix="hf-lab-home-")) if home is None else Path(home)
    home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    port = free_port()
    server = LabServer(port=port, token=token, root_dir=Path(root_dir), log_path=home / "server.log")
    with open(server.log_path, "wb") as log:
        proc = subprocess.Popen(lab_command(Path(root_dir), port, token), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root_dir,
                                env=_isolated_env(home), start_new_session=True)
    started = False
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise LabStartError(f"jupyter lab exited with {proc.returncode} "
                                    f"({_last_line(server.log_text())}); full log: {server.log_path}")
            try:
                status = server.api("status", timeout=2.0)
                if isinstance(status, dict) and "started" in status:
                    break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise LabStartError(f"jupyter lab did not answer /api/status within {start_timeout:.0f}s "
                                    f"({_last_line(server.log_text())}); full log: {server.log_path}")
            time.sleep(0.25)
        started = True
        yield server
    finally:
        _stop(proc)
        if own_home and started:  # a failed start keeps its log for the error message's path
            shutil.rmtree(home, ignore_errors=True)
