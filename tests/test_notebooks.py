"""The notebooks as committed: stripped, and following the skeleton."""
import nbformat
import pytest

from helpers import notebooks

SKELETON = ["Aim", "Background", "Setup", "Config", "Run", "Results", "Discussion"]
PATHS = notebooks.notebook_paths()


def test_there_are_notebooks():
    assert PATHS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    assert notebooks.unstripped(path) == [], "run `make strip` before committing"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_follows_the_skeleton(path):
    nb = nbformat.read(path, as_version=4)
    headings = [line[3:].strip() for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    assert [h for h in headings if h in SKELETON] == SKELETON


def test_unstripped_and_strip_detect_and_fix(tmp_path):
    path = tmp_path / "x.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1+1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nb.cells[0].execution_count = 1
    nbformat.write(nb, path)
    assert len(notebooks.unstripped(path)) == 1
    assert notebooks.strip(path) is True
    assert notebooks.unstripped(path) == [] and notebooks.strip(path) is False
