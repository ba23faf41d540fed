"""Q2: the bottleneck's hidden size on tiny random BERTs (built here, no downloads)."""
import math
import warnings
from fractions import Fraction

import pytest

from helpers import adapter_dims

HEADS = {312: 12, 384: 12, 768: 12, 100: 4}  # 100: not divisible by 3


def tiny_bert(d_model: int, layers: int = 2):
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=d_model, num_attention_heads=HEADS[d_model], num_hidden_layers=layers,
        intermediate_size=64, max_position_embeddings=32))


def test_reduction_factor_for():
    assert adapter_dims.reduction_factor_for(8 / 3) == 0.375
    assert adapter_dims.reduction_factor_for(1 / 16) == 16
    with pytest.raises(ValueError, match="hidden_ratio must be positive"):
        adapter_dims.reduction_factor_for(0)


@pytest.mark.parametrize("config, per_layer", [("seq_bn", 1), ("double_seq_bn", 2), ("par_bn", 1)])
@pytest.mark.parametrize("d_model", list(HEADS))
def test_hidden_size_is_floor_of_8_thirds(d_model, config, per_layer):
    model = tiny_bert(d_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = adapter_dims.add_bottleneck_adapter(model, 8 / 3, config=config)
    expected = math.floor(8 * d_model / 3)
    assert info.d_model == d_model and info.hidden_size == expected
    assert expected == adapter_dims.expected_hidden_size(d_model, 8 / 3)
    for _, mod in adapter_dims.adapter_modules(model, "q2"):  # every built module, not a recomputation
        assert mod.adapter_down[0].weight.shape == (expected, d_model)
        assert mod.adapter_up.weight.shape == (d_model, expected)
    assert len(info.positions) == 2 * per_layer
    assert info.trainable_params == 2 * per_layer * (2 * d_model * expected + expected + d_model)
    # train_adapter froze the encoder: only the adapter (and the task head) train
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"bert", "classifier"}
    assert all("adapters.q2" in n for n, p in model.bert.named_parameters() if p.requires_grad)


def test_par_bn_sits_in_parallel_and_houlsby_after_both():
    model = tiny_bert(312)
    assert {p for _, p in adapter_dims.add_bottleneck_adapter(model, config="par_bn").positions} == \
        {adapter_dims.PLACES["parallel"]}
    model = tiny_bert(312)
    assert {p for _, p in adapter_dims.add_bottleneck_adapter(model, config="double_seq_bn").positions} == \
        {adapter_dims.PLACES["attention"], adapter_dims.PLACES["output"]}


def test_warns_when_not_a_whole_number():
    with pytest.warns(UserWarning, match=r"266.67 is not a whole number; adapters will make int\(100 // 0.375\) = 266"):
        adapter_dims.add_bottleneck_adapter(tiny_bert(100))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adapter_dims.add_bottleneck_adapter(tiny_bert(312))  # 832 exactly: no warning


def test_unknown_config():
    with pytest.raises(ValueError, match="unknown adapter config 'lora'"):
        adapter_dims.add_bottleneck_adapter(tiny_bert(312), config="lora")


@pytest.mark.parametrize("d_model", [384, 100])
def test_saves_and_reloads_with_the_same_hidden_size(tmp_path, d_model):
    import adapters

    model = tiny_bert(d_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = adapter_dims.add_bottleneck_adapter(model, config="double_seq_bn")
    model.save_adapter(str(tmp_path / "q2"), "q2")
    fresh = tiny_bert(d_model)
    adapters.init(fresh)
    name = fresh.load_adapter(str(tmp_path / "q2"))
    reloaded = adapter_dims.describe(fresh, name)
    assert reloaded.hidden_size == built.hidden_size and reloaded.positions == built.positions
    saved = dict(model.named_parameters())
    for n, p in fresh.named_parameters():
        if "adapters.q2" in n:
            assert (p == saved[n]).all()


def test_library_line_is_read_from_the_installed_package():
    path, lineno, line = adapter_dims.library_hidden_size_line()
    assert path.endswith("bottleneck.py") and "reduction_factor" in line
    with open(path) as f:
        assert f.read().splitlines()[lineno - 1].strip() == line


def test_layer_figure_labels_real_sizes():
    model = tiny_bert(312)
    info = adapter_dims.add_bottleneck_adapter(model)
    fig = adapter_dims.layer_figure(info, model.config)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "312 -> 832" in texts and "hidden = 832" in fig._suptitle.get_text()


@pytest.mark.parametrize("ratio, d_model", [(100, 384), (Fraction(8, 3), 384), (8 / 3, 384), (8 / 3, 100),
                                            (1 / 3, 312), (7, 768)])
def test_sizes_are_exact_not_float_floor_division(ratio, d_model):
    expected = math.floor(Fraction(ratio).limit_denominator(1000) * d_model)  # 384 // 0.01 is 38399.0 in floats
    assert adapter_dims.expected_hidden_size(d_model, ratio) == expected
    rf = adapter_dims.library_reduction_factor(d_model, ratio)
    assert int(d_model // rf) == expected  # what the library will compute from it


def test_the_widest_allowed_bottleneck_builds_exactly():
    model = tiny_bert(384, layers=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 100 x 384 is whole: no warning
        assert adapter_dims.add_bottleneck_adapter(model, 16).hidden_size == 16 * 384


@pytest.mark.parametrize("ratio, message", [(1 / 1000, "gives a bottleneck of 0 units"),
                                            (100, "gives a bottleneck of 38400 units"),
                                            (-1, "must be a positive number"), ("3", "must be a positive number")])
def test_out_of_bounds_sizes_fail_up_front(ratio, message):
    with pytest.raises(ValueError, match=message):
        adapter_dims.add_bottleneck_adapter(tiny_bert(384, layers=1), ratio)
