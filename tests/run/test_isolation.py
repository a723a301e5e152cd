"""Nothing one file does reaches another file, the user's tree or the machine after the run.

Each case runs the installed command with a marker in its environment; every test checks the
exit code and diagnostics, that no file changed but those the case expects its own code to
write, and that 2 s after gradlint exits no process carrying the marker is alive (orphans are
re-parented, so gradlint's own children alone would not show them)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e  # also run on torch 2.13 (.ci/run)

GOOD = """
import torch
import torch.nn as nn


class Good(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))
"""


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file below ``root`` (but ``skip``) -> hash of its bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in skip:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def marked(mark: str) -> list[int]:
    """Live processes whose environment carries ``mark``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rpartition(b")")[2].split()[0]
        except OSError:
            continue
        if f"GRADLINT_TEST_MARK={mark}".encode() in env and state != b"Z":
            found.append(int(entry))
    return found


def assert_none_left(mark: str) -> None:
    """None alive 2 s after exit (a process can only be started by a live one)."""
    end = time.monotonic() + 2.0
    while marked(mark) and time.monotonic() < end:
        time.sleep(0.1)
    left = marked(mark)
    for pid in left:  # do not leave them to the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left behind: {left}"


class Case:
    """A folder of files, gradlint run on it, and the checks every case shares."""

    def __init__(self, tmp_path: Path, files: dict[str, str], writes: tuple[str, ...] = ()):
        self.root = tmp_path / "case"
        self.root.mkdir(parents=True)
        for name, text in {"zz_good.py": GOOD, **files}.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        self.writes = writes  # files the case's own code is expected to write
        self.before = tree(self.root, writes)
        self.mark = uuid.uuid4().hex

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, GRADLINT_TEST_MARK=self.mark, **extra)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # gradlint must not write bytecode itself
        return env

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["gradlint", *args], cwd=self.root, env=self.env(**env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, *args: str, code: int | None = None, timeout: float = 300
            ) -> tuple[dict[str, Any], str]:
        proc = subprocess.run(["gradlint", *args, "--format", "json"], cwd=self.root,
                              env=self.env(), capture_output=True, text=True, timeout=timeout)
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        self.after()
        if code is not None:
            assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
        return json.loads(proc.stdout), proc.stderr

    def after(self) -> None:
        assert tree(self.root, self.writes) == self.before
        assert_none_left(self.mark)


def model(doc: dict[str, Any], end: str) -> dict[str, Any]:
    (found,) = [m for m in doc["models"] if m["target"].endswith(end)]
    return found


def codes(doc: dict[str, Any], file_end: str) -> list[str]:
    return sorted(d["code"] for d in doc["diagnostics"] if d["file"].endswith(file_end))


# ----------------------------------------------------------------- 1. state between files

LAYERS = """
import torch.nn as nn


def make(width):
    return nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.{act}())
                           for _ in range({depth})])
"""

USES_LAYERS = """
import torch.nn as nn
from layers import make


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = make(16)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        return self.head(self.body(x))
"""


def test_a_sibling_module_of_the_same_name_is_each_files_own(tmp_path: Path) -> None:
    # each model.py imports ``layers`` from its own folder: the first import must not be
    # what the second file gets (the reused worker reported b with a's ReLU layers)
    case = Case(tmp_path, {"a/layers.py": LAYERS.format(act="ReLU", depth=2),
                           "a/model.py": USES_LAYERS,
                           "b/layers.py": LAYERS.format(act="Sigmoid", depth=12),
                           "b/model.py": USES_LAYERS})
    doc, _ = case.run(".", "--jobs", "1", code=1)
    assert codes(doc, "a/model.py") == []
    assert {"GL101", "GL102"} <= set(codes(doc, "b/model.py"))
    related = {r["file"] for d in doc["diagnostics"] for r in d["related"]}
    assert related == {"b/layers.py"}


