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


def _open(browser, url):
    """Load the page and wait for the catalog's first images."""
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(url + "/")
    wait.until(lambda d: d.execute_script(
        "return document.querySelectorAll('#catalog .card img').length") > 0)
    return wait


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
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result img")) == 10)

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
    wait.until(lambda d: (lambda alts: first_id not in alts and len(alts) == 10)(result_alts(d)))
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
            "return document.querySelectorAll('#results .result img').length") == 10)
        first = browser.execute_script(
            "return document.querySelector('#results .result img').alt")
        row = next(json.loads(x) for x in lines if json.loads(x)["id"] == first)
        assert row["attributes"] == want
        assert browser.find_element(By.ID, "attrerror").text == ""
        # captions show the result's attribute values, not a log-probability
        cap = browser.execute_script("return document.querySelector('#results .result .cap')"
                                     ".textContent")
        assert all(v in cap for v in want.values() if v != "none"), cap
        browser.save_screenshot(str(tmp_path / "attributes.png"))
        # clicking a result copies its attributes and searches for them
        other = next(json.loads(x) for x in lines if json.loads(x)["attributes"] != want)
        browser.execute_script(
            "const c = [...document.querySelectorAll('#catalog .card')].find("
            "e => e.querySelector('img').alt === arguments[0]); c.click();", other["id"])
        wait.until(lambda d: all(d.execute_script(
            f"return document.getElementById('attr-{a}').value") == v
            for a, v in other["attributes"].items()))
        browser.execute_script("document.querySelector('#results .result').click()")
        wait.until(lambda d: d.execute_script(
            "return document.getElementById('status').textContent").startswith("10 results"))
    finally:
        srv.should_exit = True
        th.join(timeout=10)


def test_narrow_viewport_fits(server, browser, tmp_path):
    """At 420 px wide the page stacks its panels; nothing is cut off."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(420, 900)
    try:
        browser.get(server + "/")
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(
            "return document.querySelectorAll('#catalog .card img').length") > 0)
        width = browser.execute_script("return [document.documentElement.scrollWidth, "
                                       "window.innerWidth]")
        assert width[0] <= width[1], width
        browser.save_screenshot(str(tmp_path / "narrow.png"))
    finally:
        browser.set_window_size(1280, 1000)


@pytest.mark.slow
def test_text_only_search_on_a_model_that_takes_both(browser, tmp_path):
    """The joint embedding answers text and reference + text queries: the page starts with no
    reference, a text search works, the refinement controls show; a reference can be picked
    and cleared again."""
    import json

    from PIL import Image
    from selenium.webdriver.common.by import By

    from tests.test_joint_embedding import toy_catalog
    from tgir import config
    from tgir.engine.train import train
    from tgir.search.index import build_index

    data = toy_catalog(96)
    run = tmp_path / "joint"
    train(config.from_dict({
        "data": {"name": "toy", "root": ".", "val_fraction": 0.2},
        "model": {"name": "joint", "embed_dim": 32},
        "train": {"steps": 20, "batch_size": 16, "log_every": 10}}), run, progress=False,
        data=data)
    cat = tmp_path / "catalog"
    cat.mkdir()
    lines = []
    for i, im in enumerate(data.images[:40]):
        Image.fromarray(im).save(cat / f"{i:03d}.png")
        lines.append(json.dumps({"file": f"{i:03d}.png", "id": f"a-rather-long-item-id-{i:03d}",
                                 "text": " ".join(data.words[i])}))
    (cat / "catalog.jsonl").write_text("\n".join(lines))
    srv, th, url = _serve(build_index(run, cat, tmp_path / "index", progress=False), run)
    try:
        wait = _open(browser, url)
        js = browser.execute_script
        assert js("return document.getElementById('refinfo').textContent").startswith("none")
        assert browser.find_element(By.ID, "method").is_displayed()
        assert browser.find_element(By.ID, "minus").is_displayed()
        assert browser.find_element(By.ID, "textlabel").text == "Text"
        browser.find_element(By.ID, "text").send_keys("a red square")
        browser.find_element(By.ID, "search").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 10)
        assert browser.find_element(By.ID, "error").text == ""
        # pick a reference from the catalog, then clear it again
        js("document.querySelector('#catalog .card').click()")
        assert browser.find_element(By.ID, "textlabel").text == "Modification text"
        browser.find_element(By.ID, "clearref").click()
        assert js("return document.getElementById('refinfo').textContent").startswith("none")
        # long ids stay inside their cards
        over = js("return [...document.querySelectorAll('#results .card')].some("
                  "c => c.scrollWidth > c.clientWidth + 1)")
        assert not over
        browser.save_screenshot(str(tmp_path / "text_only.png"))
    finally:
        srv.should_exit = True
        th.join(timeout=10)


@pytest.mark.slow
def test_text_model_page_has_no_reference(browser, tmp_path):
    """HGAN answers text only: no reference panel, no refinement controls."""
    import json

    from PIL import Image
    from selenium.webdriver.common.by import By

    from tests.test_hgan import tiny_hgan_run, toy_text_split
    from tgir.search.index import build_index

    data = toy_text_split(24)
    run = tiny_hgan_run(tmp_path / "hgan", data)
    cat = tmp_path / "catalog"
    cat.mkdir()
    (cat / "catalog.jsonl").write_text("\n".join(
        json.dumps({"file": f"{i:03d}.png", "id": f"p{i:03d}", "text": data.captions[i]})
        for i in range(24)))
    for i in range(24):
        Image.fromarray(data.images[i]).save(cat / f"{i:03d}.png")
    srv, th, url = _serve(build_index(run, cat, tmp_path / "index", progress=False), run)
    try:
        wait = _open(browser, url)
        for hidden in ("refbox", "methodrow", "plusrow", "minusrow"):
            assert not browser.find_element(By.ID, hidden).is_displayed(), hidden
        browser.find_element(By.ID, "text").send_keys("a red square on the left")
        browser.find_element(By.ID, "search").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 10)
        assert browser.find_element(By.ID, "error").text == ""
    finally:
        srv.should_exit = True
        th.join(timeout=10)
