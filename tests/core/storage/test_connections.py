"""How a node's PostgreSQL budget is split over its workers (pure arithmetic)."""

from __future__ import annotations

import re

import pytest

from core.storage.connections import (
    DEFAULT_BUDGET,
    LISTENERS,
    BudgetTooSmall,
    Room,
    Share,
    least_per_process,
    node_most,
    share_of,
)


def test_one_worker_keeps_the_pools_it_had() -> None:
    """The default budget gives one process its sizes from before budgets: engine 20 +
    10, rate limits 4, and its LISTEN connections."""
    share = share_of(DEFAULT_BUDGET, 1, 0, "inboxlog serve")
    assert share == Share("inboxlog serve", 20, 10, 4)
    assert share.most == 36 == 20 + 10 + 4 + LISTENERS
    assert share.name("engine") == "inboxlog serve engine"


@pytest.mark.parametrize("budget", [14, 15, 16, 17, 23, 40, 41, 71, 72, 200])
@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_the_shares_never_add_up_to_more_than_the_budget(budget: int, workers: int) -> None:
    """Every split holds at most the budget, each worker at least what it needs, and the
    remainder goes to the first workers."""
    if budget // workers < least_per_process():
        with pytest.raises(BudgetTooSmall):
            share_of(budget, workers, 0, "w")
        return
    shares = [share_of(budget, workers, i, "w") for i in range(workers)]
    assert sum(share.most for share in shares) == node_most(budget, workers) <= budget
    for share in shares:
        assert share.most >= least_per_process()
        assert share.engine_pool + share.engine_overflow >= 4 and share.budget_pool >= 1
        assert share.most <= 36
    assert [s.most for s in shares] == sorted((s.most for s in shares), reverse=True)


def test_two_workers_of_the_default_budget() -> None:
    """40 over 2 workers: 20 each, of which 11 + 5 engine, 2 rate limits, 2 LISTEN."""
    assert share_of(40, 2, 1, "w") == Share("w", 11, 5, 2)
    assert node_most(40, 2) == 40


def test_a_budget_too_small_for_each_worker_says_so() -> None:
    """A share below 7 (2 LISTEN, 1 rate limit, 4 engine) is refused with the numbers."""
    leave = re.escape("20 connections over 4 worker(s) leave 5 each")
    with pytest.raises(BudgetTooSmall, match=leave):
        share_of(20, 4, 0, "w")
    assert least_per_process() == 7


def test_room_for_a_node_beside_the_other_clients_and_nodes() -> None:
    """PostgreSQL's 100 less 3 reserved less 10 other clients leave 87: a node of 87
    fits, of 88 not; beside 30 connections of other inboxlog processes a node of 58 is
    crowded (they may grow), of 57 not."""
    room = Room(max_connections=100, reserved=3, others=10, inboxlog=30)
    assert room.limit == 97 and room.for_inboxlog == 87
    assert room.fits(87) and not room.fits(88)
    assert room.crowded(58) and not room.crowded(57)
    assert room.numbers() == ("PostgreSQL takes 97 (max_connections 100 - "
                              "superuser_reserved_connections 3), 10 of them held by "
                              "other clients")
