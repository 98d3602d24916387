"""The HTML report opened in headless Chromium as a reader would: its figures render, and the claims
table a person reads fits a 1,400 px window."""

import time

import pytest

from conftest import run_snakemake as _run

WIDTH = 1400  # px: the window a reader opens the report in


def _chromium():
    import shutil

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them when run as root)")
    return browser, driver


@pytest.fixture()
def report_page(tiny_run, tmp_path):
    """The tiny run's report (snakemake --report) open in headless Chromium at WIDTH x 1000: (driver, click_text)."""
    browser, driver = _chromium()
    tmp, args = tiny_run
    report = tmp / "results/report.html"
    if not report.is_file():
        proc = _run(*args, "--report", str(report))
        assert proc.returncode == 0 and report.stat().st_size > 100_000, proc.stderr[-2000:]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-sync",
        "--disable-background-networking",
        "--disable-component-update",
        f"--window-size={WIDTH},1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        opts.add_argument(a)
    web = webdriver.Chrome(service=Service(driver), options=opts)

    def click_text(text):
        xpath = f"//body//*[not(self::script)][normalize-space(text())='{text}']"
        for _ in range(50):  # the report is a React app: wait for it to draw
            found = web.find_elements(By.XPATH, xpath)
            if found:
                web.execute_script("arguments[0].click()", found[-1])
                return
            time.sleep(0.2)
        raise AssertionError(f"report: no element {text!r}; page says {web.find_element(By.TAG_NAME, 'body').text[:500]}")

    web.get(report.as_uri())
    try:
        yield web, click_text
    finally:
        web.quit()


def _open_result(web, name):
    """Click the view button of the result whose row names ``name``."""
    from selenium.webdriver.common.by import By

    for _ in range(50):
        rows = web.find_elements(By.XPATH, f"//td[contains(text(), '{name}')]/ancestor::tr")
        if rows:
            web.execute_script("arguments[0].click()", rows[0].find_elements(By.XPATH, ".//a|.//button")[0])
            return
        time.sleep(0.2)
    raise AssertionError(f"report: no result {name!r}")


@pytest.mark.slow
def test_html_report_shows_the_figures_in_headless_chromium(report_page, tmp_path):
    """Navigate to a figure and check from a screenshot that it rendered: the page gains a large,
    many-coloured image where it was blank."""
    import numpy as np
    from matplotlib.image import imread
    from selenium.webdriver.common.by import By

    web, click_text = report_page
    click_text("Evaluation")
    click_text("extinction_curve")
    before = tmp_path / "before.png"
    web.save_screenshot(str(before))
    _open_result(web, "curve.png")
    for _ in range(50):
        imgs = [i for i in web.find_elements(By.TAG_NAME, "img") if (i.get_attribute("src") or "").startswith("data:image/png")]
        if imgs and int(imgs[0].get_attribute("naturalWidth") or 0) > 300:
            break
        time.sleep(0.2)
    assert imgs and int(imgs[0].get_attribute("naturalWidth")) > 300, "the figure did not load"
    time.sleep(0.5)
    after = tmp_path / "after.png"
    web.save_screenshot(str(after))
    a, b = imread(before)[..., :3], imread(after)[..., :3]
    changed = np.abs(a - b).sum(axis=2) > 0.1
    assert changed.mean() > 0.02, f"only {changed.mean():.3%} of the screen changed when the figure was opened"
    colours = np.unique((b[changed] * 255).astype(np.uint8), axis=0)
    assert len(colours) > 30, f"the figure region has only {len(colours)} colours: not a rendered plot"


@pytest.mark.slow
def test_the_report_opens_on_the_findings_and_the_claims_table_fits_the_window(report_page, tmp_path):
    """The front page starts with the findings: the forest plot in view, then the claims table with the
    reader's six columns, which scrolls only down, never sideways, at 1,400 px; the same table is a
    result of its own in "1. Claims", beside the figure."""
    from selenium.webdriver.common.by import By

    web, click_text = report_page
    for _ in range(50):
        tables = web.find_elements(By.ID, "claims")
        if tables:
            break
        time.sleep(0.2)
    assert tables, "the front page has no claims table"
    web.save_screenshot(str(tmp_path / "front.png"))  # the first screen a reader sees
    figure_top = web.execute_script("return document.querySelector('img[alt^=every]').getBoundingClientRect().top")
    assert 0 <= figure_top < 1000, f"the forest plot is out of view on opening (top at {figure_top} px)"
    heads = [th.text for th in web.find_elements(By.XPATH, "//table[@id='claims']//th")]
    assert heads == ["paper", "where", "claim", "paper's value", "ours (95% interval)", "verdict"], heads
    right, sideways = web.execute_script(
        """const t = document.getElementById('claims'); const out = [];
        for (let e = t; e; e = e.parentElement) if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) out.push(e.tagName);
        return [t.getBoundingClientRect().right, out];"""
    )
    assert right <= WIDTH and not sideways, f"the claims table reaches {right} px; scrolling sideways: {sideways}"
    assert len(web.find_elements(By.CSS_SELECTOR, "#claims .mark")) == len(web.find_elements(By.CSS_SELECTOR, "#claims tbody tr"))
    click_text("1. Claims")
    names = web.find_element(By.TAG_NAME, "body").text
    assert "claims.png" in names and "claims.html" in names, names[:500]
