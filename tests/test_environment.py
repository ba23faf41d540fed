"""The conda environment and the pip project name the same direct dependencies."""
import tomllib

import yaml
from packaging.requirements import Requirement

from helpers import config


def _norm(spec: str) -> tuple[str, tuple, str]:
    req = Requirement(spec)
    return req.name.lower().replace("_", "-"), tuple(sorted(req.extras)), str(req.specifier)


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((config.PROJ_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert any(str(d).startswith("python=3.11") for d in deps)
    pip_deps = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e .[dev]" in pip_deps  # the project itself, installed by pip
    conda_side = {_norm(d) for d in pip_deps if not d.startswith("-e ")}
    pyproject = tomllib.loads((config.PROJ_ROOT / "pyproject.toml").read_text())
    assert conda_side == {_norm(d) for d in pyproject["project"]["dependencies"]}
