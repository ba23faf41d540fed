"""Q1 training in the smoke profile: every method, on real MRPC rows, offline."""
import math

import pytest

from helpers import data, inference, methods, results, runinfo, settings, training


@pytest.mark.slow
@pytest.mark.parametrize("method", list(methods.METHODS))
def test_run_every_method(smoke_run, mrpc_dir, method):
    result, board = smoke_run(method)
    evals = result.evals()
    assert len(evals) == 2 and [e["epoch"] for e in evals] == [1.0, 2.0]  # validation every epoch
    assert any("loss" in h for h in result.history)
    assert result.best["eval_accuracy"] == max(e["eval_accuracy"] for e in evals)
    assert set(result.test) == {"accuracy", "f1", "loss"} and 0 <= result.test["accuracy"] <= 1
    assert result.config["seed"] == 0 and result.config["environment"]["transformers"].startswith("4.57")
    assert result.config["data"]["rows"] == {"train": 64, "validation": 32, "test": 32}
    if method == "full":
        assert result.trainable_params == result.total_params
    else:
        assert 0 < result.trainable_share < 0.15
    # JSON round trip
    assert results.RunResult.from_json(result.to_json()) == result
    # the saved model reloads, and scores the same test rows the same way
    test = data.load_mrpc(mrpc_dir, verbose=False)["test"].shuffle(seed=0).select(range(32))
    preds = inference.predict(result.output_dir, test["text1"], test["text2"])
    reloaded = sum(p["label"] == y for p, y in zip(preds, test["label"])) / len(test)
    assert reloaded == pytest.approx(result.test["accuracy"])
    # the curves callback recorded this run and wrote its PNG headless
    assert board.series[method]["accuracy"] and board.png.is_file()


@pytest.mark.slow
def test_prefix_projection_trains_more(smoke_run):
    with_proj, without = smoke_run("v2")[0], smoke_run("v2-noproj")[0]
    # without projection: 2 (key, value) x 6 layers x 384 x 20 tokens, plus the 2-way head
    assert without.trainable_params == 2 * 6 * 384 * 20 + (384 * 2 + 2)
    assert with_proj.trainable_params > without.trainable_params


@pytest.mark.slow
def test_schedule_is_sized_in_steps(smoke_run):
    result, _ = smoke_run("v2-noproj")
    lrs = [h["learning_rate"] for h in result.history if "learning_rate" in h]
    peak = result.config["learning_rate"]
    assert max(lrs) == pytest.approx(peak) and lrs[-1] < 0.25 * peak  # warm-up, then decay to ~0
    assert result.config["num_training_steps"] == 2 * math.ceil(64 / 16)


def test_v1_pooler_reads_cls(mrpc_dir):
    """With cls_pooling the pooler sees the real tokens only ([CLS] first), not the prompts."""
    import torch

    from helpers.models import load_tokenizer, resolve_model

    cfg = settings.resolve_config("v1", "smoke")
    choice = resolve_model("embedded", verbose=False)
    tok = load_tokenizer(choice)
    batch = tok(["a cat"], ["a dog"], return_tensors="pt")
    for cls_pooling, expected in ((True, batch["input_ids"].shape[1]),
                                  (False, batch["input_ids"].shape[1] + cfg["num_virtual_tokens"])):
        net = methods.get("v1").build({**cfg, "cls_pooling": cls_pooling}, choice)
        seen = []
        net.get_base_model().bert.pooler.register_forward_hook(lambda m, a, o, seen=seen: seen.append(a[0].shape[1]))
        with torch.no_grad():
            net(**batch)
        assert seen == [expected]


def test_dropout_setting_silences_every_dropout_in_training(mrpc_dir):
    """dropout=0 (v2's default): two forward passes in training mode agree; with BERT's 0.1 they do not."""
    import torch

    from helpers.models import load_tokenizer, resolve_model

    choice = resolve_model("embedded", verbose=False)
    batch = load_tokenizer(choice)(["a cat sat"], ["a dog sat"], return_tensors="pt")
    assert settings.resolve_config("v2", "smoke")["dropout"] == 0.0
    for dropout, same in ((0.0, True), (0.1, False)):
        net = methods.get("v2").build(settings.resolve_config("v2", "smoke", dropout=dropout), choice).train()
        torch.manual_seed(0)
        with torch.no_grad():
            a, b = net(**batch).logits, net(**batch).logits
        assert torch.equal(a, b) is same, dropout
    with pytest.raises(ValueError, match="dropout=1.5 is not allowed"):
        settings.resolve_config("v2", "smoke", dropout=1.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="v3"), "unknown method 'v3': choose one of v1, v2"),
    (dict(method="v2", profile="huge"), "unknown profile 'huge'"),
    (dict(method="v2-noproj", encoder_hidden_size=64), "does not take encoder_hidden_size"),
    (dict(method="v2", learning_rate=-1e-3), r"setting learning_rate=-0.001 is not allowed: a number in \(0, 1\]"),
    (dict(method="v1", num_train_epochs=0), r"setting num_train_epochs=0 is not allowed: a number in \(0, 1000\]"),
    (dict(method="v2", precision="fp8"), "setting precision='fp8' is not allowed: one of auto, fp32, bf16, fp16"),
])
def test_bad_configuration_fails_at_once(kwargs, message):
    with pytest.raises(ValueError, match=message):
        settings.resolve_config(**kwargs)


@pytest.mark.slow
def test_precision_is_chosen_for_the_machine_and_recorded(smoke_run, tmp_path):
    result, _ = smoke_run("v2")
    assert result.config["precision"] == "auto"
    assert result.config["precision_used"] == runinfo.resolve_precision("auto") in ("fp32", "bf16", "fp16")
    with_bf16, without = tmp_path / "zen4", tmp_path / "old"
    with_bf16.write_text("processor : 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor : 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert runinfo.cpu_has_bf16(with_bf16) and not runinfo.cpu_has_bf16(without)
    assert not runinfo.cpu_has_bf16(tmp_path / "missing")  # unreadable: no bf16, train in fp32


def test_fp16_on_a_cpu_fails_clearly():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="fp16' needs a CUDA GPU"):
        runinfo.resolve_precision("fp16")
    assert runinfo.resolve_precision("auto") == "fp32"  # bf16 autocast was no faster on a CPU (results/bench_cpu.json)


def test_bf16_on_a_cpu_without_bf16_instructions_warns(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runinfo, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="emulated and slower"):
        assert runinfo.resolve_precision("bf16") == "bf16"


def test_unwritable_output_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot be written"):
        training.run("v2", profile="smoke", output_dir=blocker / "sub")


def test_collapse_is_read_from_the_committed_runs():
    runs = {p.stem: r for p, r in results.load_results().items()}
    if "q1_quick4_v2_lr1e-3" not in runs:
        pytest.skip("the committed exploration runs are not in results/")
    assert runs["q1_quick4_v2_lr1e-3"].collapsed(0.6838235294117647)
    assert not runs["q1_quick4_v2_head1e-2"].collapsed(0.6838235294117647)
