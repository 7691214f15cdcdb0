"""Notebooks as code: every notebook of notebooks/ and voila_apps/ is a jupytext pair, the .ipynb
(what Jupyter, Papermill and Voila open) and a percent-format .py (what a reviewer reads), and
the two hold the same cells. An edit to one side only fails here, with the command that mends it."""
import json
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "voila_apps")
                   for p in (ROOT / d).glob("*.ipynb"))
FORMATS = "ipynb,py:percent"


def pair_problems(ipynb) -> list[str]:
    """What is wrong with the pair of notebook ``ipynb`` (a Path): no .py twin, cells or metadata
    that differ between the two (as jupytext's own comparison sees them: cell types, sources,
    cell metadata such as the ``parameters`` tag, the kernelspec), outputs or execution counts
    committed in the .ipynb. Empty when the pair is sound."""
    import jupytext
    from jupytext.compare import NotebookDifference, compare_notebooks

    problems = []
    text = ipynb.with_suffix(".py")
    nb = nbformat.read(str(ipynb), as_version=4)
    if nb.metadata.get("jupytext", {}).get("formats") != FORMATS:
        problems.append(f"{ipynb.name} is not paired: its metadata.jupytext.formats is "
                        f"{nb.metadata.get('jupytext', {}).get('formats')!r}, not {FORMATS!r}")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            problems.append(f"{ipynb.name} code cell {i} carries outputs or an execution count (clear them)")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(params) != 1:
        problems.append(f"{ipynb.name} has {len(params)} cells tagged parameters; Papermill needs exactly one")
    if not text.exists():
        return problems + [f"{text.name} is missing: run `jupytext --set-formats {FORMATS} {ipynb}`"]
    from_text = jupytext.read(text)
    if from_text.metadata.get("jupytext", {}).get("text_representation", {}).get("format_name") != "percent":
        problems.append(f"{text.name} is not in the percent format")
    try:
        compare_notebooks(from_text, nb, fmt="py:percent", allow_expected_differences=False)
    except NotebookDifference as diff:
        problems.append(f"{ipynb.name} and {text.name} differ (an edit to one side only; run "
                        f"`jupytext --sync {ipynb}`, which updates the older file from the newer; "
                        f"below, expected is the .ipynb and actual the .py):\n{diff}")
    return problems


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_pair_in_sync(notebook):
    assert pair_problems(ROOT / notebook) == []


def test_every_text_notebook_has_its_ipynb():
    texts = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "voila_apps") for p in (ROOT / d).glob("*.py"))
    assert texts == [n.removesuffix(".ipynb") + ".py" for n in NOTEBOOKS]
    assert len(NOTEBOOKS) == 10


@pytest.fixture
def pair(tmp_path):
    """A copy of the advisor app's pair (the smallest), to spoil."""
    for suffix in (".ipynb", ".py"):
        shutil.copy(ROOT / "voila_apps" / f"advisor{suffix}", tmp_path / f"advisor{suffix}")
    ipynb = tmp_path / "advisor.ipynb"
    assert pair_problems(ipynb) == []
    return ipynb


def _edit_text(ipynb, old, new):
    text = ipynb.with_suffix(".py")
    source = text.read_text()
    assert old in source
    text.write_text(source.replace(old, new, 1))


def test_an_edit_to_the_py_alone_is_caught_and_sync_mends_it(pair):
    _edit_text(pair, "lookback_days: int = 756", "lookback_days: int = 500")
    [problem] = pair_problems(pair)
    assert "advisor.ipynb and advisor.py differ" in problem and "+lookback_days: int = 500" in problem
    sync = subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(pair)], capture_output=True, text=True)
    assert sync.returncode == 0, sync.stderr
    assert pair_problems(pair) == []
    assert "lookback_days: int = 500" in nbformat.read(str(pair), as_version=4).cells[1].source


def test_an_edit_to_the_ipynb_alone_is_caught(pair):
    nb = json.loads(pair.read_text())
    nb["cells"][2]["source"].append("\nprint(dashboard.selected)")
    pair.write_text(json.dumps(nb, indent=1))
    [problem] = pair_problems(pair)
    assert "differ" in problem and "print(dashboard.selected)" in problem


def test_a_lost_parameters_tag_is_caught(pair):
    _edit_text(pair, '# %% tags=["parameters"]', "# %%")
    [problem] = pair_problems(pair)
    assert "differ" in problem and "parameters" in problem
    nb = json.loads(pair.read_text())
    nb["cells"][1]["metadata"] = {}
    pair.write_text(json.dumps(nb, indent=1))
    assert any("0 cells tagged parameters" in p for p in pair_problems(pair))


def test_committed_outputs_are_caught(pair):
    nb = nbformat.read(str(pair), as_version=4)
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells[3].execution_count = 1
    nbformat.write(nb, str(pair))
    assert pair_problems(pair) == ["advisor.ipynb code cell 3 carries outputs or an execution count (clear them)"]


def test_jupyterlab_keeps_the_pairs(tmp_path):
    """Through JupyterLab's contents manager (jupytext's, as `qpo lab` serves it) with this
    project's configuration: saving a notebook unchanged rewrites nothing, an edit of either side
    reaches the other, and a new notebook is paired in notebooks/ but not among executed runs/."""
    import time

    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")  # its [tool.jupytext]
    for d in ("notebooks", "voila_apps", "runs"):
        (tmp_path / d).mkdir()
    for suffix in (".ipynb", ".py"):
        shutil.copy(ROOT / "voila_apps" / f"advisor{suffix}", tmp_path / "voila_apps" / f"advisor{suffix}")
    lab = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(tmp_path))
    ipynb = tmp_path / "voila_apps" / "advisor.ipynb"
    def contents(p):  # the header's jupytext_version follows the installed jupytext: not a change
        return re.sub(rb"(?m)^#\s+jupytext_version: .*$", b"", p.read_bytes())

    committed = {p: contents(p) for p in (ipynb, ipynb.with_suffix(".py"))}

    lab.save(lab.get("voila_apps/advisor.ipynb"), "voila_apps/advisor.ipynb")
    assert {p: contents(p) for p in committed} == committed
    for path, old, new in (("voila_apps/advisor.ipynb", "756", "500"), ("voila_apps/advisor.py", "500", "250")):
        model = lab.get(path)
        assert model["type"] == "notebook"  # the .py opens as a notebook too
        model["content"]["cells"][1]["source"] = model["content"]["cells"][1]["source"].replace(old, new)
        time.sleep(1.1)  # jupytext orders the two sides by their modification times
        lab.save(model, path)
        assert pair_problems(ipynb) == []
        assert f"lookback_days: int = {new}" in ipynb.with_suffix(".py").read_text()

    blank = {"type": "notebook", "format": "json", "content": nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1")])}
    lab.save(dict(blank), "notebooks/new.ipynb")
    lab.save(dict(blank), "runs/executed.ipynb")
    assert (tmp_path / "notebooks" / "new.py").exists() and not (tmp_path / "runs" / "executed.py").exists()


def test_a_missing_py_is_caught(pair):
    pair.with_suffix(".py").unlink()
    assert pair_problems(pair) == [f"advisor.py is missing: run `jupytext --set-formats {FORMATS} {pair}`"]
