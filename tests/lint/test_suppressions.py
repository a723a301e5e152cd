"""``# gradlint: ignore`` comments (README, "Suppressing a diagnostic") and GL100
unused-suppression, end to end through the installed command and unit by unit (comment
reading, statement ends)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gradlint.core.values import Diagnostic, Location
from gradlint.lint.suppressions import analyse_source, for_file

DEEP = "examples/deep_sigmoid.py"
# in examples/deep_sigmoid.py, GL101 and GL102 are reported on line 15, inside
#   14        self.layers = nn.Sequential(
#   15            *[nn.Sequential(nn.Linear(width, width), nn.Sigmoid()) for _ in range(depth)]
#   16        )
REPORTED = "for _ in range(depth)]\n"
CLOSING = "\n        )\n"


def variant(repo_root: Path, tmp_path: Path, old: str, new: str, name: str = "model.py") -> Path:
    source = (repo_root / DEEP).read_text(encoding="utf-8")
    assert source.count(old) == 1, old
    path = tmp_path / name
    path.write_text(source.replace(old, new), encoding="utf-8")
    return path


def codes(run_gradlint: Any, path: Path, *args: str) -> tuple[int, list[str]]:
    proc = run_gradlint(path.name, "--format", "json", *args, cwd=path.parent)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, [d["code"] for d in json.loads(proc.stdout)["diagnostics"]]


# --- end to end -------------------------------------------------------------------------------


def test_unsuppressed_baseline(run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, "import torch.nn", "import torch.nn")
    assert codes(run_gradlint, path) == (1, ["GL101", "GL102"])


def test_bare_ignore_on_the_reported_line(run_gradlint: Any, repo_root: Path,
                                          tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, REPORTED,
                   "for _ in range(depth)]  # gradlint: ignore\n")
    assert codes(run_gradlint, path) == (0, [])


def test_ignore_on_the_last_line_of_the_statement(run_gradlint: Any, repo_root: Path,
                                                  tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, CLOSING,
                   "\n        )  # gradlint: ignore[GL101, GL102] -- known, tracked in #12\n")
    assert codes(run_gradlint, path) == (0, [])


def test_ignore_file(run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, "import torch.nn as nn\n",
                   "import torch.nn as nn\n\n# gradlint: ignore-file\n")
    assert codes(run_gradlint, path) == (0, [])


def test_ignore_file_with_codes(run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, "import torch.nn as nn\n",
                   "import torch.nn as nn  # gradlint: ignore-file[GL102]\n")
    assert codes(run_gradlint, path) == (1, ["GL101"])


def test_ignore_gl102_does_not_suppress_gl101(run_gradlint: Any, repo_root: Path,
                                              tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, REPORTED,
                   "for _ in range(depth)]  # gradlint: ignore[GL102]\n")
    assert codes(run_gradlint, path) == (1, ["GL101"])


def test_prefix_codes(run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, CLOSING, "\n        )  # gradlint: ignore[GL1]\n")
    assert codes(run_gradlint, path) == (0, [])


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_exit_code_0_when_the_only_error_is_suppressed(run_gradlint: Any, repo_root: Path,
                                                       tmp_path: Path) -> None:
    plain = variant(repo_root, tmp_path, "import torch.nn", "import torch.nn", "plain.py")
    proc = run_gradlint(plain.name, "--select", "GL101", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    path = variant(repo_root, tmp_path, REPORTED,
                   "for _ in range(depth)]  # gradlint: ignore[GL101]\n")
    proc = run_gradlint(path.name, "--select", "GL101", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GL101 [error]" not in proc.stdout


def test_hash_inside_a_string_is_not_a_comment(run_gradlint: Any, repo_root: Path,
                                               tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, "import torch.nn as nn\n",
                   "import torch.nn as nn\n\nNOTE = '# gradlint: ignore-file'\n")
    assert codes(run_gradlint, path) == (1, ["GL101", "GL102"])


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_gl100_reports_a_stale_comment_only_when_selected(
        run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    stale = "# gradlint: ignore[GL101]"
    source = (repo_root / "examples/deep_sigmoid_fixed.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "nn.Linear(" in text)
    lines[line - 1] += f"  {stale}"
    path = tmp_path / "fixed.py"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert codes(run_gradlint, path) == (0, [])  # off by default
    assert codes(run_gradlint, path, "--select", "GL1") == (0, [])  # a prefix is not enough
    proc = run_gradlint(path.name, "--format", "json", "--select", "GL1,GL9,GL100",
                        cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (diag,) = json.loads(proc.stdout)["diagnostics"]
    assert (diag["code"], diag["name"], diag["severity"]) == (
        "GL100", "unused-suppression", "warning")
    assert diag["line"] == line
    assert lines[line - 1][diag["col"] - 1:].startswith(stale)
    assert stale in diag["message"]


def test_gl100_leaves_a_used_comment_alone(run_gradlint: Any, repo_root: Path,
                                           tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, CLOSING, "\n        )  # gradlint: ignore[GL101]\n")
    assert codes(run_gradlint, path, "--select", "GL1,GL100") == (1, ["GL102"])


def test_gl100_names_the_unused_codes_of_a_partly_used_comment(
        run_gradlint: Any, repo_root: Path, tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, CLOSING,
                   "\n        )  # gradlint: ignore[GL101,GL102,GL104]\n")
    proc = run_gradlint(path.name, "--format", "json", "--select", "GL1,GL100", cwd=tmp_path)
    (diag,) = json.loads(proc.stdout)["diagnostics"]
    assert diag["code"] == "GL100" and diag["line"] == 16
    assert "GL104" in diag["message"] and "GL101," not in diag["message"].split("`")[0]


def test_gl100_does_not_judge_rules_that_did_not_run(run_gradlint: Any, repo_root: Path,
                                                     tmp_path: Path) -> None:
    path = variant(repo_root, tmp_path, CLOSING, "\n        )  # gradlint: ignore[GL101]\n")
    # GL101 was not selected, so its suppression cannot be called stale
    assert codes(run_gradlint, path, "--select", "GL102,GL100") == (1, ["GL102"])


def test_gl100_skips_files_that_were_not_checked(run_gradlint: Any, tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import torch.nn as nn  # gradlint: ignore[GL101]\n\n"
                    "class Net(nn.Module):\n    def forward(self, x)\n        return x\n",
                    encoding="utf-8")
    proc = run_gradlint(path.name, "--format", "json", "--select", "GL1,GL9,GL100",
                        cwd=tmp_path)
    assert proc.returncode == 2
    assert [d["code"] for d in json.loads(proc.stdout)["diagnostics"]] == ["GL900"]


# --- units ------------------------------------------------------------------------------------


def source_of(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_comments_are_read_with_tokenize() -> None:
    fs = analyse_source(source_of('''
        s = "# gradlint: ignore"  # gradlint: ignore[gl101 , GL102]
        t = """
        # gradlint: ignore-file
        """
        u = 1  # noqa: E501  # gradlint: ignore
        v = 2  # gradlint: ignored
        w = 3  # gradlint: ignore-files
        # gradlint: ignore-file[GL102]
    '''))
    got = [(s.line, s.codes, s.whole_file) for s in fs.comments]
    assert got == [(1, ("GL101", "GL102"), False), (5, (), False), (8, ("GL102",), True)]
    first = fs.comments[0]
    assert first.col == 27 and first.text == "# gradlint: ignore[gl101 , GL102]"


@pytest.mark.parametrize(("line", "end"), [
    (1, 1),     # import
    (3, 3),     # class header
    (4, 4),     # def header on one line
    (6, 9),     # a multi-line assignment: every line ends at its closing line
    (7, 9), (8, 9), (9, 9),
    (11, 12),   # a def whose header spans two lines ends at its colon
    (13, 13),   # first body statement, not the whole function
    (14, 14),   # if header
    (16, 16),   # else: belongs to no simple statement
    (17, 19),   # call spanning lines inside the else branch
    (20, 20),   # a comment-only line
])
def test_statement_end(line: int, end: int) -> None:
    fs = analyse_source(source_of('''
        import torch.nn as nn  # gradlint: ignore

        class Net(nn.Module):
            def __init__(self, depth=3):
                super().__init__()
                self.layers = nn.Sequential(
                    nn.Linear(4, 4),
                    nn.Sigmoid(),
                )

            def forward(self, x,
                        scale=1.0):
                h = self.layers(x)
                if scale > 0:
                    return h
                else:
                    return self.layers(
                        h,
                    )
        # trailing comment
    '''))
    assert fs.end_of_statement(line) == end


def test_matching_uses_the_statement_end(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(source_of('''
        x = dict(
            a=1,
            b=2,
        )  # gradlint: ignore[GL102]
        y = 3  # gradlint: ignore
    '''), encoding="utf-8")
    fs = for_file(str(path))

    def diag(code: str, line: int) -> Diagnostic:
        return Diagnostic(code, "n", "error", "m", Location(str(path), line, 1))

    assert fs.matching(diag("GL102", 2)) and fs.matching(diag("GL102", 4))
    assert not fs.matching(diag("GL101", 2))  # the codes must match
    assert fs.matching(diag("GL101", 5))  # bare ignore
    assert not fs.matching(diag("GL101", 6))  # past the end of the file's statements


def test_unparsable_file_keeps_same_line_comments() -> None:
    fs = analyse_source("def f(:\n    pass  # gradlint: ignore[GL900]\n")
    assert fs.end_of_statement(2) == 2
