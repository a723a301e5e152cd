"""The zoo: real torchvision, timm and Hugging Face models, plus the classic failures.

Every model is built at its library's default init (``weights=None`` / ``pretrained=False`` /
a config with random init; nothing is downloaded) under the caller's torch seed, and gets a
family label for the report. Inputs are small: 64 px images for CNNs, 128 px for attention
models (224 for torchvision's MaxViT, whose partitions need multiples of 7), 32 tokens.
Dropout, drop-path / stochastic depth, layer drop and SpecAugment masking are set to 0 where
the constructor or config takes them (the measurement zeroes dropout modules too): the protocol
measures at dropout 0.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

FAMILIES = ("CNN", "SE CNN", "vision transformer", "windowed attention", "encoder LM",
            "decoder LM", "encoder-decoder", "speech", "recurrent", "MLP")
"""The issue's nine families; ``MLP`` holds the classic deep sigmoid/tanh stacks, which fit
none of them."""

MAX_PARAMS = 100_000_000  # torchvision: "every classification model up to ~100 M parameters"
VOCAB = 1000
TOKENS = 32


@dataclass(frozen=True)
class ZooModel:
    """One benchmark model. ``inputs(batch)`` draws forward's positional arguments (None in a
    gap, as ``dummy_inputs``-style keyword inputs map to positions). ``key`` says how it is
    built (with ``library``'s version it keys the ground-truth cache). ``zoo`` is True for the
    library models (GL101/GL103 must stay quiet on them at default init); ``sick`` marks a
    classic failure that GL101 (or GL104) must catch."""

    name: str
    family: str
    source: str  # torchvision | timm | transformers | classic
    build: Callable[[], nn.Module]
    inputs: Callable[[int], tuple[Any, ...]]
    input_desc: str
    key: str
    batch: int = 8
    quick: bool = False
    sick: bool = False

    @property
    def zoo(self) -> bool:
        return self.source != "classic"

    @property
    def library(self) -> str:
        mod = {"torchvision": "torchvision", "timm": "timm", "transformers": "transformers"}
        name = mod.get(self.source)
        if name is None:
            return f"torch {torch.__version__}"
        return f"{name} {importlib.import_module(name).__version__}"


def images(size: int, channels: int = 3) -> Callable[[int], tuple[Any, ...]]:
    return lambda b: (torch.randn(b, channels, size, size),)


def tokens(length: int = TOKENS, vocab: int = VOCAB) -> Callable[[int], tuple[Any, ...]]:
    # ids from 4 up: no pad/bos/eos ids, which some models treat specially (RoBERTa positions)
    return lambda b: (torch.randint(4, vocab, (b, length)),)


def by_position(cls: type[nn.Module], **named: Callable[[int], torch.Tensor]
                ) -> Callable[[int], tuple[Any, ...]]:
    """Keyword inputs -> forward's positional arguments, gaps at their defaults (None)."""
    params = [p for p in inspect.signature(cls.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]
    last = max(i for i, p in enumerate(params) if p.name in named)

    def draw(b: int) -> tuple[Any, ...]:
        return tuple(named[p.name](b) if p.name in named
                     else None if p.default is inspect.Parameter.empty else p.default
                     for p in params[:last + 1])
    return draw


# --------------------------------------------------------------------------------------------
# torchvision
# --------------------------------------------------------------------------------------------

SE_TORCHVISION = ("efficientnet", "mobilenet_v3", "regnet_y", "mnasnet")  # mnasnet: no SE
# MaxViT-T's partitions (7) must divide the input / 32: 224 px is its smallest input
TV_SIZE = {"maxvit_t": 224, "inception_v3": 128}
TV_KWARGS: dict[str, dict[str, Any]] = {
    # torchvision's Inception-v3 aux head needs ~299 px inputs; without it, 75 px and up
    "inception_v3": {"aux_logits": False, "init_weights": True},
    "googlenet": {"init_weights": True},  # the default when weights=None, without the warning
}


ZERO_HEAD = ("mixer_s16_224", "resmlp_12_224", "sequencer2d_s")
"""Models whose classifier is zero-initialized (these timm models; torchvision's ViTs): at init
no layer but the head gets a gradient, which leaves nothing to compare. They are measured
without it, the loss on the pooled features (timm ``num_classes=0``; torchvision
``heads = nn.Identity()``), the way they are built for feature extraction."""


def torchvision_family(name: str) -> str:
    if name.startswith(("vit_",)):
        return "vision transformer"
    if name.startswith(("swin", "maxvit")):
        return "windowed attention"
    if name.startswith(("efficientnet", "mobilenet_v3", "regnet_y")):
        return "SE CNN"
    return "CNN"


def _tv_params(name: str) -> int | None:
    import torchvision

    try:
        with torch.device("meta"):
            m = torchvision.models.get_model(name, weights=None, **TV_KWARGS.get(name, {}))
        return sum(p.numel() for p in m.parameters())
    except Exception:  # noqa: BLE001 - some builders copy data at init (RegNet): count for real
        pass
    try:
        m = torchvision.models.get_model(name, weights=None, **TV_KWARGS.get(name, {}))
        return sum(p.numel() for p in m.parameters())
    except Exception:  # noqa: BLE001 - it does not build: its record will say why
        return None


def torchvision_models(max_params: int | None = MAX_PARAMS
                       ) -> tuple[list[ZooModel], list[str]]:
    """Every classification model of ``torchvision.models`` up to ``max_params`` (None: all,
    without counting); also the names left out (with their size)."""
    import torchvision

    out, left = [], []
    for name in torchvision.models.list_models(module=torchvision.models):
        n = _tv_params(name) if max_params is not None else None
        if n is not None and max_params is not None and n > max_params:
            left.append(f"torchvision/{name} ({n / 1e6:.0f} M parameters)")
            continue
        family = torchvision_family(name)
        size = TV_SIZE.get(name, 128 if family in ("vision transformer", "windowed attention")
                           else 64)
        kwargs = dict(TV_KWARGS.get(name, {}))
        headless = name.startswith("vit_")
        if headless:
            kwargs["image_size"] = size

        def build(name: str = name, kwargs: dict[str, Any] = kwargs, headless: bool = headless
                  ) -> nn.Module:
            m = torchvision.models.get_model(name, weights=None, **kwargs)
            if headless:  # see ZERO_HEAD
                m.heads = nn.Identity()
            return m
        key = f"get_model({name!r}, weights=None, {kwargs})" + (", heads=Identity" * headless)
        out.append(ZooModel(f"torchvision/{name}", family, "torchvision", build, images(size),
                            f"3x{size}x{size}" + (" (features)" if headless else ""), key,
                            quick=name in ("resnet18", "mobilenet_v3_small", "swin_t")))
    return out, left


# --------------------------------------------------------------------------------------------
# timm
# --------------------------------------------------------------------------------------------

# name -> (family, image size, takes img_size=)
TIMM: dict[str, tuple[str, int, bool]] = {
    # CNNs
    "resnet18": ("CNN", 64, False),
    "resnet50": ("CNN", 64, False),
    "resnet26d": ("CNN", 64, False),
    "resnext26ts": ("CNN", 64, False),
    "skresnet18": ("CNN", 64, False),
    "res2net50_26w_4s": ("CNN", 64, False),
    "regnetx_002": ("CNN", 64, False),
    "densenet121": ("CNN", 64, False),
    "dla34": ("CNN", 64, False),
    "dpn68": ("CNN", 64, False),
    "hrnet_w18_small": ("CNN", 64, False),
    "cspresnet50": ("CNN", 64, False),
    "cs3darknet_s": ("CNN", 64, False),
    "inception_v3": ("CNN", 128, False),
    "mobilenetv2_100": ("CNN", 64, False),
    "mobilenetv4_conv_small": ("CNN", 64, False),
    "efficientnet_lite0": ("CNN", 64, False),
    "convnext_atto": ("CNN", 64, False),
    "convnext_nano": ("CNN", 64, False),
    "convnextv2_atto": ("CNN", 64, False),
    "nf_resnet26": ("CNN", 64, False),
    "poolformer_s12": ("CNN", 64, False),
    "fastvit_t8": ("CNN", 64, False),
    # squeeze-excitation (or ECA / eSE) CNNs
    "seresnet50": ("SE CNN", 64, False),
    "ecaresnet26t": ("SE CNN", 64, False),
    "regnety_002": ("SE CNN", 64, False),
    "regnety_008": ("SE CNN", 64, False),
    "regnetz_b16": ("SE CNN", 64, False),
    "efficientnet_b0": ("SE CNN", 64, False),
    "tf_efficientnetv2_b0": ("SE CNN", 64, False),
    "efficientnetv2_rw_t": ("SE CNN", 64, False),
    "mobilenetv3_small_100": ("SE CNN", 64, False),
    "mobilenetv3_large_100": ("SE CNN", 64, False),
    "lcnet_050": ("SE CNN", 64, False),
    "rexnet_100": ("SE CNN", 64, False),
    "mixnet_s": ("SE CNN", 64, False),
    "ghostnet_100": ("SE CNN", 64, False),
    "repvit_m1": ("SE CNN", 64, False),
    "nf_regnet_b0": ("SE CNN", 64, False),
    "eca_nfnet_l0": ("SE CNN", 64, False),
    "dm_nfnet_f0": ("SE CNN", 64, False),
    "ese_vovnet19b_dw": ("SE CNN", 64, False),
    # vision transformers and hybrids (global attention, or token mixing over all patches)
    "vit_tiny_patch16_224": ("vision transformer", 128, True),
    "vit_small_patch16_224": ("vision transformer", 128, True),
    "vit_base_patch16_224": ("vision transformer", 128, True),
    "deit_tiny_patch16_224": ("vision transformer", 128, True),
    "deit_small_distilled_patch16_224": ("vision transformer", 128, True),
    "deit3_small_patch16_224": ("vision transformer", 128, True),
    "eva02_tiny_patch14_224": ("vision transformer", 126, True),
    "flexivit_small": ("vision transformer", 128, True),
    "cait_xxs24_224": ("vision transformer", 128, True),
    "xcit_nano_12_p16_224": ("vision transformer", 128, True),
    "convit_tiny": ("vision transformer", 128, True),
    "levit_128s": ("vision transformer", 128, True),
    "levit_conv_128s": ("vision transformer", 128, True),
    "mobilevit_xxs": ("vision transformer", 128, False),
    "mobilevitv2_050": ("vision transformer", 128, False),
    "coatnet_nano_rw_224": ("vision transformer", 128, True),
    "pvt_v2_b0": ("vision transformer", 128, False),
    "efficientvit_b0": ("vision transformer", 128, False),
    "mixer_s16_224": ("vision transformer", 128, True),
    "resmlp_12_224": ("vision transformer", 128, True),
    # windowed / local attention
    "swin_tiny_patch4_window7_224": ("windowed attention", 128, True),
    "swinv2_cr_tiny_ns_224": ("windowed attention", 128, True),
    "swinv2_tiny_window8_256": ("windowed attention", 128, True),
    "maxvit_nano_rw_256": ("windowed attention", 128, True),
    "maxxvit_rmlp_nano_rw_256": ("windowed attention", 128, True),
    "gcvit_xxtiny": ("windowed attention", 128, True),
    "davit_tiny": ("windowed attention", 128, False),
    "nest_tiny_jx": ("windowed attention", 128, True),
    "twins_svt_small": ("windowed attention", 128, True),
    "tiny_vit_5m_224": ("windowed attention", 128, False),
    # LSTMs over image rows and columns
    "sequencer2d_s": ("recurrent", 64, False),
}
TIMM_QUICK = ("vit_tiny_patch16_224", "mobilenetv3_small_100", "convnext_atto")


def timm_models() -> list[ZooModel]:
    import timm

    out = []
    for name, (family, size, img_size) in TIMM.items():
        kwargs: dict[str, Any] = {"pretrained": False,
                                  "num_classes": 0 if name in ZERO_HEAD else 1000}
        if img_size:
            kwargs["img_size"] = size

        def build(name: str = name, kwargs: dict[str, Any] = kwargs) -> nn.Module:
            return timm.create_model(name, **kwargs)
        desc = f"3x{size}x{size}" + (" (features)" if name in ZERO_HEAD else "")
        out.append(ZooModel(f"timm/{name}", family, "timm", build, images(size), desc,
                            f"create_model({name!r}, {kwargs})",
                            quick=name in TIMM_QUICK))
    return out


# --------------------------------------------------------------------------------------------
# Hugging Face
# --------------------------------------------------------------------------------------------


def no_dropout_config(config: Any) -> Any:
    """Every dropout / layer-drop / SpecAugment probability of a config set to 0."""
    for k, v in config.to_dict().items():
        if isinstance(v, float) and ("drop" in k or k.startswith("mask_time_prob")
                                     or k.startswith("mask_feature_prob")):
            setattr(config, k, 0.0)
    return config


def _hf(name: str, family: str, model_cls: str, config_cls: str, config: dict[str, Any],
        inputs: dict[str, Callable[[int], torch.Tensor]], desc: str, quick: bool = False,
        ) -> ZooModel:
    import transformers

    def build() -> nn.Module:
        cfg = no_dropout_config(getattr(transformers, config_cls)(**config))
        return getattr(transformers, model_cls)(cfg)
    cls = getattr(transformers, model_cls)
    return ZooModel(f"hf/{name}", family, "transformers", build, by_position(cls, **inputs),
                    desc, f"{model_cls}({config_cls}(**{config}))", quick=quick)


def _ids(length: int = TOKENS, vocab: int = VOCAB) -> Callable[[int], torch.Tensor]:
    return lambda b: torch.randint(4, vocab, (b, length))


def _pixels(size: int) -> Callable[[int], torch.Tensor]:
    return lambda b: torch.randn(b, 3, size, size)


def hf_models() -> list[ZooModel]:
    # special token ids inside the small vocabulary (the configs' defaults are GPT-2's / CLIP's)
    special = {"pad_token_id": 1, "bos_token_id": 2, "eos_token_id": 3}
    small = {"vocab_size": VOCAB, "max_position_embeddings": 64}
    enc = {**small, "hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
           "intermediate_size": 512}
    dec = {**small, "hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
           "intermediate_size": 344, "num_key_value_heads": 2}
    ids = {"input_ids": _ids()}
    seq2seq = {"input_ids": _ids(), "decoder_input_ids": _ids(16)}
    text = f"{TOKENS} tokens (vocab {VOCAB})"
    s2s = f"{TOKENS} + 16 decoder tokens (vocab {VOCAB})"
    return [
        _hf("bert", "encoder LM", "BertForMaskedLM", "BertConfig", enc, ids, text, quick=True),
        _hf("roberta", "encoder LM", "RobertaForMaskedLM", "RobertaConfig",
            {**enc, "max_position_embeddings": 66}, ids, text),
        _hf("clip-text", "encoder LM", "CLIPTextModel", "CLIPTextConfig", {**enc, **special},
            ids, text),
        _hf("gpt2", "decoder LM", "GPT2LMHeadModel", "GPT2Config",
            {"vocab_size": VOCAB, "n_positions": 64, "n_embd": 128, "n_layer": 4, "n_head": 4,
             **special}, ids, text),
        _hf("gpt-neox", "decoder LM", "GPTNeoXForCausalLM", "GPTNeoXConfig",
            {**enc}, ids, text),
        _hf("llama", "decoder LM", "LlamaForCausalLM", "LlamaConfig", dec, ids, text,
            quick=True),
        _hf("mistral", "decoder LM", "MistralForCausalLM", "MistralConfig", dec, ids, text),
        _hf("qwen2", "decoder LM", "Qwen2ForCausalLM", "Qwen2Config", dec, ids, text),
        _hf("phi", "decoder LM", "PhiForCausalLM", "PhiConfig", enc, ids, text),
        _hf("t5", "encoder-decoder", "T5ForConditionalGeneration", "T5Config",
            {"vocab_size": VOCAB, "d_model": 128, "d_ff": 256, "d_kv": 32, "num_layers": 3,
             "num_decoder_layers": 3, "num_heads": 4}, seq2seq, s2s),
        _hf("bart", "encoder-decoder", "BartForConditionalGeneration", "BartConfig",
            {"vocab_size": VOCAB, "max_position_embeddings": 64, "d_model": 128,
             "encoder_layers": 3, "decoder_layers": 3, "encoder_attention_heads": 4,
             "decoder_attention_heads": 4, "encoder_ffn_dim": 256, "decoder_ffn_dim": 256},
            seq2seq, s2s),
        _hf("vit", "vision transformer", "ViTForImageClassification", "ViTConfig",
            {"image_size": 64, "patch_size": 8, "hidden_size": 128, "num_hidden_layers": 4,
             "num_attention_heads": 4, "intermediate_size": 512, "num_labels": 10},
            {"pixel_values": _pixels(64)}, "3x64x64"),
        _hf("clip-vision", "vision transformer", "CLIPVisionModel", "CLIPVisionConfig",
            {"image_size": 64, "patch_size": 8, "hidden_size": 128, "num_hidden_layers": 4,
             "num_attention_heads": 4, "intermediate_size": 512},
            {"pixel_values": _pixels(64)}, "3x64x64"),
        _hf("whisper", "speech", "WhisperForConditionalGeneration", "WhisperConfig",
            {"vocab_size": VOCAB, "num_mel_bins": 80, "d_model": 128, "encoder_layers": 2,
             "decoder_layers": 2, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
             "encoder_ffn_dim": 256, "decoder_ffn_dim": 256, "max_source_positions": 32,
             "max_target_positions": 64, "pad_token_id": 1, "bos_token_id": 2,
             "eos_token_id": 3, "decoder_start_token_id": 2},
            {"input_features": lambda b: torch.randn(b, 80, 64),
             "decoder_input_ids": _ids(16)}, "80x64 mel frames + 16 decoder tokens"),
        _hf("wav2vec2", "speech", "Wav2Vec2ForCTC", "Wav2Vec2Config",
            {"vocab_size": 32, "hidden_size": 128, "num_hidden_layers": 4,
             "num_attention_heads": 4, "intermediate_size": 512, "conv_dim": (64,) * 7,
             "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4},
            {"input_values": lambda b: torch.randn(b, 5120)}, "5120 samples (16 frames)"),
    ]


# --------------------------------------------------------------------------------------------
# Classic failures (and a few healthy recurrent models beside the tanh RNN)
# --------------------------------------------------------------------------------------------


class LSTMLanguageModel(nn.Module):
    """Embedding, two stacked single-layer LSTMs, vocabulary head (every step's logits)."""

    def __init__(self, vocab: int = VOCAB, dim: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm1 = nn.LSTM(dim, dim, batch_first=True)
        self.lstm2 = nn.LSTM(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm1(self.embed(idx))
        x, _ = self.lstm2(x)
        return self.head(x)


def classic_models() -> list[ZooModel]:
    # bench.zoo (the accuracy benchmark's builders) is imported by name: as Any to the type
    # checker, which would otherwise check that file too
    zoo: Any = importlib.import_module("bench.zoo")

    def mlp(act: str, depth: int) -> ZooModel:
        return ZooModel(f"classic/{act} MLP d{depth}", "MLP", "classic",
                        lambda: zoo.grid_mlp("plain", act, "default", depth),
                        zoo.vector_inputs(), f"{zoo.WIDTH} features",
                        f"bench.zoo.grid_mlp('plain', {act!r}, 'default', {depth})",
                        batch=zoo.GRID_BATCH, quick=act == "sigmoid", sick=True)

    def rnn(cell: str, steps: int, sick: bool) -> ZooModel:
        return ZooModel(f"classic/{cell} T={steps}", "recurrent", "classic",
                        lambda: zoo.RecurrentClassifier(cell), zoo.sequence_inputs(steps),
                        f"{steps} steps x 16 features",
                        f"bench.zoo.RecurrentClassifier({cell!r})", batch=16,
                        quick=(cell, steps) == ("rnn", 200), sick=sick)

    return [
        mlp("sigmoid", 20), mlp("tanh", 30), mlp("softsign", 20), mlp("hardtanh", 20),
        ZooModel("classic/sigmoid VGG-13 (no BN)", "CNN", "classic", lambda: zoo.VGG("sigmoid"),
                 zoo.image_inputs(3, 32), "3x32x32", "bench.zoo.VGG('sigmoid')", sick=True),
        ZooModel("classic/sigmoid LeNet-5", "CNN", "classic", zoo.LeNetSigmoid,
                 zoo.image_inputs(1, 28), "1x28x28", "bench.zoo.LeNetSigmoid()", batch=16,
                 sick=True),
        rnn("rnn", 200, True), rnn("lstm", 32, False), rnn("gru", 32, False),
        ZooModel("classic/LSTM LM 2x128", "recurrent", "classic", LSTMLanguageModel,
                 tokens(), f"{TOKENS} tokens (vocab {VOCAB})", "LSTMLanguageModel()"),
    ]


def all_models(max_params: int = MAX_PARAMS) -> tuple[list[ZooModel], list[str]]:
    """The whole zoo, and the models left out for size."""
    tv, left = torchvision_models(max_params)
    return [*classic_models(), *hf_models(), *timm_models(), *tv], left
