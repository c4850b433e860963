"""The real app in a real headless browser (Debian's chromium, driven by Playwright), at a
laptop's size (1366x768) and a phone's (390x844).

Screenshots of every step go to test-output/app-browser/ (gitignored); the paths are printed.
With DIACHESTXR_UPDATE_DOCS=1 the laptop-size screenshots of both tabs with a result are also
written, downscaled and quantised, to docs/screening.png and docs/diagnosis.png (the README's).
Never runs `playwright install`: the browser is the system's /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from diachestxr import SCREENING_CLASSES
from tests.conftest import ROOT

CHROMIUM = os.environ.get("DIACHESTXR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
OUTPUT = ROOT / "test-output" / "app-browser"
DOCS = ROOT / "docs"
UPDATE_DOCS = os.environ.get("DIACHESTXR_UPDATE_DOCS") == "1"
DOCS_WIDTH = 1000  # px: the README's screenshots, downscaled from the laptop's 1366
DOCS_MAX_BYTES = 300_000
VIEWPORTS = {"laptop": {"width": 1366, "height": 768},  # a common laptop screen
             "phone": {"width": 390, "height": 844}}  # a common phone (CSS pixels)
RESULT_TIMEOUT_MS = 90_000
ERROR_KEPT_MS = 6_000  # longer than the error toast stays


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


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    return request.param


@pytest.fixture()
def page(browser, app_url, viewport):
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    page.set_default_timeout(RESULT_TIMEOUT_MS)
    page.goto(app_url)
    page.get_by_role("tab", name="Screening").wait_for()
    yield page
    context.close()


@pytest.fixture(params=["light", "dark"])
def scheme_page(browser, app_url, viewport, request):
    """The page as a visitor whose system is set to light or dark (prefers-color-scheme,
    what a phone's dark setting gives; not only Gradio's ?__theme=dark)."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], color_scheme=request.param)
    page = context.new_page()
    page.set_default_timeout(RESULT_TIMEOUT_MS)
    page.goto(app_url)
    page.get_by_role("tab", name="Screening").wait_for()
    yield page, request.param
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


def docs_screenshot(source: Path, name: str) -> None:
    """The README's copy of a laptop-size screenshot: downscaled to DOCS_WIDTH and
    quantised to 256 colours (fast octree: it keeps the heatmaps' and the colour bar's hues,
    where median cut turned them into bands of brown), about 100 KB instead of 450."""
    from PIL import Image

    with Image.open(source) as im:
        im = im.convert("RGB")
        im = im.resize((DOCS_WIDTH, round(im.height * DOCS_WIDTH / im.width)), Image.LANCZOS)
        im = im.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        DOCS.mkdir(exist_ok=True)
        out = DOCS / f"{name}.png"
        im.save(out, optimize=True)
    assert out.stat().st_size < DOCS_MAX_BYTES, f"{out}: {out.stat().st_size} bytes"
    print(f"docs screenshot: {out} ({out.stat().st_size // 1000} KB)")


def box(locator) -> dict:
    """The element's rectangle in the viewport (CSS px), and the viewport's height."""
    return locator.evaluate("e => { const r = e.getBoundingClientRect(); return {top: r.top,"
                            " bottom: r.bottom, left: r.left, right: r.right,"
                            " height: window.innerHeight, width: window.innerWidth}; }")


def wait_in_view(page, selector: str, min_px: int = 150) -> None:
    """Wait until at least min_px of the element's height is inside the viewport (the app
    scrolls a new result into view, smoothly)."""
    page.wait_for_function(
        "([sel, min]) => { const e = document.querySelector(sel); if (!e) return false;"
        " const r = e.getBoundingClientRect();"
        " return Math.min(r.bottom, window.innerHeight) - Math.max(r.top, 0) >= min; }",
        arg=[selector, min_px], timeout=10_000)
    last = None  # then let the smooth scroll finish, so screenshots show where it stops
    for _ in range(40):
        now = page.evaluate("window.scrollY")
        if now == last:
            break
        last = now
        page.wait_for_timeout(150)


