"""Issue 17's inputs through the installed command, no configuration: inputs inferred from the
first layer ``forward`` uses (fx graph order, or the AST of ``forward`` when fx fails and
torch.export is used), sizes solved from the first Linear after a flatten (an MNIST net is fed
28x28), a reshaping helper in front of the first layer, the image size a constructor was given
(``image_size=64``), one ``example_inputs()`` in a file with
two models (a GAN), an LSTM's ``(x, (h, c))`` kept by ``--verify``, and a model no input feeds
(GL902 info with the config line that feeds it, which then works). Plain torch only."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from reach_counts import assert_counts

pytestmark = pytest.mark.e2e

MNIST = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):  # pytorch/examples' MNIST net: Linear(9216) needs 28x28 inputs
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)
"""

# the Transformer is registered before the Embedding its tokens go through first
OUT_OF_ORDER = """
import torch.nn as nn


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2)
        self.head = nn.Linear(32, 100)
        self.embed = nn.Embedding(100, 32)

    def forward(self, tokens):
        h = self.embed(tokens)
        {control}
        return self.head(self.transformer(h))
"""
FX_FAILS = "if tokens.shape[1] > 1:  # shape-dependent control flow: fx cannot trace it\n" \
    "            h = h * 1.0"
FX_TRACES = "h = h * 1.0"

REARRANGE = """
import torch
import torch.nn as nn


class Patches(nn.Module):
    \"\"\"b c (h p) (w q) -> b (h w) (p q c), like einops' Rearrange: no parameters.\"\"\"

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.p
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)


class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.to_patch = nn.Sequential(Patches(4), nn.Linear(48, 64))
        self.pos = nn.Parameter(torch.zeros(1, 64, 64))
        self.blocks = nn.Sequential(*[nn.Sequential(nn.LayerNorm(64), nn.Linear(64, 64),
                                                    nn.GELU()) for _ in range(3)])
        self.head = nn.Linear(64, 10)

    def forward(self, img):
        x = self.to_patch(img) + self.pos
        return self.head(self.blocks(x).mean(1))
"""

GAN = """
import torch
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(100, 256), nn.LeakyReLU(0.2), nn.Linear(256, 784),
                                 nn.Tanh())

    def forward(self, z):
        return self.net(z).view(z.shape[0], 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.LeakyReLU(0.2),
                                 nn.Linear(256, 1))

    def forward(self, img):
        return self.net(img)


def example_inputs():
    return (torch.randn(8, 100),)  # the generator's noise
"""

LSTM = """
import torch
import torch.nn as nn


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.out = nn.Linear(32, 5)

    def forward(self, x, hidden):
        y, _ = self.lstm(x, hidden)
        return self.out(y)


def example_inputs():
    return (torch.randn(4, 10, 16), (torch.zeros(1, 4, 32), torch.zeros(1, 4, 32)))
"""

RAW = """
import torch
import torch.nn as nn


class Raw(nn.Module):  # weights used directly: no layer says how large the input is
    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(12, 12) / 12 ** 0.5)
        self.w2 = nn.Parameter(torch.randn(12, 12) / 12 ** 0.5)

    def forward(self, x):
        return torch.relu(x @ self.w1) @ self.w2
"""