DTYPE = """
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""


def test_torch_globals_do_not_reach_the_next_file(tmp_path: Path) -> None:
    alone = Case(tmp_path / "alone", {})
    first, _ = alone.run("zz_good.py", code=0)
    case = Case(tmp_path / "both", {"aa_dtype.py": DTYPE})
    both, _ = case.run(".", "--jobs", "1", code=0)
    def numbers(doc: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in layer.items() if k != "file"}
                for layer in model(doc, "zz_good.py::Good")["layers"]]

    assert numbers(both) == numbers(first)


CHDIR = """
import os

import torch.nn as nn

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "elsewhere"))


class Moved(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""


def test_a_chdir_at_import_does_not_move_the_next_file(tmp_path: Path) -> None:
    case = Case(tmp_path, {"aa/model.py": "import torch\n" + CHDIR,
                           "aa/elsewhere/model.py": "import torch\n" + CHDIR.replace(
                               "Moved", "Decoy").replace("os.chdir", "print"),
                           "bb/model.py": GOOD})
    doc, _ = case.run("aa/model.py::Moved", "bb/model.py", "--jobs", "1", code=0)
    assert model(doc, "bb/model.py::Good")["status"] == "ok"
    assert [m["target"] for m in doc["models"]] == ["aa/model.py::Moved", "bb/model.py::Good"]


# ----------------------------------------------------------------- 2. fds and signals

CLOSES_STDOUT = """
import os

import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Closer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        os.close(1)
        self.kept = open(os.path.join(HERE, "precious.txt"), "a")  # takes fd 1

    def forward(self, x):
        return self.fc(x)
"""


def test_a_closed_stdout_does_not_truncate_a_user_file(tmp_path: Path) -> None:
    case = Case(tmp_path, {"aa_closer.py": "import torch\n" + CLOSES_STDOUT,
                           "precious.txt": "keep me\n" * 100})
    # the size probe stops at the open() and the real build closes fd 1 again (EBADF, a
    # GL906 for this file); what matters is the next file and the user's precious.txt
    doc, _ = case.run(".", "--jobs", "1")
    assert (case.root / "precious.txt").read_text() == "keep me\n" * 100
    assert model(doc, "zz_good.py::Good")["status"] == "ok"
    assert codes(doc, "zz_good.py") == []


ALARM = """
import signal

import torch.nn as nn


class Alarmed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        signal.alarm(1)

    def forward(self, x):
        return self.fc(x)
"""

SLOW = """
import time

import torch.nn as nn


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        time.sleep(2)

    def forward(self, x):
        return self.fc(x)
"""


def test_a_pending_alarm_does_not_kill_the_next_file(tmp_path: Path) -> None:
    case = Case(tmp_path, {"aa_alarm.py": "import torch\n" + ALARM,
                           "bb_slow.py": "import torch\n" + SLOW})
    doc, _ = case.run(".", "--jobs", "1", code=0)
    assert model(doc, "bb_slow.py::Slow")["status"] == "ok"
    assert doc["diagnostics"] == []


# ----------------------------------------------------------------- 3. constructors run once

ONCE = """
import os
import subprocess
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
CKPT = os.path.join(HERE, "init.pt")


class Cached(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 2)
        with open(os.path.join(HERE, "built.log"), "a") as log:  # MARK
            log.write("built\\n")
        subprocess.run([sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('x')",
                        os.path.join(HERE, "spawned.log")], check=True)
        if os.path.exists(CKPT):
            self.load_state_dict(torch.load(CKPT))
        else:
            torch.save(self.state_dict(), CKPT)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))
"""


def test_constructors_with_side_effects_run_once(tmp_path: Path) -> None:
    case = Case(tmp_path, {"cached.py": ONCE},
                writes=("built.log", "spawned.log", "init.pt"))
    doc, _ = case.run("cached.py", code=0)
    assert model(doc, "cached.py::Cached")["status"] == "ok"
    assert (case.root / "built.log").read_text() == "built\n"
    assert (case.root / "spawned.log").read_text() == "x"
    import torch

    state = torch.load(case.root / "init.pt")
    assert state and all(not t.is_meta for t in state.values())


def test_on_meta_a_constructor_cannot_write(tmp_path: Path) -> None:
    case = Case(tmp_path, {"cached.py": ONCE})
    doc, _ = case.run("cached.py", "--meta", code=2)
    (diag,) = [d for d in doc["diagnostics"] if d["file"].endswith("cached.py")]
    assert diag["code"] == "GL906" and "meta device" in diag["message"]
    lines = (case.root / "cached.py").read_text().splitlines()
    assert diag["line"] == 1 + next(i for i, t in enumerate(lines) if "# MARK" in t)
    assert not any((case.root / name).exists() for name in ("built.log", "init.pt"))


# ----------------------------------------------------------------- 5. discovery


WARNS = """
import torch.nn as nn

COUNT = 0


class Stock(nn.Module):
    def __init__(self):
        global COUNT
        super().__init__()
        COUNT += 1
        globals()["ADDED_%d" % COUNT] = COUNT
        layer = nn.TransformerEncoderLayer(d_model=32, nhead=4)  # warns about batch_first
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)

    def forward(self, x):
        return self.encoder(x)


class Second(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 32)

    def forward(self, x):
        return self.fc(x)
"""


def test_names_added_while_building_do_not_stop_discovery(tmp_path: Path) -> None:
    case = Case(tmp_path, {"warns.py": "import torch\n" + WARNS})
    doc, _ = case.run("warns.py", "--input", "2x3x32")
    assert not codes(doc, "warns.py") or "GL905" not in codes(doc, "warns.py")
    assert model(doc, "warns.py::Second")["status"] == "ok"
    assert model(doc, "warns.py::Stock")["status"] == "ok"


# ----------------------------------------------------------------- 6. process lifetime

ESCAPES = """
import os
import subprocess
import sys
import time

import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Escaper(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                         start_new_session=True)
        if os.fork() == 0:  # a daemon: its parent leaves at once
            if os.fork() == 0:
                os.setsid()
                time.sleep(120)
            os._exit(0)
        open(os.path.join(HERE, "started"), "w").close()
        time.sleep({sleep})

    def forward(self, x):
        return self.fc(x)
"""


def test_processes_a_file_started_end_with_its_check(tmp_path: Path) -> None:
    case = Case(tmp_path, {"escaper.py": "import torch\n" + ESCAPES.format(sleep=0)},
                writes=("started",))
    doc, _ = case.run("escaper.py", code=0)
    assert model(doc, "escaper.py::Escaper")["status"] == "ok"


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_processes_of_a_timed_out_file_end(tmp_path: Path) -> None:
    case = Case(tmp_path, {"escaper.py": "import torch\n" + ESCAPES.format(sleep=120)},
                writes=("started",))
    doc, _ = case.run(".", "--timeout", "5", code=2)
    assert codes(doc, "escaper.py") == ["GL905"]
    assert model(doc, "zz_good.py::Good")["status"] == "ok"


@pytest.mark.parametrize("how, code", [(signal.SIGTERM, 128 + signal.SIGTERM),
                                       (signal.SIGHUP, 128 + signal.SIGHUP),
                                       (signal.SIGINT, 130),
                                       (signal.SIGKILL, -signal.SIGKILL)])
def test_gradlint_ending_ends_every_process(tmp_path: Path, how: int, code: int) -> None:
    case = Case(tmp_path, {"escaper.py": "import torch\n" + ESCAPES.format(sleep=120)},
                writes=("started",))
    proc = case.start("escaper.py")
    end = time.monotonic() + 120
    while not (case.root / "started").exists():
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.1)
    while len(marked(case.mark)) < 5:  # gradlint, server, child, two sleepers
        assert time.monotonic() < end, marked(case.mark)
        time.sleep(0.05)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    case.after()


