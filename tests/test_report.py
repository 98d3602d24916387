"""The HTML report opened in headless Chromium as a reader would: its figures render, and the claims
table a person reads fits the window."""

import pytest

from conftest import run_snakemake as _run


def _chromium():
    import shutil

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them when run as root)")
    return browser, driver


@pytest.mark.slow
def test_html_report_shows_the_figures_in_headless_chromium(tiny_run, tmp_path):
    """snakemake --report, then open it in headless Chromium, navigate to a figure and check from
    a screenshot that it rendered: the page gains a large, many-coloured image where it was blank."""
    import time

    import numpy as np
    from matplotlib.image import imread

    browser, driver = _chromium()
    tmp, args = tiny_run
    report = tmp / "results/report.html"
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
        "--window-size=1400,1000",
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

    try:
        web.get(report.as_uri())
        click_text("Evaluation")
        click_text("extinction_curve")
        before = tmp_path / "before.png"
        web.save_screenshot(str(before))
        row = web.find_element(By.XPATH, "//td[contains(text(), 'curve.png')]/ancestor::tr")
        web.execute_script("arguments[0].click()", row.find_elements(By.XPATH, ".//a|.//button")[0])
        for _ in range(50):
            imgs = [i for i in web.find_elements(By.TAG_NAME, "img") if (i.get_attribute("src") or "").startswith("data:image/png")]
            if imgs and int(imgs[0].get_attribute("naturalWidth") or 0) > 300:
                break
            time.sleep(0.2)
        assert imgs and int(imgs[0].get_attribute("naturalWidth")) > 300, "the figure did not load"
        time.sleep(0.5)
        after = tmp_path / "after.png"
        web.save_screenshot(str(after))
    finally:
        web.quit()
    a, b = imread(before)[..., :3], imread(after)[..., :3]
    changed = np.abs(a - b).sum(axis=2) > 0.1
    assert changed.mean() > 0.02, f"only {changed.mean():.3%} of the screen changed when the figure was opened"
    colours = np.unique((b[changed] * 255).astype(np.uint8), axis=0)
    assert len(colours) > 30, f"the figure region has only {len(colours)} colours: not a rendered plot"
