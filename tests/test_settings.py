"""Typed settings: every bad value fails at once, before anything loads, naming field, value and range."""
import dataclasses
import time

import pytest

from helpers import settings
from helpers.__main__ import main

BAD = [
    ("train_limit", -5, r"train_limit=-5 is not allowed: a whole number in \[1, "),
    ("weight_decay", "abc", r"weight_decay='abc' is not allowed: a number in \[0, 1\]"),
    ("num_virtual_tokens", 2.5, r"num_virtual_tokens=2.5 is not allowed: a whole number"),
    ("prefix_projection", "no", r"prefix_projection='no' is not allowed: true or false"),
    ("warmup_ratio", -3, r"warmup_ratio=-3 is not allowed"),
    ("learning_rate", 0, r"learning_rate=0 is not allowed: a number in \(0, 1\]"),
    ("precision", "fp8", r"precision='fp8' is not allowed: one of auto, fp32, bf16, fp16"),
]


@pytest.mark.parametrize("name, value, message", BAD)
def test_bad_values_fail_fast(name, value, message):
    method = "v2" if name != "reduction_factor" else "adapter"
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        settings.resolve_config(method, "smoke", **{name: value})
    assert time.perf_counter() - start < 1.0


def test_adapter_reduction_factor_out_of_range():
    with pytest.raises(ValueError, match=r"reduction_factor=100000 is not allowed"):
        settings.resolve_config("adapter", "smoke", reduction_factor=100000)


def test_booleans_accept_true_and_false_only():
    assert settings.resolve_config("v2", "smoke", prefix_projection="false")["prefix_projection"] is False
    assert settings.resolve_config("v2", "smoke", prefix_projection=True)["prefix_projection"] is True
    with pytest.raises(ValueError, match="true or false"):
        settings.resolve_config("v2", "smoke", prefix_projection=1)


def test_settings_are_frozen_and_read_back_from_results():
    cfg = settings.resolve_config("v1", "smoke")
    s = settings.RunSettings.from_config({**cfg, "seed": 3, "environment": {}})
    assert s.num_virtual_tokens == 20 and s.cls_pooling is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.learning_rate = 1.0


@pytest.mark.parametrize("setting", ["train_limit=-5", "weight_decay=abc", "num_virtual_tokens=2.5",
                                     "prefix_projection=no", "warmup_ratio=-3"])
def test_cli_rejects_bad_settings_in_process(setting, capsys):
    start = time.perf_counter()
    assert main(["q1", "--method", "v2", "--profile", "smoke", "--set", setting]) == 2
    assert f"setting {setting.split('=')[0]}=" in capsys.readouterr().err
    assert time.perf_counter() - start < 1.0


def test_help_lists_every_setting_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["q1", "--help"])
    text = capsys.readouterr().out
    for name in settings.RULES:
        assert f"  {name} " in text
    assert "v2=0.001" in text and "default 0.06" in text
