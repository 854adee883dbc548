"""The admin web UI at /ui, driven in headless Chromium and over plain HTTP.

A gateway with a master key runs on the emulator; clients make fixed traffic with three
virtual keys through the OpenAI SDK. The browser (started once for the suite) signs in, reads
the overview's totals and per-key numbers against what the clients were charged, creates a key
and uses it with the OpenAI SDK, revokes it and sees the next call refused, and filters the
request list. The security tests check that UI routes refuse without the session cookie, that
a virtual key cannot sign in, that a form without its token is refused, and that a created key
is never rendered again. The last test checks that docs/ui/ was made from the current UI
sources (scripts/ui-screenshots).
"""
import hashlib
import re

import openai
import pytest
import requests
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from uihelp import (MASTER_KEY, SHOTS, browser, csrf_of, fixed_traffic, generate, signed_in, start_emulator,
                    start_gateway, ui_sources_hash, wait_logged)

PAGES = ["/ui", "/ui/", "/ui/keys", "/ui/models", "/ui/requests", "/ui/keys/" + "0" * 64]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    emu_url, emu = start_emulator()
    url, gw = start_gateway(emu_url, tmp_path_factory.mktemp("ui"))
    yield url
    gw.stop()
    emu.stop()


@pytest.fixture(scope="module")
def traffic(gateway):
    keys, calls = fixed_traffic(gateway)
    assert wait_logged(gateway, signed_in(gateway), len(calls)) == len(calls)
    return keys, calls


@pytest.fixture(scope="module")
def driver():
    d = browser()
    yield d
    d.quit()


def submit(driver, button):
    """Clicks a form's button and waits until the next page has replaced this one.

    While the page is being replaced, chromedriver can answer the staleness probe with an
    "unhandled inspector error" instead of a stale-element error (seen once in CI): that
    answer is polled again, like a page that is still there."""
    page = driver.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(EC.staleness_of(page))


