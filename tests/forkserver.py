"""Run ``scimward`` as a process of its own, without paying for its start-up on every call.

A command-line test wants what a user gets: a process with its own pid, environment, working
directory, arguments and standard streams, its exit code, and a traceback on stderr if one escaped.
Starting Python and importing SQLAlchemy, Typer and a command costs about 0.3-0.5 s of CPU a call,
which was most of the suite's CPU. So each pytest worker starts one fork server (this module run as
a program, ``python -m tests.forkserver SOCKET``) that imports the command line once, and each call
forks it: the child takes the caller's files as its standard streams, its environment, working
directory and ``sys.argv``, runs ``scimward.cli.entry.main`` as the installed ``scimward`` script
does, and exits with its code. The server runs nothing else and starts no thread, so a fork of it is
a fresh interpreter but for the imports.

What a fork cannot give stays with a real process: ``SCIMWARD_TEST_EXEC=1`` makes every call
``exec`` the installed script (as it is where the server cannot run: no ``fork``, or no
``os.pidfd_open``, which is Linux's); the tests of the process boundary itself always do (the installed
script and ``python -m scimward``, Ctrl-C while the command line is imported, what ``--help``
imports, ``serve`` and ``worker`` stopped by signals: ``tests/test_cli_errors.py``,
``tests/test_cli_speed.py``, ``tests/test_serve_logs.py``, ``tests/test_worker_kill.py``); and
``tests/test_forkserver.py`` runs the same commands both ways and compares what they printed.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

SCIMWARD = str(Path(sys.executable).parent / "scimward")
EXEC_ENV = "SCIMWARD_TEST_EXEC"
ROOT = Path(__file__).resolve().parent.parent

#: What every command imports, imported once by the server (``cli.main.COMMANDS`` adds the commands').
PRELOAD = (
    "scimward.cli.main",
    "scimward.cli.exits",
    "scimward.store.database",
    "scimward.policy.plans",
    "scimward.scim.errors",
    "scimward.sync.errors",
    "aiosqlite",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "psycopg",
    "psycopg_pool",
    "sqlalchemy.dialects.postgresql.psycopg",
    "alembic.command",
)

_HEADER = struct.Struct("!I")


# -- the caller's side --------------------------------------------------------------------------------


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([SCIMWARD, *args], capture_output=True, text=True, ...)``, forked from the server."""
    argv = [SCIMWARD, *args]
    environ = dict(os.environ if env is None else env)
    if os.environ.get(EXEC_ENV, "") not in {"", "0"} or not hasattr(os, "pidfd_open"):  # pidfd: Linux 5.3+
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=environ, input=input or "", cwd=cwd
        )
    return _server().run(argv, environ, input or "", str(cwd or os.getcwd()), timeout)


class _ForkServer:
    """This pytest worker's fork server: started on the first call, stopped when the worker exits."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="scimward-forkserver-")
        self.path = os.path.join(self._dir.name, "socket")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SCIMWARD_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", self.path],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the scimward fork server did not start (it said {ready!r})")
        atexit.register(self.stop)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._dir.cleanup()

    def run(
        self, argv: list[str], env: dict[str, str], input: str, cwd: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        with (
            tempfile.TemporaryFile("w+", encoding="utf-8") as stdin,
            tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stdout,
            tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr,
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn,
        ):
            stdin.write(input)
            stdin.flush()
            stdin.seek(0)
            conn.connect(self.path)
            request = json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode()
            socket.send_fds(conn, [_HEADER.pack(len(request)) + request], [f.fileno() for f in (stdin, stdout, stderr)])
            conn.settimeout(timeout)
            with conn.makefile("rb") as answers:  # the child's pid, then its exit code: a line each
                pid = int(_line(answers))
                try:
                    code = int(_line(answers))
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired(argv, timeout, _read(stdout), _read(stderr)) from None
            return subprocess.CompletedProcess(argv, code, _read(stdout), _read(stderr))


def _line(answers: IO[bytes]) -> str:
    line = answers.readline()
    if not line.endswith(b"\n"):
        raise RuntimeError("the scimward fork server closed the connection")
    return line.decode()


def _read(file: IO[str]) -> str:
    file.seek(0)
    return file.read()


_lock = threading.Lock()
_instance: _ForkServer | None = None


def _server() -> _ForkServer:
    global _instance
    with _lock:
        if _instance is None or _instance.process.poll() is not None:
            _instance = _ForkServer()
        return _instance


# -- the server ---------------------------------------------------------------------------------------


def _preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    from scimward.cli.main import COMMANDS

    for command in COMMANDS.values():
        importlib.import_module(command.target.partition(":")[0])


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    (length,) = _HEADER.unpack(data[: _HEADER.size])
    body = data[_HEADER.size :]
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            raise ConnectionError("the caller hung up")
        body += chunk
    request: dict[str, Any] = json.loads(body)
    return request, fds


def _child(request: dict[str, Any], fds: list[int], inherited: list[int]) -> None:
    """In the forked child: become the command's process, run it, exit. Never returns."""
    code = 1
    try:
        for fd in inherited:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        script = types.ModuleType("__main__")  # as the installed script's: click names the program from it
        script.__file__ = sys.argv[0]
        sys.modules["__main__"] = script
        for number in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        code = _main()
    finally:
        os._exit(code)


def _main() -> int:
    """``scimward.cli.entry.main`` as the interpreter runs the installed script, down to its exit code."""
    from scimward.cli.entry import main

    code = 0
    try:
        main()
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 -- what the interpreter does with an exception nobody caught
        traceback.print_exc()
        code = 1
    shutdown = getattr(threading, "_shutdown", None)  # wait for non-daemon threads, as finalisation does
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return code


def serve(path: str) -> None:
    """Import the command line, then fork a child per request until the parent goes away."""
    _preload()
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, the caller's connection)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    while os.getppid() == parent:
        for key, _ in selector.select(timeout=1):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (OSError, ValueError):
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                inherited = [listener.fileno(), selector.fileno(), conn.fileno(), *children]
                pid = os.fork()
                if pid == 0:
                    _child(request, fds, inherited)
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, conn)
                selector.register(pidfd, selectors.EVENT_READ)
                _send(conn, str(pid))
            else:
                pidfd = int(key.fd)
                selector.unregister(pidfd)
                pid, conn = children.pop(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                _send(conn, str(os.waitstatus_to_exitcode(status)))
                conn.close()


def _send(conn: socket.socket, line: str) -> None:
    with contextlib.suppress(OSError):  # the caller gave up (a timeout): nothing to tell
        conn.sendall(line.encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1])
