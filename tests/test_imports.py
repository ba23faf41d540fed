"""The package's import graph: grouped by concern, no question's module imports another's."""
import ast
from pathlib import Path

from helpers import config

QUESTIONS = {"ptuning", "adapter_dims", "stories"}  # Q1, Q2, Q3
SHARED = {"config", "data", "models", "curves", "runinfo", "results", "stats", "settings", "llm", "bottleneck",
          "notebooks", "callbacks", "checkpoints", "llama_build", "doctor"}


def imports_of(module: str) -> set[str]:
    """The helpers modules that ``module`` imports, at any depth of its code (lazy imports count)."""
    tree = ast.parse((config.PROJ_ROOT / "helpers" / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            found.add((node.module.split(".") + [""])[1] or node.names[0].name)
    return found


def test_every_module_is_classified():
    modules = {p.stem for p in (config.PROJ_ROOT / "helpers").glob("*.py")} - {"__init__", "__main__", "bench"}
    # doctor runs one training step of a method to check an install, so it may import ptuning
    assert imports_of("doctor") & QUESTIONS <= {"ptuning"}
    assert modules == QUESTIONS | SHARED


def test_no_question_imports_another_question():
    for q in QUESTIONS:
        assert not (imports_of(q) & (QUESTIONS - {q})), f"{q} imports {imports_of(q) & QUESTIONS}"


def test_ptuning_imports_nothing_of_q3_or_the_benchmarks():
    assert not imports_of("ptuning") & {"stories", "llm", "bench"}


def test_shared_machinery_imports_no_question():
    for module in SHARED - {"doctor"}:
        assert not imports_of(module) & QUESTIONS, module


def test_package_docstring_lists_every_module():
    doc = __import__("helpers").__doc__
    for module in QUESTIONS | SHARED | {"bench"}:
        assert f"``{module}``" in doc, module
    assert Path(__import__("helpers").__file__).parent == config.PROJ_ROOT / "helpers"
