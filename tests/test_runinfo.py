"""Provenance and folder locks."""
import os
import subprocess
import sys

import pytest

from helpers import runinfo


def test_environment_names_versions_and_commit():
    env = runinfo.environment()
    assert env["transformers"].startswith("4.57") and env["torch"] and env["device"]
    assert "git_commit" in env and isinstance(env["git_dirty"], bool)


def test_a_second_holder_fails_at_once_naming_the_first(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from helpers.runinfo import folder_lock\n"
        f"with folder_lock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"is in use by process {holder.pid} on"):
            with runinfo.folder_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with runinfo.folder_lock(tmp_path):  # the lock went with the process
        pass


def test_lock_is_released_after_an_error(tmp_path):
    with pytest.raises(RuntimeError):
        with runinfo.folder_lock(tmp_path):
            raise RuntimeError("boom")
    with runinfo.folder_lock(tmp_path):
        assert (tmp_path / ".lock").read_text().startswith(f"process {os.getpid()}")