def assert_apart(a: dict, b: dict) -> None:
    """Two rectangles do not overlap."""
    assert (a["right"] <= b["left"] or b["right"] <= a["left"]
            or a["bottom"] <= b["top"] or b["bottom"] <= a["top"]), (a, b)


def assert_file_label_clear(page, prefix: str) -> None:
    """The file box's label is not under its clear (x) button (it was, on a phone)."""
    file_box = page.locator(f"#{prefix}-file")
    assert_apart(box(file_box.locator("label[data-testid=block-label]")),
                 box(file_box.get_by_role("button", name="Clear")))


def assert_compare_loaded(page, selector: str, min_width: int) -> None:
    """The comparison slider shows the radiograph and its heatmap, both loaded, the image
    at least min_width px wide however small the input is."""
    images = page.locator(f"{selector} img[data-testid=imageslider-image]")
    images.nth(1).wait_for()
    page.wait_for_function(
        "sel => { const im = document.querySelectorAll(sel + ' img[data-testid=imageslider-image]');"
        " return im.length === 2 && [...im].every(i => i.complete && i.naturalWidth > 0); }",
        arg=selector)
    sources = {images.nth(i).get_attribute("src") for i in range(2)}
    assert len(sources) == 2, "the slider should compare two different images"
    width = images.first.evaluate("img => img.getBoundingClientRect().width")
    assert width >= min_width, f"the image is drawn {width:.0f} px wide"


def wait_heatmap_changed(page, selector: str, before: str | None) -> None:
    """Wait until the slider's heatmap (its second image) is a new one, loaded, and the
    event that drew it is over."""
    page.wait_for_function(
        "([sel, before]) => { const im = document.querySelectorAll(sel + ' img');"
        " return im.length === 2 && im[1].src !== before && im[1].complete"
        " && im[1].naturalWidth > 0; }", arg=[selector, before])
    page.locator(f"{selector} [data-testid=status-tracker].hide").wait_for(state="attached")


def wait_picked(page, label: str) -> None:
    """Wait until the diagnosis label picker names `label` (it is updated with the slider,
    but the input's text can follow a moment later)."""
    page.wait_for_function(
        "want => (document.querySelector('#diagnose-pick input')?.value || '').includes(want)",
        arg=label, timeout=10_000)


MIN_CONTRAST = 4.5  # WCAG AA for body text
# The contrast ratio of an element's text with what is behind it, as drawn: its colour and
# every ancestor's opacity blended onto the first ancestor background that is not see-through.
CONTRAST_JS = """(el) => {
  const rgba = s => { const m = s.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
  let alpha = rgba(getComputedStyle(el).color)[3], bg = null;
  for (let n = el; n; n = n.parentElement) {
    alpha *= parseFloat(getComputedStyle(n).opacity);
    const c = rgba(getComputedStyle(n).backgroundColor);
    if (!bg && c[3] > 0.5) bg = c;
  }
  bg = bg || [255, 255, 255, 1];
  const fg = rgba(getComputedStyle(el).color).map((v, i) => i < 3 ? v * alpha + bg[i] * (1 - alpha) : 1);
  const lum = c => { const v = c.slice(0, 3).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
                     return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const a = lum(fg), b = lum(bg);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def assert_readable(page, selector: str) -> None:
    """Every visible element matching `selector` has a contrast of at least MIN_CONTRAST,
    once Gradio's fade-in (an opacity transition of a block that just got a value) is over."""
    elements = page.locator(selector)
    assert elements.count() > 0, selector
    for i in range(elements.count()):
        element = elements.nth(i)
        if not element.is_visible():
            continue
        for _ in range(15):
            ratio = element.evaluate(CONTRAST_JS)
            if ratio >= MIN_CONTRAST:
                break
            page.wait_for_timeout(200)
        assert ratio >= MIN_CONTRAST, f"{selector} #{i}: contrast {ratio:.2f}:1"


