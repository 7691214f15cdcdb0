"""The sweep's side of the fan-out (:mod:`qpo.workbench.sweep`): the cells submitted to a connected
Dask client, their outcomes collected, a stop sent to the workers, and the child runs a dead worker
left RUNNING repaired.

A worker that dies (killed, out of memory) while it runs a cell leaves that attempt's child run
RUNNING; Dask runs the cell again elsewhere. When the re-run finished, its outcome stands: the dead
attempt is marked FAILED with the tag ``qpo.superseded_by`` (the re-run's id), left out of the
cell's record and the comparison table. Only a cell with no other outcome takes the repaired
status (FAILED, or KILLED when the sweep was stopped).
"""
from __future__ import annotations

import time
from typing import Any

from qpo.workbench._sweep_report import label

#: the tag of a dead attempt of a cell that Dask ran again: the run id of the attempt that counts
SUPERSEDED_TAG = "qpo.superseded_by"


def own(cell: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A cell's values of the sweep's own parameters (those shared by every cell left out)."""
    return {n: cell[n] for n in names if n in cell}


def fan_out(client, name, plan, names, sweep_id, parent_id, uri, signals, log, *, stop_wait: float,
            second_signal=None) -> dict[int, dict]:
    """Every cell on the connected ``client``; their outcomes (cell number -> SweepCell fields).
    A first signal stops the workers (this sweep's cells only) and waits up to ``stop_wait``
    seconds for the running cells to end KILLED; a second one (``second_signal()`` true) stops
    waiting."""
    from qpo.workbench._sweep_worker import ignore_terminal_signals, run_cell, stop_sweep

    outcomes: dict[int, dict] = {}
    if client.qpo_info.kind == "local":
        client.run(ignore_terminal_signals)  # Ctrl-C reaches this process, which stops the cells in order
    futures = {}
    for i, cell in enumerate(plan):
        if signals.number is not None:
            break
        tags = {"mlflow.parentRunId": parent_id, "qpo.sweep_id": sweep_id}
        futures[i] = client.submit(run_cell, name, i, cell, sweep_id=sweep_id, tags=tags, tracking_uri=uri,
                                   run_name=f"{name} [{i}] {label(own(cell, names))}", pure=False,
                                   key=f"qpo-sweep-{sweep_id[:12]}-{i}")
    deadline = None
    while len(outcomes) < len(futures):
        for i, fut in futures.items():
            if i not in outcomes and fut.done():
                outcomes[i] = outcome(fut, i, plan[i])
                c = outcomes[i]
                log(f"cell {i} ({label(own(plan[i], names))}): {c['status']} in {c['seconds']:.1f} s"
                    + (f": {c['error']}" if c["error"] and c["status"] != "FINISHED" else ""))
        if signals.number is not None and deadline is None:
            log(f"sweep {name}: {signals.name}: stopping the workers (waiting up to {stop_wait:.0f} s for the running "
                f"cells to end KILLED; press Ctrl-C again to stop waiting)")
            try:
                client.run(stop_sweep, sweep_id, signals.name)
            except Exception as exc:  # noqa: BLE001 - a worker gone: its cells are repaired below
                log(f"could not reach every worker to stop it: {exc}")
            deadline = time.monotonic() + stop_wait
        forced = deadline is not None and second_signal is not None and second_signal()
        if deadline is not None and (forced or time.monotonic() > deadline):
            if forced:
                log(f"sweep {name}: second signal: not waiting for the running cells; their runs are marked KILLED")
            client.cancel([f for i, f in futures.items() if i not in outcomes])
            break
        time.sleep(0.2)
    return outcomes


def outcome(future, index: int, cell: dict) -> dict[str, Any]:
    if future.status == "finished":
        return future.result()
    status = "NOT_STARTED" if future.status == "cancelled" else "FAILED"
    try:
        error = f"{type(future.exception()).__name__}: {future.exception()}"
    except Exception as exc:  # noqa: BLE001 - cancelled: no exception to read
        error = f"{type(exc).__name__}: {exc}"
    return {"index": index, "parameters": cell, "status": status, "error": error, "seconds": 0.0}


def repair_children(parent_id: str, uri: str, outcomes: dict[int, dict], stopped: str | None, log) -> list[str]:
    """Child runs still RUNNING after the cluster closed (a worker died, a stop that outlasted the
    wait): KILLED when the sweep was stopped, else FAILED. A cell's outcome takes the repaired
    status only when it has no run of its own, or is that run: a dead attempt of a cell that Dask
    ran again is marked superseded (see the module). Returns the superseded runs' ids."""
    from mlflow.tracking import MlflowClient

    from qpo.workbench.run_control import FAILURE_TAG

    client = MlflowClient(uri)
    parent = client.get_run(parent_id)
    running = client.search_runs([parent.info.experiment_id], max_results=10000,
                                 filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'RUNNING'")
    superseded = []
    # the runs the cells ended with, as they were before any repair: a repaired attempt never
    # takes the place of a run that ended on its own
    settled = {i: (o or {}).get("run_id") for i, o in outcomes.items()}
    carrier: dict[int, str] = {}  # a cell with no run of its own: its newest dead attempt carries its status
    for run in sorted(running, key=lambda r: r.info.start_time or 0, reverse=True):  # the newest first
        run_id, index = run.info.run_id, int(run.data.tags.get("qpo.sweep_cell", -1))
        current = settled.get(index) or carrier.get(index)
        tags: dict[str, str]
        if current and current != run_id:  # a later attempt of the cell counts: this one is history
            status = "KILLED" if stopped else "FAILED"
            reason = (f"the Dask worker running this attempt of cell {index} disappeared; Dask ran the cell again "
                      f"as run {current}, " + ("which counts" if settled.get(index) else "whose outcome is the cell's"))
            tags = {SUPERSEDED_TAG: current, FAILURE_TAG: reason}
            superseded.append(run_id)
        elif stopped:
            status, reason = "KILLED", f"interrupted by {stopped}"
            tags = {"qpo.stop_reason": reason}
        else:
            status, reason = "FAILED", "the Dask worker running this cell disappeared"
            tags = {FAILURE_TAG: reason}
        for key, value in {**tags, "error": reason, "mlflow.note.content": reason}.items():
            client.set_tag(run_id, key, value)
        client.set_terminated(run_id, status)
        if run_id in superseded:
            log(f"cell {index}: child run {run_id} (a dead worker's attempt) marked {status}, superseded by run "
                f"{current}")
            continue
        log(f"cell {index}: child run {run_id} marked {status} ({reason})")
        carrier[index] = run_id
        if index in outcomes:
            outcomes[index].update(status=status, error=reason, run_id=run_id)
        elif index >= 0:  # a running cell the sweep stopped waiting for (cancelled): it did start
            outcomes[index] = {"index": index, "status": status, "error": reason, "run_id": run_id, "seconds": 0.0}
    return superseded