# ----------------------------------------------------------------- 7. output

LOUD = """
import sys

import torch.nn as nn

for _ in range(50):
    sys.stdout.write("x" * (1 << 20) + "\\n")


class Loud(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""


def test_a_file_that_prints_50_mb_shows_the_tail(tmp_path: Path) -> None:
    case = Case(tmp_path, {"loud.py": "import torch\n" + LOUD})
    doc, err = case.run("loud.py::Loud", code=0)
    assert model(doc, "loud.py::Loud")["status"] == "ok"
    assert len(err) < 2 << 20
    assert "earlier bytes of this output were dropped" in err


# ----------------------------------------------------------------- 9. smaller


LAZY = """
import torch.nn as nn


class Lazy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.LazyLinear(8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())
"""


def test_a_lazy_module_is_not_blamed_on_its_constructor(tmp_path: Path) -> None:
    case = Case(tmp_path, {"lazy.py": "import torch\n" + LAZY})
    doc, _ = case.run("lazy.py", "--input", "2x4")
    assert "GL906" not in codes(doc, "lazy.py")
    assert model(doc, "lazy.py::Lazy")["status"] == "ok"


ARGPARSE = """
import argparse

import torch.nn as nn

ARGS = argparse.ArgumentParser().parse_args()


class Parsed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""