def readable_width(viewport: str) -> int:
    """How wide (CSS px) an explanation must be drawn: most of a phone's width, or a
    third of a laptop's."""
    return 300 if viewport == "phone" else 380


def test_page_shows_notice_tabs_and_models(page, viewport, output_dir):
    assert page.locator("#notice").get_by_text("not for clinical use").is_visible()
    # both tabs on screen, labels whole: no "..." overflow menu, no ellipsis (on a phone the
    # Diagnosis tab used to hide behind a menu)
    for name in ("Screening", "Diagnosis"):
        tab = page.get_by_role("tab", name=name)
        assert tab.is_visible()
        rect = box(tab)
        assert 0 <= rect["left"] and rect["right"] <= rect["width"], (name, rect)
        assert tab.evaluate("e => e.scrollWidth <= e.clientWidth"), f"{name} tab label is cut"
    assert page.locator(".overflow-menu:visible").count() == 0
    assert page.get_by_text("weights from the checkpoint bundled with the app").first.is_visible()
    screenshot(page, output_dir, f"start-{viewport}", full_page=False)
    # the model card is rendered Markdown (headings, the exact command), not a JSON dump
    page.get_by_text("About the screening model").click()
    heading = page.get_by_role("heading", name="Training data").first
    heading.wait_for()
    assert page.get_by_text("Exact command:").first.is_visible()
    assert page.get_by_text('"per_class"').count() == 0
    heading.scroll_into_view_if_needed()
    screenshot(page, output_dir, f"model-card-{viewport}", full_page=False)


def test_screening_tab(page, viewport, examples_dir, output_dir, tmp_path):
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
    assert_compare_loaded(page, "#screen-compare", readable_width(viewport))
    page.locator("#screen-caption").get_by_text(f"Heatmap for {predicted}").wait_for()
    # the result is on screen after the upload (on a phone the app scrolls to it)
    wait_in_view(page, "#screen-compare")
    if viewport == "phone":
        wait_in_view(page, "#screen-label [data-testid=label-output-value]", min_px=20)
    assert_file_label_clear(page, "screen")
    # the result as JSON: made for this button, not sent to API callers
    import httpx

    with page.expect_download() as download:
        page.locator("#screen-download").click()
    assert re.fullmatch(r"diachestxr-screening-[0-9a-f]{16}\.json", download.value.suggested_filename)
    saved = tmp_path / "result.json"
    download.value.save_as(saved)
    assert json.loads(saved.read_text())["label"] == predicted
    assert httpx.get(download.value.url).status_code == 404  # only this page's session gets it
    screenshot(page, output_dir, f"screening-{viewport}-view", full_page=False)
    path = screenshot(page, output_dir, f"screening-{viewport}")
    if UPDATE_DOCS and viewport == "laptop":
        docs_screenshot(path, "screening")

    # the map for another class, on request
    other = next(c for c in SCREENING_CLASSES if c != predicted)
    before = page.locator("#screen-compare img").nth(1).get_attribute("src")
    page.locator("#screen-class").get_by_text(other).click()
    page.locator("#screen-caption").get_by_text(f"Heatmap for {other}").wait_for()
    wait_heatmap_changed(page, "#screen-compare", before)

    # a sample image: one click loads and analyses it
    page.evaluate("window.scrollTo(0, 0)")
    before = page.locator("#screen-compare img").first.get_attribute("src")
    page.locator("#screening-examples button.gallery-item").nth(2).click()
    page.locator("#screen-file").get_by_text("person1000_bact").wait_for()  # the name is ellipsised
    page.wait_for_function(  # the old result is cleared first, then the new one arrives
        "before => { const img = document.querySelector('#screen-compare img');"
        " return img !== null && img.src !== before; }", arg=before)
    heading.wait_for()
    wait_in_view(page, "#screen-compare")

    # a small input (224 px, the model's size) is drawn at a readable size, not 224 px
    from PIL import Image

    small = tmp_path / "small.png"
    with Image.open(examples_dir / "4fed5061.jpg") as im:
        im.convert("L").resize((224, 224)).save(small)
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#screen-file").get_by_role("button", name="Clear").click()  # then a new file
    page.locator("#screen-compare img").first.wait_for(state="detached")
    upload.set_input_files(str(small))
    page.locator("#screen-file").get_by_text("small").wait_for()
    assert_compare_loaded(page, "#screen-compare", readable_width(viewport))
    wait_in_view(page, "#screen-compare", min_px=300)
    screenshot(page, output_dir, f"screening-small-input-{viewport}", full_page=False)


