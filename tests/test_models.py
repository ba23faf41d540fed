import time

import pytest

from helpers import config, models


@pytest.fixture
def tiny_bert_dir(tmp_path):
    """A tiny random BERT checkpoint folder (config, safetensors, vocab), built here: no download."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path / "tinybert"
    cfg = BertConfig(vocab_size=64, hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=48)
    BertForSequenceClassification(cfg).save_pretrained(folder)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(59)]))
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    return folder


def test_offline_auto_is_embedded_and_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TINYBERT_DIR", raising=False)
    monkeypatch.setattr(config, "DATA_DIR", tmp_path)
    start = time.perf_counter()
    choice = models.resolve_model()
    assert time.perf_counter() - start < 10  # the hub is never waited on offline
    assert choice.source == "embedded" and (models.embedded_model_dir() / "model.safetensors").is_file()
    assert "HF_HUB_OFFLINE" in choice.reason


def test_says_what_it_chose(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.resolve_model("embedded")
    assert "Model: sentence-transformers/all-MiniLM-L6-v2 (embedded" in capsys.readouterr().out


def test_local_tinybert_is_preferred(tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("TINYBERT_DIR", str(tiny_bert_dir))
    choice = models.resolve_model()
    assert choice.source == "local" and choice.path == str(tiny_bert_dir)
    model = models.load_classifier(choice)
    assert model.config.hidden_size == 24 and model.num_labels == 2


def test_repo_tinybert_folder(tiny_bert_dir, monkeypatch):
    monkeypatch.delenv("TINYBERT_DIR", raising=False)
    monkeypatch.setattr(config, "DATA_DIR", tiny_bert_dir.parent)
    assert models.resolve_model().reason == "data/tinybert in the repository"


def test_explicit_bad_path_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.resolve_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        models.resolve_model(str(tmp_path / "empty"))


def test_folder_without_weights(tmp_path, tiny_bert_dir, monkeypatch):
    (tiny_bert_dir / "model.safetensors").unlink()
    monkeypatch.setenv("TINYBERT_DIR", str(tiny_bert_dir))
    with pytest.raises(FileNotFoundError, match="has no weights"):
        models.resolve_model()


def test_hub_id_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set"):
        models.resolve_model("huawei-noah/TinyBERT_General_4L_312D")
