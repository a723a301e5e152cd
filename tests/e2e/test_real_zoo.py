"""Real model zoos through the installed command: torchvision and timm models as users build
them, at small inputs. Each must be traced and checked (the verdicts on individual stock models
are the accuracy issue's); ResNet-18 from both zoos is healthy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TORCHVISION = '''
import torchvision

resnet = torchvision.models.resnet18(num_classes=10)
mobilenet = torchvision.models.mobilenet_v3_small(num_classes=10)
vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2,
                                           num_heads=2, hidden_dim=32, mlp_dim=64,
                                           num_classes=10)
'''

TIMM = '''
import timm

resnet = timm.create_model("resnet18", num_classes=10)
vit = timm.create_model("vit_tiny_patch16_224", num_classes=10, img_size=32, patch_size=8)
convnext = timm.create_model("convnext_atto", num_classes=10)
'''


@pytest.mark.parametrize("name, text, expect", [
    ("zoo_torchvision.py", TORCHVISION, {"resnet": 21, "mobilenet": 52, "vit": 12}),
    ("zoo_timm.py", TIMM, {"resnet": 21, "vit": 12, "convnext": 20}),
])
def test_real_zoo_models_are_checked(tmp_path: Path, run_gradlint: Any, name: str, text: str,
                                     expect: dict[str, int]) -> None:
    (tmp_path / name).write_text(text.lstrip())
    targets = [f"{name}::{model}" for model in expect]
    proc = run_gradlint(*targets, "--input", "2x3x32x32", "--format", "json", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    models = {m["name"]: m for m in doc["models"]}
    assert set(models) == set(expect)
    for model, at_least in expect.items():
        assert models[model]["status"] == "ok", models[model]
        assert models[model]["tracer"] == "fx"
        assert len(models[model]["layers"]) >= at_least, (model, len(models[model]["layers"]))
    assert not [d for d in doc["diagnostics"] if d["target"].endswith("::resnet")
                and d["severity"] in ("error", "warning")]
    assert not [d for d in doc["diagnostics"] if d["code"].startswith("GL9")]
