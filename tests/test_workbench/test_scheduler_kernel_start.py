"""A kernel that cannot start (kernels launched at once race, papermill #511; a slow start, #776) is
started again inside the same MLflow run; one that never starts is a run that *could not start*
(``qpo pipeline run`` exit 3, which the scheduler's runner turns into a retry with backoff), not a
FAILED run (exit 1, never retried). Real kernels, a real MLflow store, the tiny project; the kernel
specs are ``python3`` overridden through ``JUPYTER_PATH``."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.tiny_project import make_project, project_env

FLAKY = """import os, sys
marker, connection = sys.argv[1], sys.argv[2]
if not os.path.exists(marker):  # the first launch dies at once, as a kernel that lost its port race
    open(marker, "w").close()
    sys.exit(1)
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", connection])
"""


def _kernelspec(root: Path, argv: list[str]) -> Path:
    """A ``python3`` kernel spec under ``root`` (a JUPYTER_PATH entry) that runs ``argv``."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [*argv, "{connection_file}"], "display_name": "Python 3",
                                                  "language": "python"}))
    return root


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    root = make_project(tmp_path / "project")
    monkeypatch.setenv("QPO_PROJECT_ROOT", str(root))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    return root


def _client():
    from mlflow.tracking import MlflowClient

    from qpo.tracking import configure

    return MlflowClient(configure())


def test_a_launch_failure_is_told_from_a_failure_in_a_cell():
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from qpo.workbench.pipelines import launch_failure

    died = launch_failure(RuntimeError("Kernel died before replying to kernel_info"))
    assert died == "RuntimeError: Kernel died before replying to kernel_info"
    assert launch_failure(RuntimeError("Kernel didn't respond in 300 seconds")).endswith("300 seconds")
    for in_a_cell in (DeadKernelError("Kernel died"), CellTimeoutError("Cell execution timed out"),
                      PapermillExecutionError(1, 1, "boom", "ValueError", "boom", []), RuntimeError("a cell's own")):
        assert launch_failure(in_a_cell) is None, in_a_cell


def test_a_kernel_that_fails_its_first_launch_is_started_again_in_the_same_run(tiny, tmp_path, monkeypatch):
    from qpo.workbench.pipelines import run_pipeline

    script = tmp_path / "flaky_kernel.py"
    script.write_text(FLAKY)
    marker = tmp_path / "launched-once"
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec(tmp_path / "jupyter", [sys.executable, str(script),
                                                                                str(marker)])))
    lines: list[str] = []
    t0 = time.perf_counter()
    run = run_pipeline("tiny", {"label": "flaky"}, log=lines.append)
    seconds = time.perf_counter() - t0
    assert run.status == "FINISHED", (run.error, lines)
    assert marker.exists() and run.metrics == {"started": 1.0, "slept": 0.0}
    assert any("kernel could not start (attempt 1): RuntimeError: Kernel died before replying" in x for x in lines), lines
    tracked = _client().get_run(run.run_id)  # one MLflow run: the retry happened inside it
    assert tracked.info.status == "FINISHED" and tracked.data.tags["qpo.kernel_start_attempts"] == "2"
    assert len(_client().search_runs([tracked.info.experiment_id])) == 1
    assert not list((tmp_path / "runtime").glob("kernel-qpo-*.json"))  # the dead kernel's connection file removed
    assert seconds < 60, seconds


def test_a_kernel_that_never_starts_ends_could_not_start_not_failed(tiny, tmp_path, monkeypatch):
    from qpo.workbench import pipelines
    from qpo.workbench.pipelines import KernelStartError, run_pipeline

    monkeypatch.setattr(pipelines, "KERNEL_START_BACKOFF_S", (0.2, 0.2))
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec(tmp_path / "jupyter", ["/bin/sh", "-c", "exit 1"])))
    lines: list[str] = []
    t0 = time.perf_counter()
    with pytest.raises(KernelStartError, match=r"pipeline tiny: kernel could not start in 3 attempt\(s\): "
                                               r"RuntimeError: Kernel died before replying to kernel_info") as raised:
        run_pipeline("tiny", log=lines.append)
    assert time.perf_counter() - t0 < 60
    assert [x for x in lines if "kernel could not start" in x] == [
        "kernel could not start (attempt 1): RuntimeError: Kernel died before replying to kernel_info; trying again",
        "kernel could not start (attempt 2): RuntimeError: Kernel died before replying to kernel_info; trying again"]
    client = _client()
    (tracked,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert raised.value.run_id == tracked.info.run_id
    assert tracked.info.status == "FAILED" and tracked.data.tags["qpo.kernel_start_attempts"] == "3"
    assert tracked.data.tags["qpo.failure"].startswith("kernel could not start in 3 attempt(s): RuntimeError")
    assert not list((tmp_path / "runtime").glob("kernel-qpo-*.json"))


def test_the_command_exits_3_which_the_schedulers_runner_retries(tiny, tmp_path, qpo_home):
    """``qpo pipeline run NAME --json`` (the scheduler's child) on a kernel that never starts: exit 3 and a JSON
    line whose error the runner raises as "could not start" (retried with backoff), not a FAILED result."""
    from qpo.errors import PipelineError
    from qpo.workbench._schedule_runner import SubprocessRunner

    jupyter = _kernelspec(tmp_path / "jupyter", ["/bin/sh", "-c", "exit 1"])
    runner = SubprocessRunner(env=project_env(tiny, JUPYTER_PATH=str(jupyter), QPO_HOME=str(qpo_home)), repair=False)
    t0 = time.perf_counter()
    # the message is the JSON line's error (stderr's tail would start "qpo: error:")
    with pytest.raises(PipelineError, match=r"^pipeline tiny: kernel could not start in 3 attempt\(s\): RuntimeError"):
        runner("tiny")
    assert time.perf_counter() - t0 < 60
