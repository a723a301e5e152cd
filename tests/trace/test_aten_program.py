"""The direct ATen trace (``gradlint/trace/aten_program.py``) stands in for torch.export in the
export fallback and in splicing: on Hugging Face models it must be taken, and give the very IR
(ops, layer names, lines, estimates) torch.export gives; where it cannot match export (a
data-dependent value, a grad switch in forward, a buffer assigned) torch.export runs instead;
either way the model is left as it was."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn as nn

from gradlint.core.graph import LayerGraph
from gradlint.core.values import Target
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.trace import aten_program
from gradlint.trace.fx import trace_target

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")


def _llama(**over: Any) -> nn.Module:
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**{
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
        "use_cache": False, **over}))


class Seq2Seq(nn.Module):
    """A wrapper fx traces, around an encoder-decoder it cannot: the block is spliced."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.net(x, decoder_input_ids=ids).logits


def _bert() -> tuple[nn.Module, tuple[Any, ...]]:
    return transformers.BertModel(transformers.BertConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        vocab_size=256)), (torch.randint(0, 256, (2, 12)),)


def _gpt2() -> tuple[nn.Module, tuple[Any, ...]]:  # tied embedding and head
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=64, n_layer=2, n_head=4, vocab_size=256, use_cache=False, bos_token_id=0,
        eos_token_id=0)), (torch.randint(0, 256, (2, 12)),)


def _t5() -> tuple[nn.Module, tuple[Any, ...]]:
    return Seq2Seq(transformers.T5ForConditionalGeneration(transformers.T5Config(
        d_model=64, d_ff=128, d_kv=16, num_layers=2, num_heads=4, vocab_size=256,
        decoder_start_token_id=0, use_cache=False))), (
        torch.randint(0, 256, (2, 12)), torch.randint(0, 256, (2, 12)))


def _vit() -> tuple[nn.Module, tuple[Any, ...]]:
    return transformers.ViTModel(transformers.ViTConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8)), (torch.randn(2, 3, 32, 32),)


def _whisper() -> tuple[nn.Module, tuple[Any, ...]]:
    return Seq2Seq(transformers.WhisperForConditionalGeneration(transformers.WhisperConfig(
        d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, vocab_size=256,
        pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=0,
        num_mel_bins=16, max_source_positions=32, max_target_positions=32,
        use_cache=False))), (torch.randn(2, 16, 64), torch.randint(0, 256, (2, 8)))


def _wav2vec2() -> tuple[nn.Module, tuple[Any, ...]]:  # makes a tensor in forward
    return transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, vocab_size=32, layerdrop=0.0)), (torch.randn(2, 1600),)


