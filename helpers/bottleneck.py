"""Bottleneck adapters (AdapterHub's ``adapters``) built with a chosen hidden size: shared
machinery, used by Q2's notebook (through ``helpers.adapter_dims``) and by the training runs'
``adapter`` method (``helpers.methods``).

In ``adapters`` the bottleneck's hidden size is ``int(hidden_size // reduction_factor)``
(``library_hidden_size_line()`` reads that line from the installed package). A
``reduction_factor`` below 1 makes an *up*-projection, so ``reduction_factor = 3/8`` gives a
hidden size of ``8·d_m/3``: exact when ``d_m`` is divisible by 3, floored otherwise.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import numbers
import warnings
from fractions import Fraction

# adapters logs "adapters available but none are activated" from forward passes it makes while an
# adapter is being added, before it is activated; add_bottleneck_adapter always activates it.
logging.getLogger("adapters.model_mixin").setLevel(logging.ERROR)

# The configs the question compares, by their names in adapters' registry.
CONFIGS = {
    "seq_bn": "Pfeiffer: one adapter after the feed-forward block",
    "double_seq_bn": "Houlsby: one after multi-head attention and one after the feed-forward block",
    "par_bn": "He et al.: in parallel to the feed-forward block",
}
PLACES = {"attention": "after multi-head attention", "output": "after the feed-forward block",
          "parallel": "in parallel to the feed-forward block"}


@dataclasses.dataclass(frozen=True)
class AdapterInfo:
    """One adapter as built: its input size ``d_model``, its ``hidden_size`` (read from the
    down-projection of each built module) and where it sits (``positions``: layer, place)."""

    name: str
    config: str
    reduction_factor: float
    d_model: int
    hidden_size: int
    trainable_params: int
    positions: list[tuple[int, str]]
    non_linearity: str = ""


def reduction_factor_for(ratio: float) -> float:
    """The ``reduction_factor`` that makes the hidden size ``ratio · d_m``: its reciprocal,
    taken as an exact fraction (8/3 gives exactly 0.375, so no rounding creeps in)."""
    if not ratio > 0:
        raise ValueError(f"hidden_ratio must be positive, got {ratio!r}")
    return float(1 / Fraction(ratio).limit_denominator(1000))


# The widest bottleneck add_bottleneck_adapter builds, as a multiple of d_model (16 x 384 = 6144).
MAX_HIDDEN_RATIO = 16


def expected_hidden_size(d_model: int, ratio: float) -> int:
    """``floor(ratio · d_model)``, computed exactly (with fractions, not float floor division)."""
    return math.floor(Fraction(ratio).limit_denominator(1000) * d_model)


def library_reduction_factor(d_model: int, ratio: float) -> float:
    """The ``reduction_factor`` to hand the library so that its ``int(d_model // reduction_factor)``
    equals ``expected_hidden_size``: ``1 / ratio`` where that float division lands exactly (8/3
    gives 0.375), else ``d_model / (hidden + 0.5)``, which no rounding can push across a whole
    number (``384 // 0.01`` is 38399.0 in floats, not 38400)."""
    hidden = expected_hidden_size(d_model, ratio)
    rf = reduction_factor_for(ratio)
    return rf if int(d_model // rf) == hidden else d_model / (hidden + 0.5)


def library_hidden_size_line() -> tuple[str, int, str]:
    """(file, line number, source line) where the installed ``adapters`` computes the bottleneck's
    hidden size from ``reduction_factor``: read at run time, so it stays true if the library changes."""
    from adapters.methods.bottleneck import BottleneckLayer

    lines, start = inspect.getsourcelines(BottleneckLayer.add_adapter)
    for offset, line in enumerate(lines):
        if "down_sample=" in line and "reduction_factor" in line:
            return inspect.getsourcefile(BottleneckLayer), start + offset, line.strip()
    raise RuntimeError("the installed adapters no longer computes down_sample from reduction_factor in "
                       "BottleneckLayer.add_adapter; read adapters/methods/bottleneck.py")


def adapter_modules(model, name: str):
    """``(module path, module)`` of every bottleneck module of adapter ``name`` in the model."""
    from adapters.methods.modeling import Adapter

    return [(path, mod) for path, mod in model.named_modules()
            if isinstance(mod, Adapter) and path.endswith(f"adapters.{name}")]


def describe(model, name: str, config: str = "", reduction_factor: float = float("nan")) -> AdapterInfo:
    """Read an adapter that is already in the model: sizes from its modules, its positions."""
    mods = adapter_modules(model, name)
    if not mods:
        raise ValueError(f"the model has no bottleneck adapter named {name!r}")
    sizes = {m.adapter_down[0].out_features for _, m in mods}
    inputs = {m.input_size for _, m in mods}
    if len(sizes) != 1 or len(inputs) != 1:  # a per-layer reduction_factor mapping
        raise ValueError(f"adapter {name!r} has different sizes in different layers: hidden {sorted(sizes)}")
    positions = []
    for path, mod in mods:
        parts = path.split(".")
        layer = next(int(p) for p in parts if p.isdigit())
        place = "attention" if "attention" in parts else "output"
        positions.append((layer, PLACES["parallel"] if type(mod).__name__ == "ParallelAdapter" else PLACES[place]))
    params = sum(p.numel() for _, m in mods for p in m.parameters())
    act = (model.adapters_config.get(name) or {}).get("non_linearity", "")
    return AdapterInfo(name, config, reduction_factor, inputs.pop(), sizes.pop(), params, sorted(positions), act)


def add_bottleneck_adapter(model, hidden_ratio: float = 8 / 3, name: str = "q2", config: str = "seq_bn",
                           train: bool = True, **config_kwargs) -> AdapterInfo:
    """Add a bottleneck adapter whose hidden size is ``hidden_ratio · d_m`` (floored) through the
    library's config (``reduction_factor = 1 / hidden_ratio``), make it the one that trains (when
    ``train``), and return what was built. Warns when ``hidden_ratio · d_m`` is not a whole number."""
    import adapters
    from adapters import AdapterConfig

    if config not in CONFIGS:
        raise ValueError(f"unknown adapter config {config!r}: choose one of {', '.join(CONFIGS)}")
    d_model = model.config.hidden_size
    if isinstance(hidden_ratio, bool) or not isinstance(hidden_ratio, numbers.Real) or not hidden_ratio > 0:
        raise ValueError(f"hidden_ratio must be a positive number, got {hidden_ratio!r}")
    hidden = expected_hidden_size(d_model, hidden_ratio)
    if not 1 <= hidden <= MAX_HIDDEN_RATIO * d_model:
        raise ValueError(f"hidden_ratio {hidden_ratio:g} gives a bottleneck of {hidden} units for d_model {d_model}; "
                         f"it must be between 1 and {MAX_HIDDEN_RATIO} x d_model = {MAX_HIDDEN_RATIO * d_model} "
                         f"(reduction_factor between 1/{MAX_HIDDEN_RATIO} and {d_model})")
    rf = library_reduction_factor(d_model, hidden_ratio)
    exact = Fraction(hidden_ratio).limit_denominator(1000) * d_model
    if exact.denominator != 1:
        warnings.warn(f"hidden_ratio {hidden_ratio:.4g} x d_model {d_model} = {float(exact):.2f} is not a whole "
                      f"number; adapters will make int({d_model} // {rf:.6g}) = {hidden}", stacklevel=2)
    if not hasattr(model, "add_adapter") or not hasattr(model, "adapters_config"):
        adapters.init(model)  # give a plain transformers model the adapter methods
    model.add_adapter(name, config=AdapterConfig.load(config, reduction_factor=rf, **config_kwargs))
    if train:
        model.train_adapter(name)  # freezes everything else and activates the adapter
    else:
        model.set_active_adapters(name)
    return describe(model, name, config, rf)
