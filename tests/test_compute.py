from __future__ import annotations

import os
import sys

import pytest

from vaer.compute import LocalBackend, get_backend
from vaer.compute.loopback import is_loopback
from vaer.config.compute import ComputeConfig


def _square(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_local_map_keeps_input_order_and_reports_progress(n_jobs: int) -> None:
    seen: list[tuple[int, int]] = []
    results = LocalBackend(n_jobs).map(_square, range(7), on_done=lambda d, t: seen.append((d, t)))
    assert [r[0] for r in results] == [i * i for i in range(7)]
    assert seen[-1] == (7, 7)
    assert [d for d, _ in seen] == list(range(1, 8))


def test_local_backend_rejects_bad_n_jobs() -> None:
    with pytest.raises(ValueError, match=r"`n_jobs` must be an int >= 1; got 0"):
        LocalBackend(0)


def test_get_backend_defaults_to_local() -> None:
    backend = get_backend(ComputeConfig(n_jobs=2))
    assert backend.name == "local" and backend.n_jobs == 2


def test_ray_backend_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray shows
    with pytest.raises(ImportError, match=r"pip install 'vaer\[ray\]'"):
        get_backend(ComputeConfig(backend="ray", address="127.0.0.1:1"))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (None, True),
        ("127.0.0.1:6379", True),
        ("localhost:1", True),
        ("ray://127.0.0.1:10001", True),
        ("10.0.0.5:6379", False),
        ("head.cluster.internal:6379", False),
    ],
)
def test_is_loopback(address: str | None, expected: bool) -> None:
    assert is_loopback(address) is expected
