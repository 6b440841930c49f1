"""End to end in real headless Chromium: load the page, search, images render, click refines."""

import shutil
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(index, run):
    import uvicorn

    from tgir.search.server import create_app

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(index, run), host="127.0.0.1", port=port,
                                        log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    return srv, th, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tiny_run, tiny_css2d, tmp_path_factory):
    from tgir.search.index import build_index

    idx = build_index(tiny_run, tiny_css2d, tmp_path_factory.mktemp("b") / "idx", progress=False)
    srv, th, url = _serve(idx, tiny_run)
    yield url
    srv.should_exit = True
    th.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and DRIVER):
        pytest.skip("Debian chromium + chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000",
              f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield drv
    drv.quit()


def test_query_renders_images_and_click_refines(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(server + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#catalog .card img")) > 0)
    ref_before = browser.find_element(By.ID, "refinfo").text
    assert ref_before.startswith("test_")
    browser.find_element(By.ID, "text").send_keys("add small red circle to top-left")
    browser.find_element(By.ID, "search").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result img")) == 12)

    def all_loaded(d):
        return d.execute_script(
            "return [...document.querySelectorAll('#results .result img')]"
            ".every(i => i.complete && i.naturalWidth > 0)")

    wait.until(all_loaded)
    browser.save_screenshot(str(tmp_path / "results.png"))
    assert (tmp_path / "results.png").stat().st_size > 10_000
    first = browser.find_elements(By.CSS_SELECTOR, "#results .result")[0]
    first_id = first.find_element(By.TAG_NAME, "img").get_attribute("alt")
    first.click()

    # read the page state in one script: the result list is re-rendered while we poll, and
    # element handles kept across that re-render go stale
    def result_alts(d):
        return d.execute_script(
            "return [...document.querySelectorAll('#results .result img')].map(i => i.alt)")

    def refinfo(d):
        return d.execute_script("return document.getElementById('refinfo').textContent")

    wait.until(lambda d: refinfo(d).startswith(first_id))
    wait.until(lambda d: (lambda alts: first_id not in alts and len(alts) == 12)(result_alts(d)))
    wait.until(all_loaded)
    assert browser.find_element(By.ID, "error").text == ""
    browser.save_screenshot(str(tmp_path / "refined.png"))



@pytest.mark.slow
def test_attribute_model_page_has_one_select_per_attribute(browser, tmp_path):
    """An AIHM run: the page swaps the reference panel for attribute selects; a search shows
    images of the chosen combination first; clicking a result copies its attributes."""
    import json

    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.test_aihm import TOY_SCHEMA, _toy_config, toy_split, zero_shot
    from tgir.engine.train import train
    from tgir.search.index import build_index

    tr, te = zero_shot(toy_split())
    run = tmp_path / "aihm"
    train(_toy_config("aihm", 150), run, progress=False, data=tr)
    cat = tmp_path / "catalog"
    cat.mkdir()
    lines = []
    for i, im in enumerate(te.images):
        Image.fromarray(im).resize((64, 64)).save(cat / f"{i:03d}.png")
        attrs = {a: TOY_SCHEMA[a][te.attributes[i, j]] for j, a in enumerate(TOY_SCHEMA)}
        lines.append(json.dumps({"file": f"{i:03d}.png", "id": f"t{i:03d}", "text": "",
                                 "attributes": attrs}))
    (cat / "catalog.jsonl").write_text("\n".join(lines))
    index = build_index(run, cat, tmp_path / "index", progress=False)
    srv, th, url = _serve(index, run)
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(url + "/")
        wait.until(lambda d: d.execute_script("return !document.getElementById('attrpanel')"
                                              ".hidden && document.querySelectorAll("
                                              "'#attrs select').length") == 3)
        assert not browser.find_element(By.ID, "refpanel").is_displayed()
        want = {a: TOY_SCHEMA[a][te.attributes[0, j]] for j, a in enumerate(TOY_SCHEMA)}
        for a, v in want.items():
            Select(browser.find_element(By.ID, f"attr-{a}")).select_by_value(v)
        browser.find_element(By.ID, "attrsearch").click()
        wait.until(lambda d: d.execute_script(
            "return document.querySelectorAll('#results .result img').length") == 12)
        first = browser.execute_script(
            "return document.querySelector('#results .result img').alt")
        row = next(json.loads(x) for x in lines if json.loads(x)["id"] == first)
        assert row["attributes"] == want
        assert browser.find_element(By.ID, "attrerror").text == ""
        browser.save_screenshot(str(tmp_path / "attributes.png"))
    finally:
        srv.should_exit = True
        th.join(timeout=10)
