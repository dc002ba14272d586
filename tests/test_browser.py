"""The real app, started with `archivist serve`, driven in headless Chromium."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, SAMPLES, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="Debian's chromium and chromium-driver are not installed")


@pytest.fixture
def server(tmp_path):
    env = dict(os.environ, ARCHIVIST_EMBEDDER__MODEL="fake", ARCHIVIST_GENERATOR__BACKEND="fake",
               ARCHIVIST_ANSWER__MIN_CONFIDENCE="0.45", ARCHIVIST_ANSWER__MATCH_WEIGHT="0",
               ARCHIVIST_DATA_DIR=str(tmp_path / "data"),
               PYTHONPATH=str(ROOT))
    index = tmp_path / "index"
    subprocess.run([sys.executable, "-m", "ui.cli", "ingest", str(SAMPLES / "docs"), "--index", str(index), "--no-progress"],
                   env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "ui.cli", "users", "add", "erin", "--groups", "staff", "--password-stdin"],
                   env=env, cwd=tmp_path, check=True, capture_output=True, timeout=60, input=b"erin's long password\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--api-port", "0", "--index", str(index)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the app did not come up within 60 s")
    yield url
    proc.terminate()  # `archivist serve` passes it on to the Streamlit server it started
    try:
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything left of the group: no test leaves a server behind
        except ProcessLookupError:
            pass
        proc.wait()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the web server outlived 'archivist serve'"


def test_ask_in_a_real_browser(server, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chrome'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(server)
        wait = WebDriverWait(driver, 90, ignored_exceptions=(StaleElementReferenceException,))
        # the sign-in screen comes first; nothing else is on it
        user = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'input[aria-label="User name"]')))
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stChatInput"]')
        user.send_keys("erin")
        driver.find_element(By.CSS_SELECTOR, 'input[aria-label="Password"]').send_keys("erin's long password")
        next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == "Sign in").click()
        box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, '[data-testid="stChatInput"] textarea')))
        box.send_keys("How many days of paid annual leave does an employee get?")
        box.send_keys(Keys.ENTER)
        wait.until(lambda d: any("[1]" in m.text and "25 days" in m.text
                                 for m in d.find_elements(By.CSS_SELECTOR, '[data-testid="stChatMessage"]')))
        source = wait.until(EC.element_to_be_clickable((By.XPATH, "//summary[contains(., 'employee-handbook.pdf')]")))
        source.click()
        wait.until(lambda d: any(b.text == "Download the document" for b in d.find_elements(By.TAG_NAME, "button")))
        shot = tmp_path / "answer.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        driver.quit()