DECLARED = """
import torch
import torch.nn as nn


class PatchViT(nn.Module):  # vit-pytorch's kind: the position table is sliced to fit
    def __init__(self, image_size, patch=8, dim=32):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, (image_size // patch) ** 2, dim))
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        return self.head((x + self.pos[:, :x.shape[1]]).mean(1))


model = PatchViT(image_size=64)
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run(run_gradlint: Any, cwd: Path, *args: object) -> tuple[int, dict[str, Any]]:
    proc = run_gradlint(*args, "--format", "json", cwd=cwd)
    assert proc.stdout, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert_counts(doc)
    return proc.returncode, doc


@pytest.fixture(scope="module")
def inferred(run_gradlint: Any, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[int, dict[str, Any]]:
    """One run over the fixtures whose inputs are inferred or picked per model."""
    root = tmp_path_factory.mktemp("reach_inputs")
    write(root, "mnist.py", MNIST)
    write(root, "order_export.py", OUT_OF_ORDER.replace("{control}", FX_FAILS))
    write(root, "order_fx.py", OUT_OF_ORDER.replace("{control}", FX_TRACES))
    write(root, "rearrange.py", REARRANGE)
    write(root, "gan.py", GAN)
    write(root, "declared.py", DECLARED)
    return run(run_gradlint, root, "mnist.py", "order_export.py", "order_fx.py",
               "rearrange.py", "gan.py", "declared.py")


def model(doc: dict[str, Any], target: str) -> dict[str, Any]:
    (found,) = [m for m in doc["models"] if m["target"] == target]
    return found


def estimated(m: dict[str, Any]) -> set[str]:
    return {le["module"] for le in m["layers"] if le["log10_grad"] is not None}


def test_every_model_is_checked_and_nothing_fails(inferred: Any) -> None:
    code, doc = inferred
    assert code == 0, doc["diagnostics"]
    assert {m["target"]: m["status"] for m in doc["models"]} == {
        "mnist.py::Net": "ok", "order_export.py::Seq2Seq": "ok", "order_fx.py::Seq2Seq": "ok",
        "rearrange.py::ViT": "ok", "gan.py::Generator": "ok", "gan.py::Discriminator": "ok",
        "declared.py::model": "ok"}
    assert doc["summary"]["checked"] == 7 and doc["summary"]["failed"] == 0
    assert not [d for d in doc["diagnostics"] if d["code"] in ("GL902", "GL903")]


def test_mnist_net_is_fed_28x28(inferred: Any) -> None:
    """Linear(9216) after conv3, conv3, pool2 and a flatten runs on 28x28 only (32x32 gives
    12544 features): every layer estimated means it ran on 28x28."""
    net = model(inferred[1], "mnist.py::Net")
    assert estimated(net) == {"conv1", "conv2", "fc1", "fc2"}
    (shape,) = net["inputs"]  # the report says what it ran on
    assert shape.endswith("x1x28x28") and ":" not in shape, shape


@pytest.mark.parametrize(("file", "tracer"), [("order_export.py", "export"),
                                              ("order_fx.py", "fx")])
def test_layers_registered_out_of_forward_order_get_token_inputs(
        inferred: Any, file: str, tracer: str) -> None:
    seq = model(inferred[1], f"{file}::Seq2Seq")
    assert seq["tracer"] == tracer
    assert seq["inputs"] and all(i.endswith(":int64") for i in seq["inputs"]), seq["inputs"]
    assert {"embed", "head"} <= estimated(seq)


def test_a_parameterless_reshape_in_front_does_not_hide_the_first_layer(inferred: Any) -> None:
    vit = model(inferred[1], "rearrange.py::ViT")
    assert {"to_patch.1", "head"} <= estimated(vit)


def test_a_model_is_fed_the_image_size_its_constructor_was_given(inferred: Any) -> None:
    """32x32 runs too (the table is sliced), with 16 tokens instead of the 64 it was built
    for."""
    assert model(inferred[1], "declared.py::model")["inputs"] == ["4x3x64x64"]


def test_one_example_inputs_in_a_gan_file_feeds_the_model_it_fits(inferred: Any) -> None:
    doc = inferred[1]
    assert estimated(model(doc, "gan.py::Generator")) == {"net.0", "net.2"}
    assert estimated(model(doc, "gan.py::Discriminator")) == {"net.1", "net.3"}


def test_example_inputs_keyed_by_model_name(run_gradlint: Any, tmp_path: Path) -> None:
    keyed = GAN.replace("    return (torch.randn(8, 100),)  # the generator's noise",
                        '    return {"Generator": torch.randn(8, 100),\n'
                        '            "Discriminator": torch.randn(8, 1, 28, 28)}')
    write(tmp_path, "gan.py", keyed)
    code, doc = run(run_gradlint, tmp_path, "gan.py")
    assert code == 0, doc["diagnostics"]
    assert [m["status"] for m in doc["models"]] == ["ok", "ok"]


def test_verify_keeps_an_lstm_state_tuple(run_gradlint: Any, tmp_path: Path) -> None:
    write(tmp_path, "tagger.py", LSTM)
    code, doc = run(run_gradlint, tmp_path, "tagger.py", "--verify")
    assert code == 0, doc["diagnostics"]
    (tagger,) = doc["models"]
    verify = tagger["verify"]
    assert "error" not in verify, verify
    assert verify["layers"] == 2
    assert all(le["measured_log10_grad"] is not None for le in tagger["layers"])


def test_a_model_no_input_feeds_is_gl902_with_the_line_that_feeds_it(
        run_gradlint: Any, tmp_path: Path) -> None:
    write(tmp_path, "raw.py", RAW)
    code, doc = run(run_gradlint, tmp_path, "raw.py")
    assert code == 0, doc["diagnostics"]  # needs configuration: an info, not a failure
    assert [m["status"] for m in doc["models"]] == ["skipped"]
    (diag,) = doc["diagnostics"]
    assert (diag["code"], diag["severity"]) == ("GL902", "info"), diag
    line = re.search(r'\[tool\.gradlint\.targets\."raw\.py::Raw"\] inputs = \[.*?\]',
                     diag["message"])
    assert line, diag["message"]
    section, _, inputs = line.group(0).partition("] ")
    (tmp_path / "pyproject.toml").write_text(
        f"{section}]\n{inputs}\n".replace('["1x3x224x224"]', '["4x12"]'), encoding="utf-8")
    code, doc = run(run_gradlint, tmp_path, "raw.py")
    assert code == 0, doc["diagnostics"]
    assert [m["status"] for m in doc["models"]] == ["ok"]
