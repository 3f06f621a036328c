"""Running the service as a subprocess on loopback: free_port, ServerProcess, start_server.

Taught in notebook 05 (05_serve_ser_api.ipynb); used by tests and bench/.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

from ..common import SERError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the parent dies (no orphaned servers)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            import signal
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


class ServerProcess:
    """A `uvicorn ser_helpers.service:app` subprocess on loopback; use as a context manager (always stopped)."""

    def __init__(self, env: Mapping[str, str], host: str = "127.0.0.1", port: int | None = None,
                 startup_timeout: float = 120.0, log_path: str | Path | None = None, use_cli: bool = False,
                 cli_args: tuple[str, ...] = ()):
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.startup_timeout = startup_timeout
        self._env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        self._env.setdefault("PYTHONUNBUFFERED", "1")
        self._log = open(log_path, "w+b") if log_path else __import__("tempfile").TemporaryFile()  # noqa: SIM115
        self.proc: subprocess.Popen | None = None
        self.use_cli = use_cli          # run `ser serve` (with cli_args) instead of `uvicorn ser_helpers.service:app`
        self.cli_args = tuple(cli_args)

    def start(self) -> "ServerProcess":
        import httpx
        if self.use_cli:
            cmd = [sys.executable, "-m", "ser_helpers.cli", "serve", "--host", self.host, "--port", str(self.port),
                   "--log-level", "warning", *self.cli_args]
        else:
            cmd = [sys.executable, "-m", "uvicorn", "ser_helpers.service:app", "--host", self.host,
                   "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, env=self._env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=str(Path(__file__).resolve().parent.parent), preexec_fn=_die_with_parent)
        atexit.register(self.stop)  # a notebook kernel or test run that ends also ends its server
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SERError(f"the SER service exited during start-up (code {self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2, trust_env=False).status_code == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise SERError(f"the SER service did not answer /health within {self.startup_timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, n_chars: int = 4000) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-n_chars:]

    def stop(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        return self.proc.returncode if self.proc is not None else None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._log.close()


def start_server(model_dir: str | Path | None = None, host: str = "127.0.0.1", port: int | None = None,
                 startup_timeout: float = 120.0, **env) -> ServerProcess:
    """Start the service as a subprocess (SER_HF_MODEL_DIR=model_dir plus any SER_* given as keywords,
    e.g. SER_HF_DEVICE="cpu"), wait for /health, return the running ServerProcess (stop it when done)."""
    full_env = {"SER_ENGINE": "hf_wav2vec2", "SER_HF_DEVICE": "cpu"}
    if model_dir is not None:
        full_env["SER_HF_MODEL_DIR"] = str(Path(model_dir).resolve())
    full_env.update({k: str(v) for k, v in env.items()})
    return ServerProcess(full_env, host=host, port=port, startup_timeout=startup_timeout).start()
