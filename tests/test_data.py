import pytest
from conftest import make_jsonl_folder, write_jsonl

from helpers import config, data

GLUE_HEAD = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"


def make_glue_folder(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.tsv", "dev.tsv", "msr_paraphrase_test.txt"):
        (folder / name).write_text(GLUE_HEAD + '1\t1\t2\tHe said " yes " .\tHe agreed .\n'
                                   "0\t3\t4\tThe sky is blue .\tStocks fell today .\n")
    return folder


def test_real_mrpc_sizes(mrpc_dir):
    dsd = data.load_mrpc(mrpc_dir)
    assert {s: len(dsd[s]) for s in data.SPLITS} == {"train": 3668, "validation": 408, "test": 1725}
    assert set(dsd["train"].column_names) == {"text1", "text2", "label", "idx"}
    assert sum(dsd["validation"]["label"]) == 279  # the README's count of label 1


def test_mrpc_dir_env_and_relative_to_repo(mrpc_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("MRPC_DIR", str(mrpc_dir))
    assert data.find_mrpc().location == str(mrpc_dir)
    # a relative MRPC_DIR that does not exist from the working directory is read from the repo root
    monkeypatch.chdir(tmp_path)
    rel = mrpc_dir.relative_to(config.PROJ_ROOT.parent)
    monkeypatch.setenv("MRPC_DIR", str("../" / rel))
    assert data.find_mrpc().kind == "jsonl"


def test_jsonl_layout(tmp_path):
    dsd = data.load_mrpc(make_jsonl_folder(tmp_path / "m", n=5))
    assert len(dsd["train"]) == 5 and dsd["test"][1]["label"] == 1
    assert dsd["train"].features["label"].names == data.LABEL_NAMES


def test_glue_layout_with_quotes(tmp_path):
    dsd = data.load_mrpc(make_glue_folder(tmp_path / "g"))
    assert dsd["train"][0]["text1"] == 'He said " yes " .'
    assert dsd["validation"]["label"] == [1, 0]


def test_repo_data_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("MRPC_DIR", raising=False)
    monkeypatch.setattr(config, "DATA_DIR", tmp_path)
    make_jsonl_folder(tmp_path / "mrpc")
    assert data.find_mrpc().reason == "data/mrpc in the repository"


def test_offline_without_data_lists_every_way(tmp_path, monkeypatch):
    monkeypatch.delenv("MRPC_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(config, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        data.load_mrpc()
    for hint in ("MRPC_DIR", "load_mrpc(", "HF_HUB_OFFLINE", str(tmp_path / "mrpc")):
        assert hint in str(e.value)


def test_missing_split_file(tmp_path):
    folder = make_jsonl_folder(tmp_path / "m")
    (folder / "test.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="missing test.jsonl"):
        data.load_mrpc(folder)


def test_source_that_is_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_mrpc(tmp_path / "nowhere")


@pytest.mark.parametrize("line, message", [
    ('{"text1": "a", "text2": "b", "label": 1', "line 2: not valid JSON"),
    ('{"text1": "a", "label": 1}', "line 2: missing field 'text2'"),
    ('{"text1": "a", "text2": "b", "label": 2}', "line 2: field 'label' must be 0 or 1"),
    ('{"text1": "a", "text2": "b", "label": "1"}', "line 2: field 'label' must be 0 or 1"),
    ('{"text1": "", "text2": "b", "label": 1}', "line 2: field 'text1' must be a non-empty string"),
    ('["a", "b", 1]', "line 2: expected a JSON object"),
])
def test_bad_jsonl_record_names_file_and_line(tmp_path, line, message):
    folder = make_jsonl_folder(tmp_path / "m")
    good = '{"text1": "x", "text2": "y", "label": 0}'
    write_jsonl(folder / "validation.jsonl", [good, line])
    with pytest.raises(ValueError) as e:
        data.load_mrpc(folder)
    assert str(folder / "validation.jsonl") in str(e.value) and message in str(e.value)


def test_empty_split(tmp_path):
    folder = make_jsonl_folder(tmp_path / "m")
    (folder / "train.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="train.jsonl: the split is empty"):
        data.load_mrpc(folder)


def test_bad_glue_rows(tmp_path):
    folder = make_glue_folder(tmp_path / "g")
    (folder / "dev.tsv").write_text(GLUE_HEAD + "1\t1\t2\tonly three\n")
    with pytest.raises(ValueError, match=r"dev.tsv, line 2: expected 5 tab-separated fields"):
        data.load_mrpc(folder)
    (folder / "dev.tsv").write_text(GLUE_HEAD + "yes\t1\t2\ta\tb\n")
    with pytest.raises(ValueError, match=r"dev.tsv, line 2: field 'Quality' must be 0 or 1"):
        data.load_mrpc(folder)
    (folder / "dev.tsv").write_text("a\tb\n")
    with pytest.raises(ValueError, match=r"dev.tsv, line 1: expected the header"):
        data.load_mrpc(folder)


def test_majority_accuracy(mrpc_dir):
    dsd = data.load_mrpc(mrpc_dir, verbose=False)
    # the README's figures: 0.6838 on validation, 0.6649 on test
    assert round(data.majority_accuracy(dsd["validation"]), 4) == 0.6838
    assert round(data.majority_accuracy(dsd["test"]), 4) == 0.6649


@pytest.mark.parametrize("line, message", [
    ({"text1": "a .", "text2": "b .", "label": 1, "idx": "abc"}, r"line 2: field 'idx' must be a whole number, got"),
    ({"text1": "a .", "text2": "b .", "label": 1, "idx": None}, r"line 2: field 'idx' must be a whole number, got No"),
    ({"text1": "a .", "text2": "b .", "label": 1, "idx": 0}, r"line 2: idx 0 repeats line 1 of the same split"),
])
def test_bad_idx_names_file_and_line(tmp_path, line, message):
    folder = make_jsonl_folder(tmp_path / "m")
    write_jsonl(folder / "train.jsonl", [{"text1": "x .", "text2": "y .", "label": 0, "idx": 0}, line])
    with pytest.raises(ValueError, match=message):
        data.load_mrpc(folder, verbose=False)


def test_invalid_utf8_names_file_and_line(tmp_path):
    folder = make_jsonl_folder(tmp_path / "m")
    good = '{"text1": "caf\u00e9 .", "text2": "b .", "label": 1, "idx": 0}\n'.encode()
    (folder / "validation.jsonl").write_bytes(good + b'{"text1": "caf\xc3", "text2": "b .", "label": 1, "idx": 1}\n')
    with pytest.raises(ValueError, match=r"validation.jsonl, line 2: not valid UTF-8 \(byte 0xc3 at column 15\)"):
        data.load_mrpc(folder, verbose=False)


def test_unreadable_file_names_it(tmp_path, monkeypatch):
    folder = make_jsonl_folder(tmp_path / "m")
    real_open = open

    def deny(path, *args, **kwargs):  # tests run as root, who may read any file: refuse as the OS would
        if str(path).endswith("test.jsonl"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(data, "open", deny, raising=False)
    with pytest.raises(ValueError, match=r"test.jsonl: cannot be read \(Permission denied\); check that it exists"):
        data.load_mrpc(folder, verbose=False)


def test_a_25_mb_line_still_loads(tmp_path):
    folder = make_jsonl_folder(tmp_path / "m")
    long = "word " * 5_000_000
    write_jsonl(folder / "train.jsonl", [{"text1": long, "text2": "b .", "label": 1, "idx": 0}])
    assert len(data.read_jsonl(folder / "train.jsonl")[0]["text1"]) == len(long)
