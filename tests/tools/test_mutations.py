"""`make mutations` stays runnable: every mutation still applies to the code it names, and every
test it runs still exists. (Whether each mutation is killed is `make mutations` itself: it runs
the tests once per mutation, too long for `make test`.)"""

from __future__ import annotations

from tools.mutations.__main__ import problems
from tools.mutations.catalogue import MUTATIONS, Mutation


def test_every_mutation_applies_to_the_code_as_it_is() -> None:
    assert problems() == []


def test_a_mutation_whose_code_moved_is_reported() -> None:
    moved = Mutation(
        "gone", "plugins/salesforce_pipeline/writer.py", "no such line", "", ("tests/nowhere.py",)
    )
    assert problems((moved,)) == [
        "gone: the code to remove is not in plugins/salesforce_pipeline/writer.py exactly once",
        "gone: no test file tests/nowhere.py",
    ]


def test_the_issue_s_list_of_protections_is_covered() -> None:
    """Issue #17 names the protections `make mutations` must cover at least."""
    names = " | ".join(mutation.name for mutation in MUTATIONS).lower()
    for protection in (
        "upsert guard",
        "mark-missing guard",
        "lookback",
        "session refresh (rest)",
        "session refresh (bulk 2.0)",
        "hook's own retries",
        "tls certificates verified",
        "rollback",
        "verified before commit",
        "secret masker",
        "writer's abort",
        "cross-tenant guard",
    ):
        assert protection in names, protection