IMPORTS_LOCAL = """
import torch.nn as nn
from helpers import width


class UsesHelper(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(width(), 4)

    def forward(self, x):
        return self.fc(x)
"""


def test_imports_see_no_stray_arguments_and_write_no_bytecode(tmp_path: Path) -> None:
    case = Case(tmp_path, {"parsed.py": "import torch\n" + ARGPARSE,
                           "helpers.py": "def width():\n    return 4\n",
                           "uses.py": "import torch\n" + IMPORTS_LOCAL})
    doc, _ = case.run("parsed.py::Parsed", "uses.py", code=0)
    assert model(doc, "parsed.py::Parsed")["status"] == "ok"
    assert model(doc, "uses.py::UsesHelper")["status"] == "ok"
    assert not list(case.root.rglob("__pycache__"))


def test_a_module_object_named_as_target_is_located(tmp_path: Path) -> None:
    case = Case(tmp_path, {"net.py": GOOD})
    doc, _ = case.run("net.py::torch", code=2)
    (diag,) = doc["diagnostics"]
    assert diag["code"] == "GL906" and diag["line"] >= 1


GETATTR = """
import torch.nn as nn


class Touchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def __getattr__(self, name):
        if name.startswith("fc"):
            return super().__getattr__(name)
        raise ValueError(f"no {name} here")  # MARK

    def forward(self, x):
        return self.fc(x)
"""


def test_a_users_getattr_is_not_reported_as_a_gradlint_bug(tmp_path: Path) -> None:
    case = Case(tmp_path, {"touchy.py": "import torch\n" + GETATTR})
    doc, _ = case.run("touchy.py", "--input", "2x4")
    for d in doc["diagnostics"]:
        assert "please report this" not in d["message"], d


def test_the_marker_sees_a_live_process(tmp_path: Path) -> None:
    """The process check can fail: a marked sleeper is found, then gone once killed."""
    mark = uuid.uuid4().hex
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               env=dict(os.environ, GRADLINT_TEST_MARK=mark))
    try:
        time.sleep(0.2)
        assert marked(mark) == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert marked(mark) == []


NEEDS_EXPORT = """
import torch
import torch.nn as nn


class Loopy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):  # range() of a size: fx cannot trace it, torch.export can
        return torch.stack([self.fc(x[:, t]) for t in range(x.size(1))], dim=1)
"""

ASKS = """
import sys

import torch.nn as nn


class Asks(nn.Module):
    def __init__(self):
        super().__init__()
        assert "torch._dynamo" in sys.modules, "this file's process had to import dynamo"
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)
"""


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_the_export_fallback_pays_dynamos_import_once(tmp_path: Path) -> None:
    case = Case(tmp_path, {"aa_loopy.py": NEEDS_EXPORT, "bb_asks.py": "import torch\n" + ASKS})
    doc, _ = case.run("aa_loopy.py::Loopy", "bb_asks.py", "--jobs", "1", "--input", "2x3x4",
                      code=0)
    assert model(doc, "aa_loopy.py::Loopy")["tracer"] == "export"
    assert model(doc, "bb_asks.py::Asks")["status"] == "ok"


