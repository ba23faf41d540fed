import pytest

from helpers import config


def test_paths_come_from_the_package():
    assert (config.PROJ_ROOT / "helpers" / "config.py").is_file()
    assert config.DATA_DIR == config.PROJ_ROOT / "data" and config.NOTEBOOKS_DIR.is_dir()


def test_output_dir_is_created_under_outputs(tmp_path):
    # conftest points OUTPUT_DIR at a temporary folder for every test
    path = config.output_dir("figures", "q1")
    assert path.is_dir() and path.parent.parent == config.OUTPUT_DIR


def test_profile_auto_and_from_environment(monkeypatch):
    import torch

    monkeypatch.delenv("WORKBOOK_PROFILE", raising=False)
    assert config.get_profile().name == ("full" if torch.cuda.is_available() else "quick")
    monkeypatch.setenv("WORKBOOK_PROFILE", "smoke")
    assert config.get_profile().name == "smoke" and config.get_profile("full").name == "full"
    monkeypatch.setenv("WORKBOOK_PROFILE", "tiny")
    with pytest.raises(ValueError, match="unknown profile 'tiny'.*WORKBOOK_PROFILE"):
        config.get_profile()


def test_profiles_grow_from_smoke_to_full():
    smoke, quick, full = (config.PROFILES[n] for n in ("smoke", "quick", "full"))
    assert smoke.train_limit < 1000 and quick.train_limit is None and full.train_limit is None
    assert smoke.num_train_epochs <= quick.num_train_epochs < full.num_train_epochs <= 20
    assert smoke.stories_per_strategy < quick.stories_per_strategy < full.stories_per_strategy