class Mixed(nn.Module):
    """fx cannot trace it (a loop over a size); BatchNorm updates buffers, forward makes
    tensors (``torch.tensor``, an index list), holds a tensor attribute and ties weights."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.emb.weight
        self.cell = nn.Linear(16, 16)
        self.bn = nn.BatchNorm1d(16)
        self.scale = torch.tensor([0.5])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids)
        h = torch.zeros_like(x[:, 0])
        for t in range(x.shape[1]):
            h = torch.tanh(self.cell(h + x[:, t]))
        h = self.cell(self.bn(h)) * self.scale + torch.tensor([1.0, 2.0]).sum()
        return self.head(h + x[:, [-1]].squeeze(1))


def _mixed() -> tuple[nn.Module, tuple[Any, ...]]:
    return Mixed(), (torch.randint(0, 50, (4, 6)),)


def _target(model: nn.Module, inputs: tuple[Any, ...]) -> Target:
    return Target(f"{__file__}::{type(model).__name__}", model, __file__, 1, inputs)


def _exported(model: nn.Module, inputs: tuple[Any, ...],
              monkeypatch: pytest.MonkeyPatch) -> LayerGraph:
    """The graph as torch.export gives it (the direct trace switched off)."""
    def refuse(*args: Any) -> Any:
        raise aten_program.Unsupported("switched off")

    with monkeypatch.context() as patch:
        patch.setattr(aten_program, "traced_program", refuse)
        return trace_target(_target(model, inputs))


def _no_export(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("torch.export.export was called")

    monkeypatch.setattr(torch.export, "export", refuse)


def test_a_tiny_llama_takes_the_direct_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = _llama()
    _no_export(monkeypatch)
    graph = trace_target(_target(model, (torch.randint(0, 256, (2, 12)),)))
    assert graph.tracer == "export"
    assert {n.module for n in graph.nodes if n.op == "linear"} >= {
        "model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "lm_head"}


def test_a_wrapped_llama_on_meta_splices_the_direct_trace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _llama()

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.net(input_ids=ids).logits

    with torch.device("meta"):
        model = Wrapper()
    _no_export(monkeypatch)
    graph = trace_target(_target(model, (torch.randint(0, 256, (1, 16)),)))
    assert graph.tracer == "fx+export"
    assert "net.model.layers.1.mlp.up_proj" in {n.module for n in graph.nodes}


BUILDS: dict[str, Callable[[], tuple[nn.Module, tuple[Any, ...]]]] = {
    "bert": _bert, "gpt2": _gpt2, "llama": lambda: (_llama(), (torch.randint(0, 256, (2, 12)),)),
    "t5": _t5, "vit": _vit, "whisper": _whisper, "wav2vec2": _wav2vec2, "mixed": _mixed}


_READINGS = ("coherence", "row_coherence")  # gradlint/trace/token_coherence.py


def _unread(graph: LayerGraph) -> LayerGraph:
    """``graph`` without the token coherences read on values."""
    nodes = []
    for n in graph.nodes:
        for reading in _READINGS:
            n = n.without(reading)
        nodes.append(n)
    return dataclasses.replace(graph, nodes=tuple(nodes))


@pytest.mark.parametrize("name", list(BUILDS))
def test_the_ir_is_the_one_torch_export_gives(name: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model, inputs = BUILDS[name]()
    model.train()
    exported = _exported(model, inputs, monkeypatch)
    calls: list[str] = []
    real = aten_program.traced_program

    def counted(*args: Any) -> Any:
        out = real(*args)
        calls.append(type(args[0]).__name__)
        return out

    monkeypatch.setattr(aten_program, "traced_program", counted)
    direct = trace_target(_target(model, inputs))
    assert calls  # the direct trace was taken
    assert direct.tracer == exported.tracer
    assert len(direct.nodes) == len(exported.nodes)
    for mine, theirs in zip(direct.nodes, exported.nodes, strict=True):
        for reading in _READINGS:  # measured on values: the two programs compute them with
            a, b = mine.attrs.get(reading), theirs.attrs.get(reading)  # other kernels
            assert (a is None) == (b is None), (mine, theirs)
            if a is not None:
                assert a == pytest.approx(b, abs=0.03), (mine, theirs)
    direct, exported = _unread(direct), _unread(exported)
    for mine, theirs in zip(direct.nodes, exported.nodes, strict=True):
        assert mine == theirs  # op, inputs, module and its type, params, shape, lines
    assert direct == exported
    if name == "mixed":  # lines in this file: from the stack traces of both
        lines = {n.location.line for n in direct.nodes
                 if n.location is not None and n.location.file.endswith("test_aten_program.py")}
        assert len(lines) > 3
    assert repr(estimate_gradients(direct)) == repr(estimate_gradients(exported))


def test_the_program_carries_what_the_converter_reads() -> None:
    torch.manual_seed(0)
    model, (ids,) = _mixed()
    with torch.no_grad():
        ep = torch.export.export(model, (ids,), strict=False)
        mine = aten_program.aten_program(model, (ids,), {})
    assert isinstance(mine, aten_program.AtenProgram)
    for attr in ("inputs_to_parameters", "inputs_to_buffers",
                 "inputs_to_lifted_tensor_constants", "user_outputs"):
        assert getattr(mine.graph_signature, attr) == getattr(ep.graph_signature, attr), attr
    assert sorted(mine.constants) == sorted(ep.constants)
    assert mine.call_spec.out_spec == ep.call_spec.out_spec

    def described(graph: torch.fx.Graph) -> list[tuple[Any, ...]]:
        return [(n.name, n.op, str(n.target), n.meta.get("nn_module_stack"),
                 [line.strip() for line in (n.meta.get("stack_trace") or "").splitlines()
                  if "test_aten_program.py" in line],
                 tuple(getattr(n.meta.get("val"), "shape", ())))
                for n in graph.nodes if "_assert_tensor_metadata" not in str(n.target)]

    assert described(mine.graph) == described(ep.graph)


class ItemScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) * x.abs().max().item()


class GradInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return self.a(x)


class AssignsBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.register_buffer("last", torch.zeros(3, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        self.last = y.detach()
        return y


@pytest.mark.parametrize("build", [ItemScale, GradInside, AssignsBuffer])
def test_what_the_direct_trace_cannot_match_goes_to_torch_export(build: type[nn.Module]) -> None:
    model = build()
    x = torch.randn(3, 8)
    with pytest.raises(Exception):  # noqa: B017 - any: data-dependent, unsupported
        with torch.no_grad():
            aten_program.traced_program(model, (x,), {})
    with torch.no_grad():
        program = aten_program.aten_program(model, (x,), {})
    assert isinstance(program, torch.export.ExportedProgram)


class Stores(Mixed):
    """Stores a tensor and a number on itself during forward."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.seen = ids.shape[0]
        self.mask = ids > 0
        return super().forward(ids)


class SwitchesGradOff(AssignsBuffer):
    """Turns grad off and leaves it off (torch.export then traces it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.set_grad_enabled(False)
        return self.a(x)


@pytest.mark.parametrize("build", [Stores, AssignsBuffer, SwitchesGradOff])
def test_the_model_is_left_as_it_was(build: type[nn.Module]) -> None:
    torch.manual_seed(0)
    model = build()
    model.train()
    x = torch.randint(0, 50, (4, 6)) if build is Stores else torch.randn(3, 8)
    before = {name: (dict(vars(m)), dict(m._parameters), dict(m._buffers), dict(m._modules),
                     m.training) for name, m in model.named_modules()}
    values = {k: v.clone() for k, v in model.state_dict().items()}
    aten_program.aten_program(model, (x,), {})  # grad on: it must stay on
    assert torch.is_grad_enabled()
    after = {name: (dict(vars(m)), dict(m._parameters), dict(m._buffers), dict(m._modules),
                    m.training) for name, m in model.named_modules()}
    assert after.keys() == before.keys()
    for name, was in before.items():
        for kept, now in zip(was, after[name], strict=True):
            if isinstance(kept, dict):
                assert kept.keys() == now.keys(), name
                assert all(now[k] is v for k, v in kept.items()), name
            else:
                assert kept == now, name
    for k, v in model.state_dict().items():
        assert torch.equal(v, values[k]), k
