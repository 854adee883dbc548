"""Writes docs/ui/*.png, one per page of the admin UI, from fixed traffic (three keys, two
models, one refused call) on a fresh gateway, and docs/ui/SOURCES.sha256: the hash of the UI
sources they were made from (tests/ui/test_ui.py checks it against the current sources)."""
import tempfile
import pathlib

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from uihelp import MASTER_KEY, SHOTS, browser, fixed_traffic, signed_in, start_emulator, start_gateway, ui_sources_hash, wait_logged


def shoot(driver, url, path, name, width):
    driver.set_window_size(width, 900)
    driver.get(url + path)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height, 600), 4000))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))
    print(f"wrote docs/ui/{name}.png ({width} px wide)")


def main():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        emu_url, emu = start_emulator("ui-shots-emulator")
        url, gw = start_gateway(emu_url, pathlib.Path(d), "ui-shots-gateway")
        driver = browser()
        try:
            _, calls = fixed_traffic(url)
            wait_logged(url, signed_in(url), len(calls))
            driver.get(f"{url}/ui/login")
            driver.find_element(By.ID, "master_key").send_keys(MASTER_KEY)
            page = driver.find_element(By.TAG_NAME, "html")
            driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            WebDriverWait(driver, 15).until(EC.staleness_of(page))
            for path, name in [("/ui/", "overview"), ("/ui/keys", "keys"), ("/ui/models", "models"),
                               ("/ui/requests", "requests")]:
                shoot(driver, url, path, name, 1280)
            shoot(driver, url, "/ui/", "overview-phone", 390)
        finally:
            driver.quit()
            gw.stop()
            emu.stop()
    (SHOTS / "SOURCES.sha256").write_text(f"{ui_sources_hash()}  crates/agentbridge-proxy/src/ui\n")
    print("wrote docs/ui/SOURCES.sha256")


if __name__ == "__main__":
    main()
