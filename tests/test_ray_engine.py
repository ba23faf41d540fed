"""What a Ray task asks for, and a task's failure in one line (Ray itself runs in tests/test_sweep.py and
tests/test_search.py, on a real local instance)."""
import os

import pytest

from helpers import ray_engine


def test_a_task_asks_for_the_whole_machine_without_a_gpu_and_one_cpu_with_a_share():
    assert ray_engine.per_task() == {"num_cpus": float(os.cpu_count()), "num_gpus": 0.0}
    assert ray_engine.per_task(gpus=0.25) == {"num_cpus": 1.0, "num_gpus": 0.25}  # four runs on a GPU
    assert ray_engine.per_task(cpus=2, gpus=2) == {"num_cpus": 2.0, "num_gpus": 2.0}


@pytest.mark.parametrize("cpus, gpus", [(0, None), (-1, None), (None, -0.5), (None, 1.5)])
def test_impossible_requests_are_named(cpus, gpus):
    with pytest.raises(ValueError, match="a task needs CPUs > 0 and a GPU share in"):
        ray_engine.per_task(cpus, gpus)


def test_a_task_failure_is_its_own_exception_in_one_line():
    class Wrapped(Exception):
        cause = ValueError("first line\noutput folder /x is in use by process 7")

    assert ray_engine._cause(Wrapped()) == "ValueError: output folder /x is in use by process 7"
    assert ray_engine._cause(RuntimeError("plain")) == "RuntimeError: plain"
