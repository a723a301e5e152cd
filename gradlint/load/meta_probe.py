"""Building a model on the meta device cheaply and without side effects: the size probe gradlint
runs before it builds a model for real (load._construct), so that a 70B-parameter config never
touches RAM, and so that the probe cannot reach outside (a checkpoint of meta tensors written,
a process started, a download): a constructor that tries is stopped, and built for real once.

A meta tensor has no data, yet torch sends many ops on it (elementwise arithmetic, ``cat``,
``stack``, ``triu``, random fills) through Python reference kernels (torch._refs) wrapped by
``torch._compile._disable_dynamo``, whose first call imports torch._dynamo, and sympy and
parts of inductor with it: ~0.55 s per worker, for a positional table or a causal mask in a
constructor, only to mark a kernel as not traceable by a compiler that nothing runs here.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode


class MetaDrawsNothing(TorchFunctionMode):
    """On the meta device a random init has nothing to fill, yet torch's meta ``normal_``
    (nn.Embedding's init, xavier_normal_, HF's ``weight.data.normal_``) goes through
    torch._refs, and ``uniform_`` (every Linear's and Conv's default init) through a Python
    decomposition (~35 us a call: a third of sizing a 1,000-layer MLP). These calls return the
    tensor as they would, without that detour."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _DRAWS:
            tensor = args[0] if args else kwargs.get("tensor")  # nn.init passes it by name
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


_DRAWS = frozenset({
    torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.log_normal_,
    torch.Tensor.exponential_, torch.Tensor.cauchy_, torch.Tensor.geometric_,
    torch.Tensor.random_, torch.Tensor.bernoulli_, torch.Tensor.erfinv_,
    # nn.init's own torch-function entry points: the device mode hands these on whole
    nn.init.normal_, nn.init.uniform_, nn.init.xavier_normal_, nn.init.kaiming_normal_,
    nn.init.kaiming_uniform_, nn.init.trunc_normal_,
})

_DYNAMO = "torch._dynamo"


class _DynamoStandIn(types.ModuleType):
    """What ``import torch._dynamo`` finds while the probe runs: ``disable`` hands the kernel
    back as it is (nothing is compiled on meta) and remembers it. Any other name, or a
    submodule (``__path__``), imports the real module where torch's own import would have
    happened, and it takes the stand-in's place; other dunders are missing, as on a module
    without them (``inspect.getmodule`` asks every module in sys.modules for ``__file__``:
    importing dynamo there, in the middle of someone else's import, can be circular)."""

    def __init__(self) -> None:
        super().__init__(_DYNAMO)
        self.disabled: list[Callable[..., Any]] = []

    def disable(self, fn: Callable[..., Any] | None = None, recursive: bool = True,
                **kwargs: Any) -> Any:
        if fn is None:  # used as @disable(recursive=...)
            return lambda f: self.disable(f, recursive, **kwargs)
        self.disabled.append(fn)
        return fn

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__path__":
            raise AttributeError(name)
        if sys.modules.get(_DYNAMO) is self:
            del sys.modules[_DYNAMO]
        return getattr(importlib.import_module(_DYNAMO), name)


@contextlib.contextmanager
def dynamo_left_out(enabled: bool = True) -> Iterator[None]:
    """While the probe runs, torch's lazy ``import torch._dynamo`` finds a stand-in; after it,
    the kernels forget what the stand-in gave them, so that a later real import wraps them as
    torch intends. Nothing changes where torch._dynamo is already imported."""
    if not enabled or _DYNAMO in sys.modules:
        yield
        return
    stand_in = _DynamoStandIn()
    sys.modules[_DYNAMO] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(_DYNAMO) is stand_in:
            del sys.modules[_DYNAMO]
        if vars(torch).get("_dynamo") is stand_in:
            delattr(torch, "_dynamo")
        for fn in stand_in.disabled:  # torch caches the disabled kernel on the function
            if getattr(fn, "__dict__", {}).get("__dynamo_disable") is fn:
                delattr(fn, "__dynamo_disable")


# ------------------------------------------------------------------------ no outside effects

