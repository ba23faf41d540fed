from helpers.curves import LiveCurves, live_frontend


def test_records_runs_on_shared_axes_and_writes_png(tmp_path):
    board = LiveCurves("q1", baseline=0.68, png=tmp_path / "q1.png", live=False)
    board.record("v1", {"loss": 0.7}, 0.5)
    board.record("v1", {"eval_accuracy": 0.7, "eval_loss": 0.6}, 1.0)
    board.record("v2", {"loss": 0.65}, 0.5)
    assert board.series["v1"] == {"loss": [(0.5, 0.7)], "accuracy": [(1.0, 0.7)]}
    fig = board.figure()
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]  # two runs' losses; v1's accuracy + baseline
    assert board._repr_png_().startswith(b"\x89PNG")  # how Jupyter shows the board
    path = board.save()
    assert path == tmp_path / "q1.png" and path.stat().st_size > 1000


def test_no_live_frontend_in_a_plain_process(monkeypatch):
    monkeypatch.delenv("WORKBOOK_HEADLESS", raising=False)
    assert live_frontend() is False
    board = LiveCurves("x", live=None)
    board.update(force=True)  # headless: draws nothing, raises nothing
    assert board._handle is None


def test_live_board_updates_one_display_in_place(tmp_path):
    """In a kernel, redraws replace one output (a single display handle): no growing list of figures."""
    import nbformat
    from nbclient import NotebookClient

    code = (f"from helpers.curves import LiveCurves\n"
            f"board = LiveCurves('live', png={str(tmp_path / 'l.png')!r}, live=True)\n"
            "for step in range(4):\n"
            "    board.record('v1', {'loss': 1.0 / (step + 1)}, step / 4)\n"
            "    board.update(force=True)\n"
            "print('done')")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    images = [o for o in outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 1 and any(o.get("text") == "done\n" for o in outputs)  # the print survives


def test_board_from_committed_histories(tmp_path):
    from helpers.results import load_results

    runs = load_results("q1_v*.json")
    if not runs:
        import pytest

        pytest.skip("no committed results")
    board = LiveCurves.from_results(runs, "committed", baseline=0.68)
    assert set(board.series) == {p.stem for p in runs}
    first = next(iter(runs.values()))
    assert [a for _, a in board.series[next(iter(board.series))]["accuracy"]] == \
        [e["eval_accuracy"] for e in first.evals()]
    assert board._repr_png_().startswith(b"\x89PNG") and board.save(tmp_path / "c.png").is_file()