def test_the_fork_server_runs_one_thread() -> None:
    """A lock another thread holds at a fork stays held in the child: the server has none
    (tqdm's monitor, OpenBLAS's pool were two)."""
    from gradlint.run.pool import _Server

    server = _Server((None, 1), 2)
    try:
        assert server.start() is None
        assert os.listdir(f"/proc/{server.proc.pid}/task") == [str(server.proc.pid)]
    finally:
        server.close()


SEES_ENV = """
import ctypes
import os

import torch.nn as nn


class SeesEnv(nn.Module):
    def __init__(self):
        super().__init__()
        getenv = ctypes.CDLL(None).getenv
        getenv.restype = ctypes.c_char_p
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):  # the server's, not ours
            if name in os.environ or getenv(name.encode()) is not None:
                raise RuntimeError(f"{name} leaked into the user's environment")
        if getenv(b"GRADLINT_TEST_MARK") is None:
            raise RuntimeError("the parent's environment did not reach the C library")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""


def test_user_code_sees_the_parents_environment_not_the_servers(tmp_path: Path) -> None:
    """The server runs with settings of its own (one BLAS thread); each file's process gets
    the parent's environment back, in os.environ and in the C library."""
    case = Case(tmp_path, {"env.py": SEES_ENV})
    doc, _ = case.run("env.py", "zz_good.py", "--jobs", "1", code=0)
    assert model(doc, "env.py::SeesEnv")["status"] == "ok"


SCOUT = """
import gc, os, resource, select, sys
for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = "1"  # as the server does: no thread may hold a lock at a fork
import torch
torch.set_num_threads(1)
import gradlint.run.check_file
from gradlint.run import server, warm_up, working_set

server.no_threads()
warm_up.warm_up()
gc.collect()
gc.freeze()
scouting = working_set.Scouting(())
runs = None
while runs is None:
    select.select([scouting.fd], [], [])
    runs = scouting.read()
os.waitpid(scouting.pid, 0)


def faults_of_a_check(populate):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = working_set.populate(runs) if populate else True
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        warm_up.warm_up()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        os.write(write, f"{ok} {after - before}".encode())
        os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode().split()
    os.waitpid(pid, 0)
    return answer[0] == "True", int(answer[1])


print(sum(size for _, size in runs) // 4096, *faults_of_a_check(False), *faults_of_a_check(True))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/pagemap"), reason="Linux /proc only")
def test_a_spare_copies_the_pages_a_check_writes_before_its_file_comes() -> None:
    """The scout's pages, copied ahead, spare the check most of its copy-on-write faults."""
    done = subprocess.run([sys.executable, "-c", SCOUT], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    pages, _, cold, populated, warm = done.stdout.split()
    assert int(pages) > 500  # a check writes thousands of the server's pages
    assert populated == "True"  # MADV_POPULATE_WRITE (Linux >= 5.14)
    assert int(warm) < int(cold) / 3, (cold, warm)


# ----------------------------------------------------------------- the server started ahead

SKIPPED = """
import torch.nn as nn

with open("trained.txt", "w") as out:  # module-level I/O: the pre-filter skips the file
    out.write("done")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
"""


def test_a_server_started_for_files_the_prefilter_skips_ends_at_once(tmp_path: Path) -> None:
    """The fork server starts before the pre-filter reads the files (its torch import overlaps
    it); when no file is left to check, gradlint ends it at once, mid-import, and leaves no
    process behind."""
    case = Case(tmp_path, {"skipped/train_model.py": SKIPPED})
    start = time.monotonic()
    doc, _ = case.run("skipped")
    took = time.monotonic() - start
    assert codes(doc, "train_model.py") == ["GL907"]
    assert not (case.root / "trained.txt").exists()
    assert took < 4.0, took  # not the 5 s a graceful close would wait for a server mid-import