class OutsideEffect(BaseException):
    """A constructor run on the meta device tried to reach outside its process. A
    BaseException, so that the user's ``except Exception`` cannot carry on without it."""


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# audit events (the stdlib's table of them) that change something outside the process
_EFFECTS = {
    "subprocess.Popen": "start a process", "os.system": "start a process",
    "os.exec": "start a process", "os.posix_spawn": "start a process",
    "os.spawn": "start a process", "os.fork": "fork", "os.forkpty": "fork",
    "pty.spawn": "start a process", "os.startfile": "start a process",
    "socket.connect": "open a network connection", "socket.bind": "open a network socket",
    "socket.sendto": "send over the network", "socket.sendmsg": "send over the network",
    "socket.getaddrinfo": "look up a host", "socket.gethostbyname": "look up a host",
    "urllib.Request": "download", "http.client.connect": "open a network connection",
    "ftplib.connect": "open a network connection", "smtplib.connect": "send mail",
    "webbrowser.open": "open a browser", "sqlite3.connect": "open a database",
    "os.remove": "delete a file", "os.rmdir": "delete a folder", "os.rename": "rename a file",
    "os.mkdir": "create a folder", "os.link": "create a link", "os.symlink": "create a link",
    "os.truncate": "truncate a file", "os.chmod": "change a file's mode",
    "os.chown": "change a file's owner", "os.utime": "touch a file",
    "os.setxattr": "change a file's attributes", "os.removexattr": "change a file's attributes",
    "shutil.copyfile": "copy a file", "shutil.copymode": "change a file's mode",
    "shutil.copystat": "change a file's attributes", "shutil.copytree": "copy a folder",
    "shutil.move": "move a file", "shutil.rmtree": "delete a folder",
    "shutil.make_archive": "write an archive", "shutil.unpack_archive": "unpack an archive",
    "os.kill": "signal a process", "os.killpg": "signal a process",
    "signal.pthread_kill": "signal a thread",
}


def _effect(event: str, args: tuple[Any, ...]) -> str | None:
    """What an audit event would do to the outside, in words; None for nothing."""
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        return f"open {path!r} for writing" if writes and path != os.devnull else None
    what = _EFFECTS.get(event)
    if what is None:
        return None
    if event == "os.mkdir" and args and _in_temp(args[0]):
        return None  # torch's compiler caches make their folders on import; no data written
    shown = f" ({args[0]!r})" if args and isinstance(args[0], (str, bytes, os.PathLike)) else ""
    return what + shown[:200]


def _in_temp(path: Any) -> bool:
    try:
        folder = os.path.realpath(tempfile.gettempdir())
        return os.path.realpath(os.fsdecode(path)).startswith(folder + os.sep)
    except (TypeError, ValueError):
        return False


class _Guard:
    tried: list[OutsideEffect] | None = None  # set while a constructor runs guarded
    hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _Guard.tried is None:
        return
    what = _effect(event, args)
    if what is not None and not _importing():
        refused = OutsideEffect(what)  # kept: its traceback shows the user's line even when
        _Guard.tried.append(refused)  # the user's code catches it
        raise refused


def _importing() -> bool:
    """A module is being imported (a constructor's lazy ``from transformers import ...``): its
    effects (``ctypes`` running ldconfig) are the import's, not the constructor's, and building
    for real would import it the same way."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def outside_refused() -> Iterator[list[OutsideEffect]]:
    """While active, anything that would write a file, start a process, open a connection or
    signal a process raises ``OutsideEffect`` instead; the list holds each one raised, even
    when user code caught it. Python audit hooks cannot be removed, so the hook is
    added once and does nothing outside this block."""
    if not _Guard.hooked:
        # tempfile finds its folder by writing a file there, once per process; torch's lazy
        # imports (torch._dynamo) ask for it: do it now, not as the constructor's effect
        tempfile.gettempdir()
        sys.addaudithook(_audit)
        _Guard.hooked = True
    tried: list[OutsideEffect] = []
    outer, _Guard.tried = _Guard.tried, tried
    try:
        yield tried
    finally:
        _Guard.tried = outer
