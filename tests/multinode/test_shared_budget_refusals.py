"""A request that one of the budgets shared on PostgreSQL refuses takes nothing from the
others: a short hammering burst that the burst budget refuses does not use up the
10-minute budget (as on SQLite, where a refused request does not count). Through the
HTTP port of a server on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support import postgres
from tests.support.server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres.inboxlog_server(tmp_path_factory.mktemp("budget-refusals"), (
            "--api-rate-limit", "3 per 2 seconds; 8 per 10 minutes")) as running:
        yield running


def test_a_burst_the_short_budget_refuses_leaves_the_long_budget_alone(
        server: Server) -> None:
    """3 requests admitted, then 10 refused by the 3-per-2-s budget: had they counted,
    the 8-per-10-minutes budget would be spent (13 > 8) for minutes; once the burst
    budget has room again the caller is admitted, up to what the long budget holds."""
    account = server.new_portal("burst@ourco.example")
    with server.api(account.user_token) as api:
        assert [api.get("/api/v1/me").status_code for _ in range(3)] == [200] * 3
        refused = [api.get("/api/v1/me") for _ in range(10)]
        assert [r.status_code for r in refused] == [429] * 10, refused[-1].text
        retry_after = int(refused[-1].headers["retry-after"])
        assert 1 <= retry_after <= 2  # the burst budget's, not the 10-minute one's
        time.sleep(retry_after + 0.1)
        admitted = api.get("/api/v1/me")
        assert admitted.status_code == 200, admitted.text
        time.sleep(2.1)  # the burst budget full again: 4 of the long budget's 8 taken
        assert [api.get("/api/v1/me").status_code for _ in range(3)] == [200] * 3
        time.sleep(2.1)
        statuses = [api.get("/api/v1/me").status_code for _ in range(2)]
        assert statuses == [200, 429]  # 8 taken: the 10-minute budget is spent
        assert int(api.get("/api/v1/me").headers["retry-after"]) > 2
