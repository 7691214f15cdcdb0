"""What ``qpo pipeline run --fail-on-breach`` counts: a pipeline's ``breach_metrics`` and the
numbers its run recorded for them."""
from __future__ import annotations


def _breach_counts(metrics, names) -> tuple[dict[str, float], list[str]]:
    """The breach counts a run recorded, and the declared names it recorded no number for."""
    import math
    import numbers

    counted, unread = {}, []
    for m in names:
        v = metrics.get(m)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            unread.append(m)
        else:
            counted[m] = float(v)
    return counted, unread


def _breach_metrics(name: str) -> tuple[str, ...]:
    """The breach metrics of pipeline ``name`` for ``--fail-on-breach``; refused (could not start)
    for a pipeline that records none, naming those that do."""
    from qpo.errors import InvalidValueError
    from qpo.workbench.pipelines import available_pipelines, load_spec

    metrics = load_spec(name).breach_metrics
    if not metrics:
        able = []
        for other in available_pipelines():
            try:
                if load_spec(other).breach_metrics:
                    able.append(other)
            except Exception:  # noqa: BLE001 - a broken definition is not one that can
                continue
        raise InvalidValueError(f"--fail-on-breach: pipeline {name!r} records no breach count (no breach_metrics in its "
                                f"definition); the pipelines that do: {', '.join(able) or 'none'}")
    return metrics
