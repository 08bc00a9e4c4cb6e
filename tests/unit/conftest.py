"""The hypothesis profile of mutation testing (`make mutate`, docs/mutation.md).

mutmut 3 sets MUTANT_UNDER_TEST in every process it runs tests in — from its first step
(generating mutants) on, so the forced-fail run, the stats run that times each test and
every mutant's forked child all see it — and nothing else sets it. There, and only there,
each property test runs MUTATION_EXAMPLES examples chosen the same way every time
(`derandomize`), without the example database, deadline or shrinking: a mutant that makes
a property fail is killed by the first failing example; finding the smallest one only
costs time. `make test` and plain pytest runs keep the tests' own counts and random seeds.

The trade: a mutant that only a rare generated example would catch may survive here,
where the full counts (200–300 examples) might have caught it on some run. Survivors are
read one by one in docs/mutation.md, so such a mutant is looked at, not lost.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import Phase, settings

MUTATION_EXAMPLES = 10
UNDER_MUTMUT = "MUTANT_UNDER_TEST" in os.environ

_MUTATION = settings(
    max_examples=MUTATION_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
)
settings.register_profile("mutation", _MUTATION)
if UNDER_MUTMUT:
    settings.load_profile("mutation")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Cap the tests' own example counts too: `@settings(max_examples=300)` on a test wins
    over any profile. (A `@given` defined inside a test body is not reached here; none of
    those reaches a mutated module — mutmut's stats list the tests each function runs.)"""
    if not UNDER_MUTMUT:
        return
    for item in items:
        test = getattr(item, "obj", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if own is None or not getattr(test, "is_hypothesis_test", False):
            continue
        test._hypothesis_internal_use_settings = settings(  # type: ignore[union-attr]
            own,
            max_examples=min(own.max_examples, MUTATION_EXAMPLES),
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
        )
