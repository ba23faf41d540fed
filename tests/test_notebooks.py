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


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_cells_are_short_calls_into_the_package(path):
    """A notebook reads like a lab: no code cell over 12 lines; the analysis lives in helpers/."""
    nb = nbformat.read(path, as_version=4)
    long = {i: n for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and (n := len([line for line in c.source.splitlines() if line.strip()])) > 12}
    assert not long, f"cells over 12 lines (cell: lines): {long}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_no_link_outside_the_repository(path):
    assert "../shared" not in path.read_text() and "BASELINES.md" not in path.read_text()


def test_execute_prints_which_cell_runs(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# x"), nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("print(x + 1)")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    seconds = notebooks.execute(path, tmp_path / "out", progress=True)
    out = capsys.readouterr().out
    assert "n.ipynb: cell 1/2 at" in out and "n.ipynb: cell 2/2 at" in out and "print(x + 1)" in out
    assert seconds > 0 and (tmp_path / "out" / "n.ipynb").is_file()


@pytest.mark.slow
def test_saved_outputs_hold_no_widgets_and_no_stray_bar(tmp_path, mrpc_dir):
    """What reopens badly: widget outputs ("Error displaying widget: model not found" once the kernel is
    gone: datasets' Map bars, tqdm.auto) and the Trainer's empty bar for the test pass ("[1/1 : < :]")."""
    cells = [f"""import os
os.environ["MRPC_DIR"] = {str(mrpc_dir)!r}
from helpers import stories, training
r = training.run("v2-noproj", "smoke", 0, output_dir={str(tmp_path / "run")!r}, num_train_epochs=1,
                train_limit=16, eval_limit=16)""",
             f"""class Fake:
    def generate(self, messages, **sampling):
        return stories.Generation("A frog sat on a log. The end.", 1, 8, 0.01, "fake")

spec = stories.StorySpec("a pond", "gentle", 2, 50, ("a frog",))
variants = [stories.Variant("a", "persona")]
rows, _ = stories.compare(Fake(), spec, variants, n=2, records={str(tmp_path / "s.jsonl")!r})"""]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    path = tmp_path / "w.ipynb"
    nbformat.write(nb, path)
    notebooks.execute(path, tmp_path / "out")
    done = nbformat.read(tmp_path / "out" / "w.ipynb", as_version=4)
    outputs = [o for c in done.cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    # the test pass's bar: "[1/1 : < :]" while it runs, an empty HTML display once it is done
    assert not [o for o in outputs if o.output_type == "display_data" and "text/html" in o.data
                and not o.data["text/html"].strip()]
    assert any("a: pass rate" in str(o) for o in outputs)  # compare's line per variant, as text


def test_make_run_prints_a_line_per_epoch(tmp_path, capsys):
    """A kernel's training run writes one line an epoch to $WORKBOOK_PROGRESS_LOG (callbacks.EpochLog);
    ``execute(progress=True)`` prints those lines while the cell runs, where ``make run`` shows them."""
    code = """from types import SimpleNamespace as NS
from helpers.callbacks import EpochLog
log = EpochLog("v2 seed 42")
log.on_train_begin(None, None, None)
for epoch, acc in ((1.0, 0.6912), (2.0, 0.7647)):
    log.on_evaluate(NS(num_train_epochs=3), NS(epoch=epoch, is_world_process_zero=True), None,
                    metrics={"eval_accuracy": acc})"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    path = tmp_path / "e.ipynb"
    nbformat.write(nb, path)
    notebooks.execute(path, tmp_path / "out", progress=True)
    out = capsys.readouterr().out
    assert "e.ipynb: v2 seed 42: epoch 1/3, validation accuracy 0.6912" in out
    assert "e.ipynb: v2 seed 42: epoch 2/3, validation accuracy 0.7647" in out
