"""The portable llama.cpp build: wheels keyed on their flags, and a generation check that turns a dead
child into one line."""
import json
import signal
import tomllib

import pytest

from helpers import config, doctor, llama_build


def _fake_build(folder, flags, version=llama_build.VERSION):
    folder.mkdir(parents=True)
    (folder / f"llama_cpp_python-{version}-cp311-cp311-linux_x86_64.whl").write_bytes(b"PK")
    (folder / "build.json").write_text(json.dumps({"version": version, "flags": list(flags)}))
    return folder


def test_pyproject_pins_the_version_that_is_built():
    deps = tomllib.loads((config.PROJ_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"llama-cpp-python[server]=={llama_build.VERSION}" in deps


def test_portable_flags_leave_out_native_avx512_and_amx():
    args = llama_build.cmake_args()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX2=ON" in args
    assert "-DGGML_AVX512=OFF" in args and "-DGGML_AMX_INT8=OFF" in args and "NATIVE=ON" not in args


def test_the_key_changes_with_flags_version_and_python():
    base = llama_build.build_key()
    assert base == llama_build.build_key()
    assert base != llama_build.build_key(flags=("-DGGML_NATIVE=ON",))
    assert base != llama_build.build_key(version="0.3.35")
    assert base != llama_build.build_key(python_tag="cp312")


def test_a_wheel_built_with_other_flags_is_never_used(tmp_path, monkeypatch):
    """A native wheel sits in the wheel folder, even under our key's name: neither is taken, and
    ``build_wheel`` compiles (here: the pip call is recorded instead of run)."""
    native = ("-DGGML_NATIVE=ON",)
    _fake_build(llama_build.wheel_dir(tmp_path, llama_build.build_key(flags=native)), native)
    ours = _fake_build(llama_build.wheel_dir(tmp_path), native)  # right name, wrong build inside
    assert llama_build.find_wheel(ours) is None
    calls = []

    def fake_run(cmd, env=None, check=False, **kw):
        calls.append((cmd, env))
        staging = cmd[cmd.index("-w") + 1]
        (llama_build.Path(staging) / "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl").write_bytes(b"PK")

    monkeypatch.setattr(llama_build.subprocess, "run", fake_run)
    wheel = llama_build.build_wheel(root=tmp_path)
    (cmd, env), = calls
    assert "--no-cache-dir" in cmd and env["CMAKE_ARGS"] == llama_build.cmake_args()
    assert wheel.parent == llama_build.wheel_dir(tmp_path)
    assert llama_build.find_wheel(wheel.parent) == wheel
    # the second time, the kept wheel is reused: no compile
    assert llama_build.build_wheel(root=tmp_path) == wheel and len(calls) == 1


def test_install_skips_what_the_environment_already_has(tmp_path, monkeypatch):
    marker = tmp_path / "llama-build.json"
    marker.write_text(json.dumps({"key": llama_build.build_key()}))
    monkeypatch.setattr(llama_build, "venv_marker", lambda python=None: marker)
    monkeypatch.setattr(llama_build, "build_wheel", lambda *a, **k: pytest.fail("rebuilt a build already installed"))
    assert llama_build.install() is False


def test_system_info_features_and_what_is_forbidden():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 |"
    features = llama_build.system_features(info)
    assert features["AVX2"] == 1 and features["AVX512"] == 0
    assert llama_build.forbidden(info) == ["AMX_INT8"]
    assert llama_build.forbidden(info.replace("AMX_INT8 = 1", "AMX_INT8 = 0")) == []


@pytest.mark.parametrize("sig, words", [(signal.SIGILL, "SIGILL (an instruction this CPU cannot run"),
                                        (signal.SIGSEGV, "SIGSEGV (a memory fault)")])
def test_a_child_killed_by_a_signal_gives_one_line_with_the_fix(tmp_path, sig, words):
    child = f"import os, signal; os.kill(os.getpid(), signal.{sig.name})"
    with pytest.raises(llama_build.CheckFailed) as e:
        llama_build.check(model_path=tmp_path / "any.gguf", child=child, timeout=30)
    message = str(e.value)
    assert "\n" not in message and words in message and "make reinstall-llama" in message
    assert llama_build.cpu_model() in message


def test_a_child_that_fails_names_its_last_line():
    with pytest.raises(llama_build.CheckFailed, match=r"exited with code 3 \(boom\)"):
        llama_build.check(model_path="x", child="import sys; print('boom', file=sys.stderr); sys.exit(3)")


def test_a_build_with_amx_fails_the_check():
    child = ("import json; print(json.dumps({'system_info': 'AVX2 = 1 | AMX_INT8 = 1 |', 'tokens': 1, "
             "'seconds': 1.0, 'tokens_per_s': 1.0, 'text': 'x'}))")
    with pytest.raises(llama_build.CheckFailed, match="uses AMX_INT8"):
        llama_build.check(model_path="x", child=child)


@pytest.mark.slow
def test_the_installed_build_generates_in_a_child_without_amx_or_avx512():
    r = llama_build.check(tokens=16)
    assert r["tokens"] > 0 and r["tokens_per_s"] > 0
    features = llama_build.system_features(r["system_info"])
    assert features.get("AVX2") == 1 and llama_build.forbidden(r["system_info"]) == []


@pytest.mark.slow
def test_doctor_reports_and_its_training_step_learns_nothing_weird(capsys):
    assert doctor.main(["--no-checks"]) == 0
    out = capsys.readouterr().out
    for section in ("machine:", "llama_cpp:", "torch:", "libraries:", "mrpc:", "models:"):
        assert section in out
    assert llama_build.cpu_model() in out
    step = doctor.training_step()
    assert step["loss"] > 0 and step["seconds"] < 120


def test_doctor_self_check_reports_a_dead_child(monkeypatch, capsys):
    def dead(*a, **k):
        raise llama_build.CheckFailed(llama_build.explain(-signal.SIGILL))

    monkeypatch.setattr(llama_build, "check", dead)
    monkeypatch.setattr(doctor, "step_check", lambda: {"loss": 0.7, "seconds": 1.0})
    assert doctor.main(["--self-check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SIGILL" in err[0] and "Fix: make reinstall-llama" in err[0]


def test_the_command_line_reaches_the_doctor(monkeypatch):
    from helpers import __main__ as cli

    monkeypatch.setattr(doctor, "main", lambda argv: 7 if argv == ["--no-checks"] else 0)
    assert cli.main(["doctor", "--no-checks"]) == 7