def test_diagnosis_tab(page, viewport, examples_dir, output_dir):
    page.get_by_role("tab", name="Diagnosis").click()
    page.locator("#diagnose-file input[type=file]").set_input_files(
        str(examples_dir / "00005610_000.jpg"))
    table = page.locator("#diagnose-table table")
    table.wait_for()
    assert table.locator("tbody tr").count() == 14
    assert page.locator("#diagnose-summary").get_by_text("threshold").first.is_visible()
    # every column fits: the Threshold column is not cut off on a phone
    frame = box(page.locator("#diagnose-table .dx-scroll"))
    for cell in (table.locator("th").last, table.locator("tbody tr").first.locator("td").last):
        assert box(cell)["right"] <= frame["right"] + 0.5, (box(cell), frame)
    assert table.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth")
    # the result is on screen after the upload (on a phone the app scrolls to it)
    wait_in_view(page, "#diagnose-result")
    assert_compare_loaded(page, "#diagnose-compare", readable_width(viewport))
    # the heatmaps of the top-ranked labels, in the table's order (lazy images: loaded once
    # near the viewport)
    assert page.locator("#diagnose-gallery img").count() == 3
    page.wait_for_function("() => [...document.querySelectorAll('#diagnose-gallery img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    rows = [n.replace("▲", "").strip().splitlines()[0]  # the label, not its "× usual" line
            for n in table.locator("tbody tr td.name").all_inner_texts()]
    thumbs = page.locator("#diagnose-gallery .caption-label").all_inner_texts()
    assert [_caption_label(c) for c in thumbs] == rows[:3]
    # beside the radiograph: the top-ranked label whose map shows something (the picker's
    # captions say which are empty), named in the picker
    wait_picked(page, "%")
    picked = page.locator("#diagnose-pick input").input_value()
    first_drawn = next((c for c in thumbs if "empty map" not in c), None)
    if first_drawn:
        assert picked == first_drawn, (picked, thumbs)
    else:  # the top three maps are empty: a lower label whose map is not, if any
        assert _caption_label(picked) not in rows[:3] or "empty map" in picked, (picked, thumbs)
    assert_file_label_clear(page, "diagnose")
    screenshot(page, output_dir, f"diagnosis-{viewport}-view", full_page=False)
    path = screenshot(page, output_dir, f"diagnosis-{viewport}")
    if UPDATE_DOCS and viewport == "laptop":
        docs_screenshot(path, "diagnosis")

    # the map for any label, beside the radiograph: one that no thumbnail shows and whose
    # map is not empty (an empty map is the plain radiograph, which any two share)
    captions = page.locator("#diagnose-gallery .caption-label").all_inner_texts()
    before = page.locator("#diagnose-compare img").nth(1).get_attribute("src")
    page.locator("#diagnose-pick input").click()
    # (the selected option's text starts with a check mark on a line of its own)
    options = [o.strip().splitlines()[-1] for o in page.get_by_role("option").all_inner_texts()]
    shown = {_caption_label(c) for c in [*captions, picked]}  # not on screen already
    other = next((o for o in options if "empty map" not in o and _caption_label(o) not in shown),
                 None)
    assert other, f"no label outside the gallery has a non-empty map: {options}"
    page.get_by_role("option", name=other).click()
    wait_heatmap_changed(page, "#diagnose-compare", before)
    wait_picked(page, _caption_label(other))
    # a gallery thumbnail (not the one selected at first) shows its label there too
    before = page.locator("#diagnose-compare img").nth(1).get_attribute("src")
    second = page.locator("#diagnose-gallery .caption-label").nth(1).inner_text()
    page.locator("#diagnose-gallery button.thumbnail-item").nth(1).click()
    wait_heatmap_changed(page, "#diagnose-compare", before)
    wait_picked(page, second.strip())
    screenshot(page, output_dir, f"diagnosis-picked-{viewport}")


