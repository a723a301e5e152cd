"""The library APIs the pre-filter lets import-time code call: the one place that lists them.

Code that runs when a model file is imported may build models, configs and tensors, seed, and set
up paths and loggers; it may not read or write files, start processes, reach the network, log to
a file or train. Every call the pre-filter resolves to a library name (``torch.nn.Linear``,
``os.path.join``) is looked up here: a name that matches an ``Api`` is harmless on that entry's
conditions (no ``pretrained=True``, no ``filename=``), anything else does work. A name is never
judged by its spelling, so an unknown capitalised class is work like any other unknown call.

Names are fully qualified as the pre-filter resolves them through the file's imports
(``nn.Linear`` with ``import torch.nn as nn`` is ``torch.nn.Linear``; builtins are
``builtins.print``). Patterns are regular expressions matched against the whole name.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Api:
    """Calls of the names matching ``pattern`` are harmless, on these conditions.

    ``falsy``: keywords that must be absent, ``None`` or ``False`` (they download weights);
    ``none``: keywords that must be given as ``None`` (their default downloads), only when the
    first argument starts with one of ``none_for`` if that is set; ``absent``: keywords that
    must not be given (a log file); ``max_positional``: a positional argument past this many is a
    download flag. An entry with conditions also refuses ``**kwargs`` it cannot see into.
    ``stores``: the callable arguments are kept, not called (decorators, ``functools.partial``),
    and so is any callable given to what the call returns (``torch.no_grad()(f)``).
    ``factory``: with ``stores``, the arguments configure the decorator the call returns
    (``functools.wraps(fn)``), which is not the first argument (``functools.partial(f)`` is ``f``
    when called).
    ``model``: the call builds a model, so a file assigning its result is worth importing."""

    pattern: str
    falsy: frozenset[str] = frozenset()
    none: frozenset[str] = frozenset()
    none_for: tuple[str, ...] = ()
    absent: frozenset[str] = frozenset()
    max_positional: int | None = None
    stores: bool = False
    factory: bool = False
    model: bool = False

    @property
    def conditional(self) -> bool:
        return bool(self.falsy or self.none or self.absent or self.max_positional is not None)


_WEIGHTS = frozenset({"weights", "pretrained"})
_BACKBONE = frozenset({"weights_backbone"})
# torchvision detection/segmentation builders download a backbone unless weights_backbone=None
_BACKBONE_MODELS = ("fasterrcnn", "maskrcnn", "keypointrcnn", "retinanet", "ssd", "fcos",
                    "deeplabv3", "fcn", "lraspp")
_TORCH_MODULES = ("hub|distributed|multiprocessing|onnx|utils|profiler|package|cuda|backends|jit"
                  "|export|testing|compiler|fx|optim|xpu|mps|mtia|accelerator|sparse|ao|quantization"
                  "|library|overrides|storage|serialization|monitor")
_BUILTINS = ("abs|all|any|ascii|bin|bool|bytearray|bytes|callable|chr|complex|delattr|dict|dir"
             "|divmod|enumerate|filter|float|format|frozenset|getattr|hasattr|hash|hex|id|int"
             "|isinstance|issubclass|iter|len|list|map|max|memoryview|min|next|object|oct|ord|pow"
             "|print|range|repr|reversed|round|set|setattr|slice|sorted|str|sum|super|tuple|type"
             "|zip|aiter|anext")

APIS: tuple[Api, ...] = (
    # builtins that do no I/O: not open, exec, eval, compile, input, breakpoint, __import__,
    # globals/locals/vars (a back door to any name), exit/quit, help
    Api(rf"builtins\.({_BUILTINS})"),
    Api(r"builtins\.(staticmethod|classmethod|property)", stores=True),
    Api(r"builtins\.[A-Z]\w*(Error|Exception|Warning|Exit|Interrupt|Iteration)"),
    # torch: tensors and tensor ops, seeding, defaults (top level, not save/load/from_file)
    Api(r"torch\.(no_grad|enable_grad|inference_mode|set_grad_enabled|compile)", stores=True),
    # mixed precision: ``@autocast('cuda', enabled=False)``, ``@custom_fwd(device_type=...)``
    # wrap a method, never call it (the arguments configure the decorator)
    Api(r"torch\.((cuda\.|cpu\.)?amp\.)?(autocast|custom_fwd|custom_bwd)", stores=True,
        factory=True),
    Api(rf"torch\.(?!(save|load|from_file|{_TORCH_MODULES})$)[A-Za-z]\w*"),
    Api(r"torch\.(nn|linalg|fft|special|distributions|autograd|func|nested|masked|amp|random"
        r"|types|signal)(\.\w+)+"),
    Api(r"torch\.ao\.nn(\.\w+)+"),
    Api(r"torch\.cuda\.(is_available|device_count|current_device|get_device_name"
        r"|get_device_capability|get_device_properties|is_bf16_supported|manual_seed"
        r"|manual_seed_all|set_device|amp\.\w+)"),
    Api(r"torch\.backends\.\w+\.(is_available|is_built|flags)"),
    Api(r"torch\.(jit\.(script|ignore|unused|export|interface|script_method)|fx\.wrap"
        r"|compiler\.(disable|allow_in_graph|assume_constant_result))", stores=True),
    Api(r"torch\.(jit\.(is_scripting|is_tracing|annotate|Final|Attribute)|fx\.\w+"
        r"|compiler\.(is_compiling|is_exporting|is_dynamo_compiling)|export\.(export|Dim)|utils\.checkpoint\.\w+"
        r"|utils\.data\.(Dataset|IterableDataset|TensorDataset|Subset|ConcatDataset"
        r"|random_split|default_collate)|sparse\.\w+|ao\.quantization\.\w+"
        r"|overrides\.\w+|types\.\w+)"),
    # model zoos: builders without pretrained weights, model classes, configs
    Api(r"torchvision\.models\.(?!(detection|segmentation|video|quantization|optical_flow"
        r"|feature_extraction|get_model|get_weight)$)[a-z]\w*", falsy=_WEIGHTS, model=True),
    Api(r"torchvision\.models\.(video|quantization|optical_flow)\.[a-z]\w*", falsy=_WEIGHTS,
        model=True),
    Api(r"torchvision\.models\.(detection|segmentation)\.[a-z]\w*", falsy=_WEIGHTS,
        none=_BACKBONE, model=True),
    Api(r"torchvision\.models\.get_model", falsy=_WEIGHTS, none=_BACKBONE,
        none_for=_BACKBONE_MODELS, model=True),
    Api(r"torchvision\.models\.(\w+\.)*[A-Z]\w*(?<!_Weights)"),
    Api(r"torchvision\.ops\.(\w+\.)*\w+"),
    Api(r"torchvision\.transforms(\.v2)?(\.functional)?\.[A-Za-z]\w*"),
    Api(r"timm\.create_model", falsy=frozenset({"pretrained", "checkpoint_path"}),
        max_positional=1, model=True),
    Api(r"timm\.(list_models|is_model|layers\.\w+|models\.layers\.\w+)"),
    # the classes of timm's model files (PatchEmbed, Attention, VisionTransformer): layers,
    # built without weights (those come through create_model's pretrained=True)
    Api(r"timm\.models\.\w+\.[A-Z]\w*"),
    Api(r"timm\.models\.(_registry\.|registry\.)?register_model", stores=True),
    Api(r"transformers\.(\w+\.)*[A-Z]\w*Config"),
    Api(r"transformers\.(\w+\.)*[A-Z]\w*Config\.(for_model|from_dict)"),
    Api(r"transformers\.(\w+\.)*[A-Z]\w*(Model|For[A-Z]\w*)", model=True),
    Api(r"transformers\.models\.\w+\.modeling_\w+\.[A-Z]\w*"),
    Api(r"transformers\.(Auto\w+\.from_config|[A-Z]\w*\._from_config)", model=True),
    Api(r"transformers\.(set_seed|logging\.(set_verbosity\w*|get_logger|disable_progress_bar"
        r"|enable_progress_bar))"),
    Api(r"(lightning\.pytorch|lightning|pytorch_lightning)\.(LightningModule|seed_everything)"),
    Api(r"einops\.(\w+|layers\.torch\.\w+)"),
    # version checks at import (``if version.parse(torch.__version__) < version.parse("1.7")``)
    Api(r"packaging\.(version\.(parse|Version)|specifiers\.\w+|requirements\.Requirement"
        r"|markers\.Marker|utils\.\w+)"),
    # whether a package is installed (read from its metadata, lazily): Lightning's guards
    Api(r"lightning_utilities\.core\.imports\.(RequirementCache|ModuleAvailableCache"
        r"|module_available|package_available|compare_version)"),
    # the standard library's pure parts
    Api(r"functools\.wraps", stores=True, factory=True),
    Api(r"(enum\.unique|abc\.abstractmethod|functools\.(partial|partialmethod|lru_cache"
        r"|cache|cached_property|singledispatch|total_ordering)|contextlib\.contextmanager"
        r"|typing(_extensions)?\.(overload|final|override|no_type_check)"
        r"|dataclasses\.dataclass)", stores=True),
    Api(r"(math|cmath|itertools|numbers|string|textwrap|re|enum|abc|datetime|fractions"
        r"|decimal|random|statistics|bisect|heapq|keyword)\.[\w.]+"),
    Api(r"(typing|typing_extensions|dataclasses|collections|types|copy|operator"
        r"|functools|warnings|contextlib)\.[\w.]+"),
    Api(r"threading\.(Lock|RLock|Event|Condition|Semaphore|BoundedSemaphore|local"
        r"|get_ident|current_thread)"),
    Api(r"json\.(loads|dumps)|inspect\.(signature|isclass|isfunction|ismethod|getmro)"),
    Api(r"os\.path\.(join|dirname|basename|abspath|normpath|realpath|splitext|split"
        r"|expanduser|expandvars|relpath|isabs|exists|isfile|isdir|commonpath|commonprefix"
        r"|normcase)"),
    Api(r"os\.(getenv|cpu_count|getcwd|getpid|fspath|environ\.(get|setdefault|copy|keys"
        r"|items|values|update|__contains__|__getitem__))"),
    Api(r"pathlib\.(Pure)?(Posix|Windows)?Path"),
    Api(r"sys\.(setrecursionlimit|getrecursionlimit|getsizeof|intern|std(out|err)\.(write"
        r"|flush))"),
    Api(r"time\.(time|time_ns|perf_counter|perf_counter_ns|monotonic|monotonic_ns|strftime"
        r"|localtime|gmtime|process_time)"),
    Api(r"logging\.(getLogger|StreamHandler|NullHandler|Formatter|Filter|captureWarnings"
        r"|disable|debug|info|warning|warn|error|critical|exception|log|getLevelName)"),
    Api(r"logging\.basicConfig", absent=frozenset({"filename", "filemode"})),
    # loguru's logger writes to stderr unless a sink is added (``logger.add``, not listed)
    Api(r"loguru\.logger\.(trace|debug|info|success|warning|error|critical|exception|log)"),
    Api(r"(numpy\.(random|linalg|fft)\.\w+)"),
    Api(r"numpy\.(?!(save|savez|savez_compressed|savetxt|load|loadtxt|genfromtxt|fromfile"
        r"|memmap|fromregex|DataSource|lib|ctypeslib|testing|f2py|distutils)$)[A-Za-z]\w*"),
)

# never harmless, whatever an entry above says: downloads and files under any name
_DENIED = re.compile(
    r".*\.(save|load|from_file|from_pretrained|save_pretrained|push_to_hub"
    r"|load_state_dict_from_url|download_url_to_file|download_url|download_and_extract_archive"
    r"|hf_hub_download|snapshot_download|methodcaller|_(?!_|from_config$)\w*)")
# names that are values, not calls, and are harmless wherever they are handed on
_DATA = re.compile(
    r"torch\.(float|double|half|bfloat16|cfloat|cdouble|chalf|complex\d*|float\d+\w*|int\d*"
    r"|uint\d+|long|short|bool|q?u?int\d+\w*|strided|sparse_\w+|channels_last\w*"
    r"|contiguous_format|preserve_format|inf|nan|pi|e|newaxis|Tensor|Size|dtype|device"
    r"|layout|memory_format|nn|nn\.functional|nn\.init)|math|typing"
    r"|sys\.(version_info|version|platform|maxsize|argv|byteorder|float_info|implementation"
    r"|hexversion|stdout|stderr)|os\.(sep|pathsep|linesep|name|environ|curdir|pardir|extsep)"
    r"|logging\.[A-Z]+|builtins\.(None|True|False|NotImplemented|Ellipsis|__debug__)"
    r"|.*\.__(version|name|doc|qualname|module|file)__")

# method names that do work whatever object they are called on (checkpoints, files, weights,
# training steps, processes); a method call on a value whose type is not known statically is
# harmless unless its name is here.
EFFECT_METHODS = frozenset({
    "save", "save_pretrained", "save_checkpoint", "save_model", "push_to_hub",
    "from_pretrained", "load", "load_pretrained", "load_from_checkpoint", "from_file",
    "get_state_dict", "to_json_file", "write", "write_text", "write_bytes", "writelines",
    "read", "read_text", "read_bytes", "readline", "readlines", "open", "mkdir", "makedirs",
    "touch", "unlink", "rmdir", "rmtree", "rename", "download", "fit", "backward",
    "step", "run", "start", "system", "popen", "spawn", "to_csv", "to_json", "to_parquet",
    "to_pickle", "to_excel", "to_hdf", "to_sql", "dump", "tofile", "savefig", "show", "savez",
    "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile", "memmap", "fromregex",
    "urlopen", "request", "send", "sendall", "connect", "upload", "export",
})
# and these too on a path (``Path.replace`` moves a file; ``str.replace`` does not)
PATH_EFFECT_METHODS = frozenset({"replace", "symlink_to", "hardlink_to", "chmod", "iterdir",
                                 "glob", "rglob"})
# builtins that neither call nor keep their arguments: handing a value to them hands it on to
# nothing (``isinstance(x, SomeClass)`` does not call ``SomeClass``)
PASSIVE = frozenset({"builtins." + n for n in (
    "isinstance", "issubclass", "id", "print", "repr", "str", "hasattr", "callable",
    "len", "hash", "format", "getattr", "bool", "int", "float", "complex", "ascii", "abs",
    "round")})


# namespaces every member of which is harmless to call: ``getattr(nn, name)()`` is fine
# whatever ``name`` is, so the pre-filter names such a call ``torch.nn.<any>``
ANY_MEMBER = frozenset({"torch.nn", "torch.nn.functional", "torch.nn.init", "torch.nn.modules",
                        "math", "einops"})
ANY = "<any>"


@lru_cache(maxsize=4096)
def lookup(name: str) -> Api | None:
    """The entry that makes calling ``name`` harmless, or None (the call does work)."""
    namespace, _, last = name.rpartition(".")
    if last == ANY:
        return Api(re.escape(name)) if namespace in ANY_MEMBER else None
    if _DENIED.fullmatch(name):
        return None
    for api in APIS:
        if re.fullmatch(api.pattern, name):
            return api
    return None


def inert(name: str) -> bool:
    """Whether handing ``name`` on (as an argument, in a container, an attribute, a return
    value) is harmless: whoever receives it may call it with any arguments, or it is data."""
    api = lookup(name)
    return (api is not None and not api.conditional) or bool(_DATA.fullmatch(name))


def _falsy(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value in (None, False)


def violation(api: Api, call: ast.Call, skip: int = 0) -> str | None:
    """Why this call breaks the entry's conditions (" with `pretrained=...`"), or None.
    ``skip`` positional arguments are not the API's own (``partial(f, ...)``'s ``f``)."""
    if not api.conditional:
        return None
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    if any(k.arg is None for k in call.keywords):
        return " with `**` keyword arguments that cannot be checked"
    positional = call.args[skip:]
    if any(isinstance(a, ast.Starred) for a in positional):
        return " with `*` arguments that cannot be checked"
    if api.max_positional is not None and len(positional) > api.max_positional:
        return f" with more than {api.max_positional} positional argument(s)"
    for name in sorted(api.falsy & keywords.keys()):
        if not _falsy(keywords[name]):
            return f" with `{name}=...`"
    for name in sorted(api.absent & keywords.keys()):
        return f" with `{name}=...`"
    if api.none:
        first = positional[0] if positional else None
        exempt = bool(api.none_for) and isinstance(first, ast.Constant) and isinstance(
            first.value, str) and not first.value.startswith(api.none_for)
        for name in sorted(api.none):
            value = keywords.get(name)
            if not exempt and not (value is not None and isinstance(value, ast.Constant)
                                   and value.value is None):
                return f" without `{name}=None` (its default downloads weights)"
    return None


def builds_model(name: str) -> bool:
    """A library call that returns a model (a zoo builder, a ``transformers`` model class)."""
    api = lookup(name)
    return api is not None and api.model
