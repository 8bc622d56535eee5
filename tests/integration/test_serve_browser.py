"""The /ui page of ``mtlrec serve`` in headless Chromium (selenium) against a live server.

A person's path: open /ui, type an API key, load the users, pick one, read the history and
the recommendations (per-task scores, fused score, reason), then try an unknown user's
ad-hoc history and a wrong key. Needs Debian's chromium + chromium-driver (``make
browser``); without them the test fails, it never skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from mtlrec.serving.app import create_app
from mtlrec.serving.settings import ServeSettings
from serving_support import LiveServer, TinyServing


@pytest.fixture
def live(tiny_serving: TinyServing) -> Iterator[LiveServer]:
    settings = ServeSettings(artifact=tiny_serving.fused, api_keys=tiny_serving.key_file)
    with LiveServer(create_app(settings)) as server:
        yield server


def _rows(browser: Any, table: str) -> list[list[str]]:
    rows = browser.execute_script(
        f"""return Array.from(document.querySelectorAll('#{table} tbody tr')).map(
             r => Array.from(r.cells).map(c => c.textContent));"""
    )
    return [list(row) for row in rows]


def _wait(browser: Any, condition: Any) -> None:
    WebDriverWait(browser, 15, poll_frequency=0.05).until(lambda _: condition())


def test_ui_shows_history_and_recommendations(
    live: LiveServer, tiny_serving: TinyServing, browser: Any, tmp_path: Any
) -> None:
    key = tiny_serving.keys["ui"]  # recommend + users
    browser.get(f"{live.url}/ui")
    assert browser.title == "mtlrec recommendations"

    browser.find_element("id", "api-key").send_keys("mtk_wrong")
    browser.find_element("id", "connect").click()
    status = browser.find_element("id", "status")
    _wait(browser, lambda: "401" in status.text)
    assert status.get_attribute("class") == "error" and "invalid API key" in status.text

    field = browser.find_element("id", "api-key")
    field.clear()
    field.send_keys(key)
    browser.find_element("id", "connect").click()
    picker = Select(browser.find_element("id", "user"))
    _wait(browser, lambda: len(picker.options) > 0)
    expected_users = httpx.get(
        f"{live.url}/v1/users", params={"limit": 500}, headers={"X-API-Key": key}
    ).json()
    assert [o.text for o in picker.options] == expected_users["users"]
    assert f"{expected_users['total']} users" in status.text

    user = picker.options[2].text
    picker.select_by_visible_text(user)
    _wait(browser, lambda: status.text.startswith(f"user {user}:"))
    history = httpx.get(f"{live.url}/v1/users/{user}/history", headers={"X-API-Key": key})
    assert [row[1] for row in _rows(browser, "history")] == history.json()["items"]
    api = httpx.post(
        f"{live.url}/v1/recommend", json={"user_id": user, "k": 10}, headers={"X-API-Key": key}
    ).json()
    shown = _rows(browser, "recs")
    assert [row[1] for row in shown] == [item["item_id"] for item in api["items"]]
    headers = browser.execute_script(
        "return Array.from(document.querySelectorAll('#recs thead th')).map(h => h.textContent)"
    )
    assert headers == ["#", "item", "interest", "rating", "sentiment", "fused", "reason"]
    for row, item in zip(shown, api["items"], strict=True):
        assert row[2] == f"{item['scores']['interest']:.3f}"
        assert row[-1] == item["reason"] and row[-1]
    assert "fused" in browser.find_element("id", "strategy").text
    browser.save_screenshot(str(tmp_path / "ui.png"))

    adhoc = browser.find_element("id", "adhoc")
    adhoc.send_keys("\n".join(history.json()["items"][:2]))
    browser.find_element("id", "recommend-adhoc").click()
    _wait(browser, lambda: status.text.startswith("unknown user:"))
    assert "cold_history" in browser.find_element("id", "strategy").text
    reasons = [row[-1] for row in _rows(browser, "recs")]
    assert reasons and any(r.startswith("similar to ") for r in reasons)

    logged = browser.get_log("browser")
    severe = [e for e in logged if e["level"] == "SEVERE" and "401" not in e["message"]]
    assert severe == [], severe  # the wrong key's 401 is the only error the console saw