def _caption_label(caption: str) -> str:
    """The label of a caption such as "▲ Pleural Thickening 7% · empty map"."""
    return caption.split("·")[0].replace("▲", "").strip().rsplit(" ", 1)[0]


def _text_file(path: Path) -> None:
    path.write_text("this is a text file, not an X-ray\n")


def _document_png(path: Path) -> None:
    from PIL import Image

    from tests.hostile import _text_page

    Image.fromarray(_text_page()).save(path)


@pytest.mark.parametrize("tab, prefix, name, write, reason", [
    ("Screening", "screen", "notes.png", _text_file, "not a recognised image file"),  # the reader
    ("Diagnosis", "diagnose", "page.png", _document_png, "looks like a document"),  # the gate
], ids=["unreadable", "not-a-radiograph"])
def test_bad_upload_shows_our_message(page, viewport, output_dir, tmp_path, tab, prefix, name,
                                      write, reason):
    bad = tmp_path / name
    write(bad)
    page.get_by_role("tab", name=tab).click()
    page.locator(f"#{prefix}-file input[type=file]").set_input_files(str(bad))
    toast = page.locator("[data-testid=toast-text]").filter(has_text=reason)
    toast.wait_for()
    assert name in toast.inner_text()
    assert page.get_by_text("Traceback").count() == 0
    page.wait_for_timeout(800)  # the toast slides in
    shot = f"error-{prefix}-{viewport}"
    screenshot(page, output_dir, shot, full_page=False)  # the toast is fixed to the viewport
    # the reason stays beside the upload, on screen, after the toast is gone
    kept = page.locator(f"#{prefix}-error").get_by_text(reason)
    kept.wait_for()
    page.wait_for_timeout(ERROR_KEPT_MS)
    assert kept.is_visible() and name in kept.inner_text()
    wait_in_view(page, f"#{prefix}-error", min_px=20)
    screenshot(page, output_dir, f"{shot}-kept", full_page=False)
    if toast.count():
        page.locator("[data-testid=toast-close]").first.click()
        toast.wait_for(state="detached")
    assert kept.is_visible()


def test_warnings_refusals_and_findings_are_readable_in_light_and_dark(scheme_page, viewport,
                                                                       examples_dir, output_dir,
                                                                       tmp_path):
    """The notice, a refusal, and the diagnosis summary and table reach WCAG AA contrast
    with the system's light or dark setting (the .dark rules once failed to apply: the notice
    was 1.33:1 and refusals 1.98:1 in dark mode)."""
    page, scheme = scheme_page
    assert page.evaluate("document.body.classList.contains('dark')") == (scheme == "dark")
    assert_readable(page, "#notice p")
    bad = tmp_path / "notes.png"
    _text_file(bad)
    page.locator("#screen-file input[type=file]").set_input_files(str(bad))
    page.locator("#screen-error").get_by_text("not a recognised image file").wait_for()
    assert_readable(page, "#screen-error p")
    screenshot(page, output_dir, f"refusal-{scheme}-{viewport}", full_page=False)
    page.get_by_role("tab", name="Diagnosis").click()
    page.locator("#diagnose-file input[type=file]").set_input_files(
        str(examples_dir / "00005610_000.jpg"))
    page.locator("#diagnose-table table").wait_for()
    for selector in ("#diagnose-summary p", "#diagnose-table td", "#diagnose-table th",
                     "#diagnose-table .dx-legend", ".dx-outlook, #diagnose-summary .dx-legend"):
        assert_readable(page, selector)
    wait_in_view(page, "#diagnose-result")
    screenshot(page, output_dir, f"diagnosis-{scheme}-{viewport}", full_page=False)


