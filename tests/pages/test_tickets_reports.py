"""The reports page in the real Chromium against the hand-computed fixture of the API's
report tests (tests/extension_api/test_reports.py): every chart drawn, named and
titled, and every figure in its tables the API's, for the admin (every inbox) and for a
member (her inbox only); a bad query is a 400 page, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.extension_api.test_reports import WEEK, Fixture, _build
from tests.pages.conftest import Browsers, WebAccount, unique, web_account
from tests.pages.test_browser import sign_in
from tests.pages.test_tickets import enable_login
from tests.support.server import Server, run_coroutine

QUERY = "&".join(f"{k}={v}" for k, v in WEEK.items())
CHARTS = ("volume-chart", "times-chart", "workload-chart", "status-chart")


@pytest.fixture(scope="module")
def week(web_server: Server) -> tuple[Fixture, WebAccount]:
    admin = web_account(web_server, unique("reportlead"))
    other = web_server.new_portal(unique("otherlead"))
    return run_coroutine(lambda: _build(web_server, admin.portal, other)), admin


def _api(server: Server, token: str, report: str) -> Any:
    with server.api(token) as api:
        answer = api.get(f"/api/v1/reports/{report}", params=WEEK)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _value(cell: Any) -> float | None:
    text = cell.get_attribute("data-value")
    return None if text == "" else float(text)


def _page_figures(browser: webdriver.Chrome) -> dict[str, Any]:
    """What the page's tables say, in the API's shapes."""
    volume = [{"day": row.get_attribute("data-day"), "channel": row.get_attribute(
        "data-channel"), "conversations": _value(row.find_elements(By.TAG_NAME, "td")[2])}
        for row in browser.find_elements(By.CSS_SELECTOR, "#volume-table tbody tr")]
    times: dict[str, Any] = {
        "tickets": _value(browser.find_element(By.ID, "times-tickets")),
        "unanswered": _value(browser.find_element(By.ID, "times-unanswered"))}
    for row in browser.find_elements(By.CSS_SELECTOR, "#times-table tbody tr"):
        cells = [_value(c) for c in row.find_elements(By.TAG_NAME, "td")]
        times[str(row.get_attribute("data-measure"))] = dict(zip(
            ("count", "p50", "p90", "mean"), cells, strict=True))
    agents = []
    for row in browser.find_elements(By.CSS_SELECTOR, "#workload-table tbody tr"):
        cells = [_value(c) for c in row.find_elements(By.TAG_NAME, "td")]
        agents.append({"user_id": int(str(row.get_attribute("data-user"))), **dict(zip(
            ("open", "pending", "assigned", "share", "closed"), cells, strict=True))})
    status = {str(c.get_attribute("data-count")): _value(c) for c in browser.find_elements(
        By.CSS_SELECTOR, "#status-table td[data-count]")}
    return {"volume": volume, "times": times, "agents": agents,
            "unassigned": _value(browser.find_element(By.ID, "workload-unassigned")),
            "status": status}


def _api_figures(server: Server, token: str) -> dict[str, Any]:
    times = _api(server, token, "first-response")
    workload = _api(server, token, "workload")
    status = _api(server, token, "status")
    return {"volume": _api(server, token, "volume")["items"],
            "times": {k: v for k, v in times.items() if k not in ("range", "recomputing")},
            "agents": [{k: v for k, v in a.items() if k not in ("email", "name")}
                       for a in workload["items"]],
            "unassigned": workload["unassigned"],
            "status": {k: status[k] for k in ("open", "pending", "closed", "unassigned",
                                              "stale")}}


def test_the_reports_page_draws_the_apis_figures(browser: webdriver.Chrome,
                                                 web_server: Server,
                                                 week: tuple[Fixture, WebAccount]) -> None:
    """The admin's page and a member's (ana: support only) show, chart by chart, what
    the API answers them for the same week; the fixture's own figures are there (first
    response median 2 h, p90 3 h 36 min; three open or pending, one unassigned)."""
    fixture, admin = week
    ana_id, ana_token = fixture.ana
    ana = enable_login(web_server, admin.portal, {"id": ana_id, "email": "ana@ourco.example",
                                                  "api_token": ana_token})
    for who, token in ((admin, admin.portal.admin_token), (ana, ana_token)):
        sign_in(browser, web_server, who)
        browser.get(f"{web_server.base_url}/reports?{QUERY}")
        assert browser.title.startswith("Reports")
        shown = _page_figures(browser)
        assert shown == _api_figures(web_server, token), who.email
        for chart in CHARTS:
            svg = browser.find_element(By.ID, chart)
            assert svg.get_attribute("role") == "img"
            assert browser.find_element(By.ID, f"{chart}-title").get_attribute("textContent")
            assert svg.find_elements(By.TAG_NAME, "rect"), chart
    # The last page shown is ana's: support's tickets only (T1, T2, T3; T4 is billing's).
    assert shown["times"]["tickets"] == 3 and shown["times"]["first_response"]["p50"] == 7200
    sign_in(browser, web_server, admin)
    browser.get(f"{web_server.base_url}/reports?{QUERY}")
    figures = _page_figures(browser)
    assert figures["times"]["first_response"] == {"count": 3, "p50": 7200, "p90": 12960,
                                                  "mean": 8400}
    row = browser.find_element(By.CSS_SELECTOR, "#times-table tr[data-measure=first_response]")
    assert "2 h" in row.text and "3 h 36 min" in row.text
    titles = [r.get_attribute("textContent") for r in browser.find_elements(
        By.CSS_SELECTOR, "#status-chart rect title")]
    assert "unassigned: 1" in titles


def test_a_bad_report_query_is_a_400_page(browsers: Browsers, web_server: Server,
                                         week: tuple[Fixture, WebAccount]) -> None:
    """Dates, zones, ranges and numbers the API refuses, the page refuses too (400)."""
    fixture, admin = week
    client = browsers.new(admin)
    assert client.get(f"/reports?{QUERY}").status_code == 200
    for bad in ("from=2026-13-01", "to=yesterday", "time_zone=Mars/Olympus",
                "from=2026-01-01&to=2027-06-01", "from=2026-12-02&to=2026-12-01",
                "stale_hours=0", "team_inbox_id=x", "to=9999-12-31"):
        answer = client.get(f"/reports?{bad}")
        assert answer.status_code == 400, (bad, answer.status_code)
    assert client.get(f"/reports?team_inbox_id={fixture.other_inbox}").status_code == 404
