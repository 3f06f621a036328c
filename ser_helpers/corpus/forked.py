"""Run a function once per job, each call in its own freshly forked child process, a few children at a time.

espeak-ng keeps state between utterances, so identical bytes need a fresh process per utterance. A
`multiprocessing.Pool(maxtasksperchild=1)` gives that, but replaces its workers through a handler thread and
queues: on the default corpus (4,180 clips, 2 cores) it took 43 s against 30 s for this plain fork loop, with
byte-identical wavs. Each child gets its job by fork (nothing is pickled on the way in), sends back the pickled
result (or exception) through a pipe and leaves with `os._exit` (no atexit handlers, no flushing of the
parent's buffers). POSIX only, as `fork` is. Taught in notebook 00 (`00_make_demo_corpus.ipynb`).
"""
from __future__ import annotations

import os
import pickle
import selectors
import signal
from typing import Callable, Iterable, Iterator

from ..common import SERError


def _child(fn: Callable, job, write_fd: int) -> None:
    """In the forked child: run `fn(job)`, send ("ok", result) or ("error", exception), exit without cleanup."""
    code = 0
    try:
        try:
            payload = pickle.dumps(("ok", fn(job)))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there
            code = 1
            try:
                payload = pickle.dumps(("error", exc))
            except Exception:  # noqa: BLE001 - an exception that does not pickle: its text
                payload = pickle.dumps(("error", SERError(f"{type(exc).__name__}: {exc}")))
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
    finally:
        os._exit(code)


def run_forked(fn: Callable, jobs: Iterable, workers: int = 2, describe: Callable = repr) -> Iterator:
    """Yield `fn(job)` for every job, in completion order, each computed in a fresh child forked from this
    process (so it sees this process's state as it is now: load what every job needs before calling).
    At most `workers` children run at once. A job that raises re-raises here; a child that dies without an
    answer (killed, crashed in C) raises SERError naming `describe(job)`. Leaving early kills the children."""
    workers = max(1, int(workers))
    pending = iter(jobs)
    active: dict[int, tuple[int, object, bytearray]] = {}  # read fd -> (pid, job, bytes received)
    selector = selectors.DefaultSelector()
    try:
        while True:
            while len(active) < workers:
                job = next(pending, _END)
                if job is _END:
                    break
                read_fd, write_fd = os.pipe()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child (coverage does not follow os._exit)
                    os.close(read_fd)
                    _child(fn, job, write_fd)
                os.close(write_fd)
                active[read_fd] = (pid, job, bytearray())
                selector.register(read_fd, selectors.EVENT_READ)
            if not active:
                return
            for key, _ in selector.select():
                fd = key.fd
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    active[fd][2].extend(chunk)
                    continue
                selector.unregister(fd)
                os.close(fd)
                pid, job, data = active.pop(fd)
                _, status = os.waitpid(pid, 0)
                if not data:
                    raise SERError(f"{describe(job)}: the child process died without an answer "
                                   f"(wait status {status})")
                kind, value = pickle.loads(bytes(data))
                if kind == "error":
                    raise value
                yield value
    finally:
        for fd, (pid, _job, _data) in active.items():
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
            try:
                selector.unregister(fd)
            except (KeyError, ValueError):
                pass
            os.close(fd)
        selector.close()


_END = object()
