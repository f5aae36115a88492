"""Public tests of the functions you write: each runs your function on small fixed inputs and compares what it returns
with the expected outputs in expected.pt (computed from the reference solution when this handout was made). The grader
runs these cases and hidden ones of its own. Run them with `python -m pytest tests`."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare  # noqa: E402
import harness  # noqa: E402


def expected():
    import torch
    return torch.load(os.path.join(HERE, "expected.pt"), weights_only=True)


@pytest.mark.parametrize("function", list(compare.JUDGES))
def test_your_function(function):
    cases = expected()[function]
    outputs = harness.ENTRIES[function](ROOT, [case for case, _ in cases])
    failures = [compare.judge(function, want, got) for (_, want), got in zip(cases, outputs)]
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures)
