"""The real app in a real headless browser (Debian's chromium, driven by Playwright).

Screenshots of both tabs go to test-output/app-browser/ (gitignored); the paths are printed.
Never runs `playwright install`: the browser is the system's /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from diachestxr import SCREENING_CLASSES
from tests.conftest import ROOT

CHROMIUM = os.environ.get("DIACHESTXR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
OUTPUT = ROOT / "test-output" / "app-browser"
VIEWPORT = {"width": 1366, "height": 768}  # a common laptop screen
RESULT_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package "
                    "(apt-get install chromium); this test never downloads a browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, app_url):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(RESULT_TIMEOUT_MS)
    page.goto(app_url)
    page.get_by_role("tab", name="Screening").wait_for()
    yield page
    context.close()


@pytest.fixture(scope="module")
def output_dir() -> Path:
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    return OUTPUT


def screenshot(page, output_dir: Path, name: str, full_page: bool = True) -> Path:
    path = output_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def test_page_shows_notice_tabs_and_models(page):
    assert page.locator("#notice").get_by_text("not for clinical use").is_visible()
    assert page.get_by_role("tab", name="Diagnosis").is_visible()
    assert page.get_by_text("weights from the checkpoint bundled with the app").first.is_visible()
    # the model card is rendered Markdown (headings, the exact command), not a JSON dump
    page.get_by_text("About the screening model").click()
    page.get_by_role("heading", name="Training data").first.wait_for()
    assert page.get_by_text("Exact command:").first.is_visible()
    assert page.get_by_text('"per_class"').count() == 0


def test_screening_tab(page, examples_dir, output_dir):
    upload = page.locator("#screen-file input[type=file]")
    upload.set_input_files(str(examples_dir / "4fed5061.jpg"))
    label = page.locator("#screen-label")
    # the gr.Label heading shows the predicted class once the result is in
    heading = label.locator("[data-testid=label-output-value]")
    heading.wait_for()
    predicted = heading.inner_text().strip()
    assert predicted in SCREENING_CLASSES
    for cls in SCREENING_CLASSES:
        assert label.get_by_text(cls).first.is_visible()
    heatmap = page.locator("#screen-overlay img")
    heatmap.wait_for()
    assert heatmap.evaluate("img => img.complete && img.naturalWidth") > 0
    page.locator("#screen-caption").get_by_text(f"Heatmap for {predicted}").wait_for()
    screenshot(page, output_dir, "screening")

    # the map for another class, on request
    other = next(c for c in SCREENING_CLASSES if c != predicted)
    page.locator("#screen-class").get_by_text(other).click()
    page.locator("#screen-caption").get_by_text(f"Heatmap for {other}").wait_for()

    # a sample image: one click loads and analyses it
    before = heatmap.get_attribute("src")
    page.locator("#screening-examples button.gallery-item").nth(2).click()
    page.locator("#screen-file").get_by_text("person1000_bact").wait_for()  # the name is ellipsised
    page.wait_for_function(  # the old result is cleared first, then the new overlay arrives
        "before => { const img = document.querySelector('#screen-overlay img');"
        " return img !== null && img.src !== before; }", arg=before)
    heading.wait_for()


def test_diagnosis_tab(page, examples_dir, output_dir):
    page.get_by_role("tab", name="Diagnosis").click()
    page.locator("#diagnose-file input[type=file]").set_input_files(
        str(examples_dir / "00005610_000.jpg"))
    table = page.locator("#diagnose-table table")
    table.wait_for()
    assert table.locator("tbody tr").count() == 14
    assert page.locator("#diagnose-summary").get_by_text("threshold").first.is_visible()
    gallery_image = page.locator("#diagnose-gallery img").first
    gallery_image.wait_for()
    assert gallery_image.evaluate("img => img.complete && img.naturalWidth") > 0
    screenshot(page, output_dir, "diagnosis")

    # the map for any label
    page.locator("#diagnose-pick input").click()
    page.get_by_role("option", name="Cardiomegaly").click()
    page.locator("#diagnose-pick-image img").wait_for()


def test_bad_upload_shows_our_message(page, output_dir, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is a text file, not an X-ray\n")
    page.locator("#screen-file input[type=file]").set_input_files(str(bad))
    toast = page.locator("[data-testid=toast-text]").filter(has_text="not a recognised image file")
    toast.wait_for()
    assert "notes.png" in toast.inner_text()
    assert page.get_by_text("Traceback").count() == 0
    page.wait_for_timeout(800)  # the toast slides in
    screenshot(page, output_dir, "error", full_page=False)  # the toast is fixed to the viewport
    # the reason stays beside the upload after the toast is gone
    kept = page.locator("#screen-error").get_by_text("not a recognised image file")
    kept.wait_for()
    page.locator("[data-testid=toast-close]").first.click()
    toast.wait_for(state="detached")
    assert kept.is_visible() and "notes.png" in kept.inner_text()
