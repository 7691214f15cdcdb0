"""The QAOA memory check honours a cgroup memory limit (a container's, a systemd slice's) when it
is lower than the machine's available memory: read from a cgroup tree passed in (v2 and v1 layouts)."""
from __future__ import annotations

import pytest

from qpo.errors import ProblemError
from qpo.quantum.qaoa import available_memory_bytes, cgroup_memory_bytes, check_memory

GIB = 2 ** 30


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _v2(tmp_path, limits):
    """A cgroup v2 tree: ``limits`` maps a cgroup path ("" the root) to (memory.max, memory.current)."""
    root = tmp_path / "cgroup"
    _write(root / "cgroup.controllers", "cpu memory pids\n")
    for sub, (limit, current) in limits.items():
        d = root / sub
        _write(d / "memory.max", f"{limit}\n")
        _write(d / "memory.current", f"{current}\n")
    return root


def _self(tmp_path, text):
    path = tmp_path / "self_cgroup"
    path.write_text(text)
    return path


def test_v2_limit_less_usage(tmp_path):
    root = _v2(tmp_path, {"": (2 * GIB, GIB // 2)})
    assert cgroup_memory_bytes(root, _self(tmp_path, "0::/\n")) == 2 * GIB - GIB // 2


def test_v2_the_least_over_the_cgroup_and_its_parents(tmp_path):
    root = _v2(tmp_path, {"": ("max", 5 * GIB), "user.slice": (3 * GIB, 2 * GIB),
                          "user.slice/job.scope": (4 * GIB, 100)})
    me = _self(tmp_path, "0::/user.slice/job.scope\n")
    assert cgroup_memory_bytes(root, me) == GIB  # the slice's 3 GiB less its 2 GiB in use
    assert available_memory_bytes(root, me) == GIB  # lower than the machine's MemAvailable here


def test_v2_without_a_limit_is_no_limit(tmp_path):
    root = _v2(tmp_path, {"": ("max", 7 * GIB)})
    me = _self(tmp_path, "0::/\n")
    assert cgroup_memory_bytes(root, me) is None
    machine = available_memory_bytes(tmp_path / "nowhere", me)
    assert available_memory_bytes(root, me) == pytest.approx(machine, abs=GIB)  # the machine's figure


def test_v1_memory_controller(tmp_path):
    root = tmp_path / "cgroup"
    me = _self(tmp_path, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit"
    _write(root / "memory" / "memory.usage_in_bytes", f"{6 * GIB}\n")
    assert cgroup_memory_bytes(root, me) is None
    _write(root / "memory" / "docker" / "abc" / "memory.limit_in_bytes", f"{GIB}\n")
    _write(root / "memory" / "docker" / "abc" / "memory.usage_in_bytes", f"{GIB // 4}\n")
    assert cgroup_memory_bytes(root, me) == GIB - GIB // 4


def test_a_container_whose_cgroup_is_its_root(tmp_path):
    """Inside a cgroup namespace /proc/self/cgroup may name a path the mount does not have: the
    mount's root files are the container's own."""
    root = _v2(tmp_path, {"": (GIB, GIB // 2)})
    assert cgroup_memory_bytes(root, _self(tmp_path, "0::/../../system.slice/x.scope\n")) == GIB // 2


def test_usage_above_the_limit_leaves_nothing(tmp_path):
    root = _v2(tmp_path, {"": (GIB, 2 * GIB)})
    assert cgroup_memory_bytes(root, _self(tmp_path, "0::/\n")) == 0


def test_the_qaoa_check_refuses_what_the_cgroup_does_not_allow(tmp_path, monkeypatch):
    """24 qubits need 2 GiB: refused under a cgroup that allows 1 GiB more (the tree is passed in
    through the module's default root)."""
    from qpo.quantum.qaoa import _statevector

    root = _v2(tmp_path, {"": (3 * GIB, 2 * GIB)})
    me = _self(tmp_path, "0::/\n")
    if (available_memory_bytes() or 0) > 3 * GIB:
        check_memory(24)  # this machine alone: no error
    monkeypatch.setattr(_statevector, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(_statevector, "SELF_CGROUP", str(me))
    with pytest.raises(ProblemError, match=r"24 qubits needs about 2\.0 GiB .* has 1\.0 GiB available"):
        check_memory(24)
    check_memory(22)  # 512 MiB: fits
