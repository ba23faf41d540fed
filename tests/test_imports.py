"""The package's import graph: grouped by concern, no question's module imports another's, and no module
holds more than one room's worth of code."""
import ast
from pathlib import Path

from helpers import config

HELPERS = config.PROJ_ROOT / "helpers"
QUESTIONS = {"ptuning", "adapter_dims", "stories"}  # Q1, Q2, Q3 (stories is a package by concern)
SHARED = {"config", "data", "models", "curves", "runinfo", "results", "stats", "settings", "llm", "bottleneck",
          "notebooks", "callbacks", "checkpoints", "llama_build", "doctor", "methods", "training", "sweeps",
          "inference", "frontier", "ray_engine", "search"}
BENCH = {"bench", "timing"}  # the benchmarks' report, and the timing tools it uses


def _files(module: str) -> list[Path]:
    return sorted((HELPERS / module).glob("*.py")) if (HELPERS / module).is_dir() else [HELPERS / f"{module}.py"]


def imports_of(module: str) -> set[str]:
    """The helpers modules that ``module`` (a module or a package) imports, at any depth of its code (lazy
    imports count); a package's imports of its own modules are left out."""
    found = set()
    for path in _files(module):
        inside = path.parent != HELPERS  # a module of a package: ``..x`` is helpers.x, ``.x`` its sibling
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == (2 if inside else 1):
                found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
                found.add((node.module.split(".") + [""])[1] or node.names[0].name)
    return found


def test_every_module_is_classified():
    packages = {p.name for p in HELPERS.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in HELPERS.glob("*.py")} | packages
    assert modules - {"__init__", "__main__"} == QUESTIONS | SHARED | BENCH
    # doctor runs one training step of a method to check an install: shared machinery, no question
    assert not imports_of("doctor") & QUESTIONS


def test_no_question_imports_another_question():
    for q in QUESTIONS:
        assert not (imports_of(q) & (QUESTIONS - {q})), f"{q} imports {imports_of(q) & QUESTIONS}"


def test_ptuning_imports_nothing_of_q3_or_the_benchmarks():
    assert not imports_of("ptuning") & {"stories", "llm", "bench", "timing"}


def test_shared_machinery_imports_no_question_and_no_benchmark():
    for module in SHARED:
        assert not imports_of(module) & (QUESTIONS | BENCH), module


def test_no_module_is_over_400_lines_and_none_keeps_global_state():
    for path in HELPERS.rglob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, f"{path.relative_to(HELPERS)} has {len(text.splitlines())} lines"
        assert "\nglobal " not in text and "    global " not in text, f"{path.relative_to(HELPERS)} uses global"


def test_ptuning_defines_no_run_sweep_predict_or_checkpoint_machinery():
    tree = ast.parse((HELPERS / "ptuning.py").read_text())
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert defined == {"anatomy", "peft_config"}


def test_package_docstring_lists_every_module():
    doc = __import__("helpers").__doc__
    for module in QUESTIONS | SHARED | BENCH:
        assert f"``{module}``" in doc, module
    assert Path(__import__("helpers").__file__).parent == HELPERS