def sign_in(driver, url):
    driver.delete_all_cookies()
    driver.get(f"{url}/ui/login")
    driver.find_element(By.ID, "master_key").send_keys(MASTER_KEY)
    submit(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert driver.current_url == f"{url}/ui/", driver.current_url


# --- security -----------------------------------------------------------------------------

def test_ui_routes_refuse_without_the_session_cookie(gateway):
    for path in PAGES:
        r = requests.get(f"{gateway}{path}", allow_redirects=False, timeout=10)
        if path == "/ui":
            assert r.status_code in (301, 303, 307, 308) and r.headers["location"] in ("/ui/", "/ui/login")
            continue
        assert r.status_code == 303 and r.headers["location"] == "/ui/login", (path, r.status_code)
    for path in ["/ui/keys", "/ui/keys/" + "0" * 64, "/ui/keys/" + "0" * 64 + "/revoke", "/ui/logout"]:
        r = requests.post(f"{gateway}{path}", data={"csrf": "x", "key_alias": "x"}, allow_redirects=False, timeout=10)
        assert r.status_code == 403, (path, r.status_code)
    # A made-up cookie is no session either.
    r = requests.get(f"{gateway}/ui/keys", cookies={"agentbridge_ui": "f" * 64}, allow_redirects=False, timeout=10)
    assert r.status_code == 303
    # The sign-in page itself is open.
    assert requests.get(f"{gateway}/ui/login", timeout=10).status_code == 200


def test_only_the_master_key_signs_in(gateway):
    virtual = generate(gateway, "not-an-admin")
    for wrong in (virtual, "", MASTER_KEY + "x", MASTER_KEY[:-1]):
        r = requests.post(f"{gateway}/ui/login", data={"master_key": wrong}, allow_redirects=False, timeout=10)
        assert r.status_code == 401, wrong
        assert "set-cookie" not in r.headers
        assert virtual not in r.text
    r = requests.post(f"{gateway}/ui/login", data={"master_key": MASTER_KEY}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/ui/"


def test_the_session_cookie_is_http_only_strict_and_secure_behind_tls(gateway):
    r = requests.post(f"{gateway}/ui/login", data={"master_key": MASTER_KEY}, allow_redirects=False, timeout=10)
    cookie = r.headers["set-cookie"]
    assert re.fullmatch(r"agentbridge_ui=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=\d+", cookie), cookie
    r = requests.post(f"{gateway}/ui/login", data={"master_key": MASTER_KEY}, headers={"X-Forwarded-Proto": "https"},
                      allow_redirects=False, timeout=10)
    assert r.headers["set-cookie"].endswith("; Secure")


def test_a_form_without_its_token_is_refused(gateway):
    s = signed_in(gateway)
    before = requests.get(f"{gateway}/key/list", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10).json()["total_count"]
    for data in ({"key_alias": "csrf-missing"}, {"key_alias": "csrf-wrong", "csrf": "0" * 64}, {"key_alias": "csrf-empty", "csrf": ""}):
        r = s.post(f"{gateway}/ui/keys", data=data, allow_redirects=False, timeout=10)
        assert r.status_code == 403, data
        assert "sk-" not in r.text
    # Another session's token is no good here either.
    other = csrf_of(signed_in(gateway).get(f"{gateway}/ui/keys", timeout=10).text)
    assert s.post(f"{gateway}/ui/keys", data={"key_alias": "x", "csrf": other}, timeout=10).status_code == 403
    after = requests.get(f"{gateway}/key/list", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10).json()["total_count"]
    assert after == before
    # With the right token the same form works.
    token = csrf_of(s.get(f"{gateway}/ui/keys", timeout=10).text)
    assert s.post(f"{gateway}/ui/keys", data={"key_alias": "csrf-ok", "csrf": token}, timeout=10).status_code == 200


def test_signing_out_ends_the_session(gateway):
    s = signed_in(gateway)
    old = s.cookies.get("agentbridge_ui", path="/ui")
    token = csrf_of(s.get(f"{gateway}/ui/", timeout=10).text)
    r = s.post(f"{gateway}/ui/logout", data={"csrf": token}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert "Max-Age=0" in r.headers["set-cookie"]
    r = requests.get(f"{gateway}/ui/keys", cookies={"agentbridge_ui": old}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"


def test_pages_carry_no_script_and_are_not_cached(gateway, traffic):
    s = signed_in(gateway)
    for path in PAGES[1:5]:
        r = s.get(f"{gateway}{path}", timeout=10)
        assert r.status_code == 200, path
        assert "<script" not in r.text.lower()
        assert r.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["server-timing"].startswith("app;dur=")


# --- the browser ----------------------------------------------------------------------------

def numbers(driver, chart):
    """A chart's numbers table as {name: value}."""
    rows = driver.find_elements(By.CSS_SELECTOR, f'figure[data-chart="{chart}"] tr[data-name]')
    return {r.get_attribute("data-name"): float(r.find_element(By.CSS_SELECTOR, "td[data-value]").get_attribute("data-value"))
            for r in rows}


def test_the_overview_shows_what_the_clients_were_charged(gateway, traffic, driver):
    keys, calls = traffic
    sign_in(driver, gateway)
    total = int(driver.find_element(By.CSS_SELECTOR, 'dd[data-total="requests"]').text.replace(",", ""))
    errors = int(driver.find_element(By.CSS_SELECTOR, 'dd[data-total="errors"]').text.replace(",", ""))
    assert total == len(calls)
    assert errors == sum(1 for c in calls if not c[4])
    per_key = numbers(driver, "requests-by-key")
    for alias in keys:
        assert per_key[alias] == sum(1 for c in calls if c[0] == alias), alias
    per_model = numbers(driver, "requests-by-model")
    assert per_model["bedrock-agent-1"] == sum(1 for c in calls if c[1] == "bedrock-agent-1")
    # Spend of the non-streamed keys is what the clients were told in x-litellm-response-cost.
    spend = numbers(driver, "spend-by-key")
    for alias in ("team-b", "batch-jobs"):
        charged = sum(c[2] for c in calls if c[0] == alias and c[2] is not None)
        assert charged > 0
        assert spend[alias] == pytest.approx(charged, rel=1e-9), alias
    # Charts are drawn, labelled, and the burn-down lists the keys with a budget.
    assert len(driver.find_elements(By.CSS_SELECTOR, "figure.chart svg[role=img]")) >= 7
    burn = driver.find_element(By.XPATH, "//h2[normalize-space()='Budget burn-down']/following-sibling::figure[1]")
    assert "team-a" in burn.get_attribute("innerHTML") and "batch-jobs" in burn.get_attribute("innerHTML")


def test_a_key_created_in_the_browser_works_until_it_is_revoked(gateway, traffic, driver):
    sign_in(driver, gateway)
    driver.get(f"{gateway}/ui/keys")
    driver.find_element(By.ID, "key_alias").send_keys("made-in-the-ui")
    driver.find_element(By.ID, "models").send_keys("bedrock-agent-1")
    driver.find_element(By.ID, "max_budget").send_keys("3")
    submit(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Create key']"))
    new_key = driver.find_element(By.ID, "new-key-value").text.strip()
    assert re.fullmatch(r"sk-[0-9a-f]{48}", new_key), new_key

    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=new_key, max_retries=0)
    r = client.chat.completions.create(model="bedrock-agent-1", messages=[{"role": "user", "content": "hello from the UI's key"}])
    assert r.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="bedrock-agent-2", messages=[{"role": "user", "content": "not allowed"}])

    # The key is never rendered again: not on any page, not in the edit form.
    token = hashlib.sha256(new_key.encode()).hexdigest()
    for path in ["/ui/", "/ui/keys", "/ui/models", "/ui/requests", f"/ui/keys/{token}"]:
        driver.get(f"{gateway}{path}")
        assert new_key not in driver.page_source, path
        assert new_key[3:] not in driver.page_source, path

    # Revoke it in the browser: the next call is refused.
    driver.get(f"{gateway}/ui/keys")
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-token="{token}"]')
    submit(driver, row.find_element(By.XPATH, ".//button[normalize-space()='Revoke']"))
    assert driver.find_elements(By.CSS_SELECTOR, f'tr[data-token="{token}"]') == []
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="bedrock-agent-1", messages=[{"role": "user", "content": "after revoke"}])


def test_editing_a_keys_limits_in_the_browser(gateway, traffic, driver):
    keys, _ = traffic
    token = hashlib.sha256(keys["team-b"].encode()).hexdigest()
    sign_in(driver, gateway)
    driver.get(f"{gateway}/ui/keys/{token}")
    rpm = driver.find_element(By.ID, "rpm_limit")
    rpm.clear()
    rpm.send_keys("77")
    submit(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Save']"))
    assert driver.current_url == f"{gateway}/ui/keys", driver.find_element(By.TAG_NAME, "main").text
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-token="{token}"]')
    assert "rpm 77" in row.text
    info = requests.get(f"{gateway}/key/info", params={"key": token}, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10).json()
    assert info["info"]["rpm_limit"] == 77


def test_filtering_the_request_list(gateway, traffic, driver):
    keys, calls = traffic
    sign_in(driver, gateway)
    driver.get(f"{gateway}/ui/requests")
    Select(driver.find_element(By.ID, "f-key")).select_by_visible_text("batch-jobs")
    submit(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Filter']"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#requests tbody tr")
    assert len(rows) == sum(1 for c in calls if c[0] == "batch-jobs")
    assert all("batch-jobs" in r.text and "bedrock-agent-2" in r.text for r in rows)

    driver.get(f"{gateway}/ui/requests")
    Select(driver.find_element(By.ID, "f-status")).select_by_value("error")
    submit(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Filter']"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#requests tbody tr")
    assert rows and all(int(r.get_attribute("data-status")) >= 400 for r in rows)
    assert any("model_not_found" in r.text for r in rows)

    driver.get(f"{gateway}/ui/requests")
    Select(driver.find_element(By.ID, "f-model")).select_by_value("bedrock-agent-1")
    submit(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Filter']"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#requests tbody tr")
    assert len(rows) >= sum(1 for c in calls if c[1] == "bedrock-agent-1")
    assert all("bedrock-agent-1" in r.text for r in rows)
    # Streamed calls have a time to first token; the list never shows a prompt.
    driver.get(f"{gateway}/ui/requests")
    assert "question 0 from" not in driver.page_source


def test_the_request_list_pages_by_keyset(gateway, traffic):
    s = signed_in(gateway)
    seen = []
    url = f"{gateway}/ui/requests"
    for _ in range(50):
        html = s.get(url, timeout=10).text
        seen += re.findall(r"<tr data-status=", html)
        m = re.search(r'id="next-page" href="([^"]+)"', html)
        if not m:
            break
        url = gateway + m.group(1).replace("&amp;", "&")
    total = int(re.search(r'data-total="requests">([0-9,]+)<', s.get(f"{gateway}/ui/", timeout=10).text).group(1).replace(",", ""))
    assert len(seen) == total


def test_models_page_lists_each_model_its_target_and_state(gateway, driver):
    sign_in(driver, gateway)
    driver.get(f"{gateway}/ui/models")
    t = driver.find_element(By.CSS_SELECTOR, 'table[data-model="bedrock-agent-2"]')
    assert "bedrock/agent/AGENT456/ALIAS789" in t.text and "healthy" in t.text and "us-east-1" in t.text


def test_with_the_request_log_off_the_log_pages_say_so(gateway, tmp_path):
    # The suite's gateway logs requests: no notice there.
    s = signed_in(gateway)
    for path in ("/ui/", "/ui/requests"):
        assert 'id="log-off"' not in s.get(f"{gateway}{path}", timeout=10).text, path
    emu_url, emu = start_emulator(log_name="ui-emulator-log-off")
    url, gw = start_gateway(emu_url, tmp_path, log_name="ui-gateway-log-off",
                            extra="agentbridge:\n  request_log: false\n")
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
        client.chat.completions.create(model="bedrock-agent-1", messages=[{"role": "user", "content": "hi"}])
        s = signed_in(url)
        for path in ("/ui/", "/ui/requests"):
            html = s.get(f"{url}{path}", timeout=10).text
            assert 'id="log-off"' in html and "disable_spend_logs: true" in html, path
        assert 'id="log-off"' not in s.get(f"{url}/ui/keys", timeout=10).text
    finally:
        gw.stop()
        emu.stop()


def test_pages_are_keyboard_reachable_and_fit_a_phone(gateway, traffic, driver):
    sign_in(driver, gateway)
    driver.get(f"{gateway}/ui/keys")
    # Every input has a label; every action is a real link or button.
    for el in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select"):
        assert driver.find_elements(By.CSS_SELECTOR, f'label[for="{el.get_attribute("id")}"]'), el.get_attribute("name")
    assert driver.find_elements(By.CSS_SELECTOR, "nav a[href='/ui/requests']")
    driver.set_window_size(390, 844)
    try:
        for path in ["/ui/", "/ui/keys", "/ui/requests"]:
            driver.get(f"{gateway}{path}")
            width = driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
    finally:
        driver.set_window_size(1280, 900)


def test_screenshots_match_the_current_build():
    recorded = (SHOTS / "SOURCES.sha256").read_text().split()[0]
    assert recorded == ui_sources_hash(), "the UI changed: run scripts/ui-screenshots and commit docs/ui/"
    for page in ("overview", "keys", "models", "requests", "overview-phone"):
        assert (SHOTS / f"{page}.png").stat().st_size > 10_000, page
