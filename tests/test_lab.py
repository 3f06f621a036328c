"""`make lab`: JupyterLab starts headless on loopback and lists the curriculum through its REST API."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_lists_notebooks(tmp_path):
    port = _free_port()
    token = "sertest"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip", "127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--notebook-dir", str(ROOT / "notebooks"),
         f"--ServerApp.runtime_dir={tmp_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        listing = None
        while time.time() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/contents", params={"token": token}, timeout=2)
                if r.status_code == 200:
                    listing = r.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer"
        names = {item["name"] for item in listing["content"]}
        expected = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
        assert expected and expected <= names
        specs = httpx.get(f"http://127.0.0.1:{port}/api/kernelspecs", params={"token": token}, timeout=5).json()
        assert "python3" in specs["kernelspecs"]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