def test_a_refusal_leaves_a_clean_page(page, viewport, examples_dir, output_dir, tmp_path):
    """After a good result, a refused file leaves no debris: no "Error" badges, no empty
    gallery, no old label in the picker, no "upload an image" beside a loaded file, and one
    pop-up at a time."""
    page.get_by_role("tab", name="Diagnosis").click()
    upload = page.locator("#diagnose-file input[type=file]")
    upload.set_input_files(str(examples_dir / "00005610_000.jpg"))
    page.locator("#diagnose-table table").wait_for()
    wait_picked(page, "%")
    for name in ("page.png", "page2.png"):
        bad = tmp_path / name
        _document_png(bad)
        page.locator("#diagnose-file").get_by_role("button", name="Clear").click()
        upload.set_input_files(str(bad))
        page.locator("#diagnose-error").get_by_text(name).wait_for()
        page.wait_for_timeout(800)
    assert page.locator("[data-testid=toast-body]:visible").count() <= 1
    column = page.locator("#diagnose-result")
    assert column.get_by_text("Error", exact=True).count() == 0
    assert page.locator("#diagnose-gallery").is_hidden()
    assert page.locator("#diagnose-pick input").input_value() == ""
    assert page.locator("#diagnose-table table").count() == 0
    summary = page.locator("#diagnose-summary").inner_text()
    assert "Upload an image" not in summary and "Analysing" not in summary
    screenshot(page, output_dir, f"refusal-clean-{viewport}", full_page=False)


def pdf_text(path: Path) -> str:
    import subprocess

    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_report_download(page, viewport, examples_dir, output_dir, tmp_path):
    """One click on a result gives its PDF report: the label, the disclaimer and the model
    version in it, and nothing of the upload's name."""
    from diachestxr import __version__

    page.locator("#screen-file input[type=file]").set_input_files(
        str(examples_dir / "4fed5061.jpg"))
    heading = page.locator("#screen-label [data-testid=label-output-value]")
    heading.wait_for()
    predicted = heading.inner_text().strip()
    page.locator("#screen-report").click()
    link = page.locator("#screen-report-file a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    pdf = tmp_path / "report.pdf"
    download.value.save_as(pdf)
    text = pdf_text(pdf)
    assert predicted in text and "not for clinical use" in text and __version__ in text
    assert "4fed5061" not in text
    screenshot(page, output_dir, f"report-{viewport}", full_page=False)


def test_batch_tab(page, viewport, examples_dir, output_dir, tmp_path):
    """Several files at once: a row per file, the refused ones with their reason, and the
    table as a CSV."""
    import csv

    text, document = tmp_path / "notes.png", tmp_path / "page.png"
    _text_file(text)
    _document_png(document)
    good = [examples_dir / "4fed5061.jpg", examples_dir / "00005610_000.jpg"]
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-files input[type=file]").set_input_files(
        [str(p) for p in (*good, text, document)])
    page.locator("#batch-run").click()
    page.locator("#batch-summary").get_by_text("2 of 4 files analysed").wait_for()
    table = page.locator("#batch-table").inner_text()
    assert all(p.name in table for p in (*good, text, document))
    assert "not a recognised image file" in table and "looks like a document" in table
    assert any(c in table for c in SCREENING_CLASSES)
    screenshot(page, output_dir, f"batch-{viewport}")
    with page.expect_download() as download:
        page.locator("#batch-csv").click()
    out = tmp_path / "batch.csv"
    download.value.save_as(out)
    with out.open(newline="") as f:
        records = list(csv.DictReader(f))
    assert [r["file"] for r in records] == [p.name for p in (*good, text, document)]
    assert [bool(r["error"]) for r in records] == [False, False, True, True]
    assert all(r["label"] in SCREENING_CLASSES for r in records[:2])
