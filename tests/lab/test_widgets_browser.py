"""The image widgets in a real lab spawned by a real hub, seen through headless Chromium:
the canvas is drawn, hover shows sky coordinates, changing the stretch redraws the image,
clicking a catalog source opens its cutout."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import nbformat
import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from support.hub import RunningHub
from support.images import MiniRepo

pytestmark = [pytest.mark.slow, pytest.mark.browser]

USER = "wanda"

# Canvas pixels of every canvas inside a bokeh view (bokeh draws in shadow DOM, which
# Playwright's CSS selectors pierce); returns a summary the test can compare.
CANVAS_SUMMARY = """
(canvases) => canvases.map((c) => {
  const ctx = c.getContext('2d');
  if (!ctx || c.width === 0 || c.height === 0) return {w: 0, h: 0, distinct: 0, sum: 0, sample: ''};
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  let sum = 0;
  let sample = '';
  for (let i = 0; i < data.length; i += 4) {
    const v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    if (seen.size < 5000) seen.add(v);
    sum = (sum + v * ((i / 4) % 997 + 1)) % 1000000007;
    if (i % 4000 === 0) sample += v.toString(36);
  }
  return {w: c.width, h: c.height, distinct: seen.size, sum: sum, sample: sample};
})
"""


# All text of the page, through the shadow roots bokeh renders into (its tooltip
# is the only place "RA:" appears).
TOOLTIP_TEXT = """
(root) => {
  const out = [];
  const visit = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    if (node.nodeName === 'STYLE' || node.nodeName === 'SCRIPT') return;
    if (node.shadowRoot) visit(node.shadowRoot);
    for (const child of node.childNodes || []) visit(child);
  };
  visit(root);
  return out.join(' ').split(/\\s+/).join(' ');
}
"""


def _notebook(mini: MiniRepo) -> dict[str, Any]:
    ra, dec = mini.stars[-1]
    ra2, dec2 = mini.stars[0]
    cells = [
        "import pandas as pd\n"
        "import skydeck.lab as sl\n"
        "from skydeck.lab.widgets import ImageViewer\n"
        f"cut = sl.get_cutout({ra}, {dec}, size=150, band='r')\n"
        "cra, cdec = (float(v) for v in cut.wcs.all_pix2world(75, 75, 0))\n"
        f"catalog = pd.DataFrame({{'objectId': [101, 202], 'coord_ra': [cra, {ra2}],"
        f" 'coord_dec': [cdec, {dec2}], 'r_mag': [18.5, 21.0]}})\n"
        "viewer = ImageViewer(cut, stretch='asinh', catalog=catalog, width=500)\n"
        "viewer",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "skydeck",
        "display_name": "Skydeck (Python 3.12)",
        "language": "python",
    }
    return {"type": "notebook", "format": "json", "content": nb}


def _canvas_state(viewer: Locator) -> list[dict[str, Any]]:
    canvases = viewer.locator("canvas")
    return list(canvases.evaluate_all(CANVAS_SUMMARY))


def _digest(state: list[dict[str, Any]]) -> str:
    return hashlib.sha1(repr([(s["sum"], s["sample"]) for s in state]).encode()).hexdigest()


def _run_first_cell(page: Page) -> None:
    """Run the first cell; a run sent while the kernel is still connecting is lost, so
    retry until the prompt shows it ran (``[*]`` or ``[1]``)."""
    prompt = page.locator(".jp-Cell .jp-InputPrompt").first
    for _ in range(6):
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():  # "Select Kernel" when the lab's session is still being set up
            dialog.first.click()
        page.locator(".jp-Cell .jp-InputArea-editor").first.click()
        page.keyboard.press("Control+Enter")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(mark in prompt.inner_text() for mark in ("*", "1")):
                return
            time.sleep(0.5)
    raise AssertionError("the notebook cell never ran")


def test_image_viewer_in_a_real_lab(
    images_hub: RunningHub, mini_image_repo: MiniRepo, page: Page
) -> None:
    hub = images_hub
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", USER)
    page.fill("#password_input", hub.create_login(USER))
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{USER}/lab**", timeout=180_000)
    token = hub.user_token(USER)
    response = requests.put(
        f"{hub.url}/user/{USER}/api/contents/widgets.ipynb",
        json=_notebook(mini_image_repo),
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert response.status_code in (200, 201), response.text
    page.goto(f"{hub.url}/user/{USER}/lab/tree/widgets.ipynb")
    expect(
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
    ).to_be_attached(timeout=180_000)
    _run_first_cell(page)

    viewer = page.locator(".skydeck-image-viewer").first
    expect(viewer).to_be_visible(timeout=180_000)
    canvas = viewer.locator("canvas").first
    expect(canvas).to_be_visible(timeout=60_000)

    # The canvas is drawn: many distinct colours, not a blank or uniform rectangle.
    deadline = time.monotonic() + 60
    state = _canvas_state(viewer)
    while time.monotonic() < deadline and max(s["distinct"] for s in state) < 50:
        time.sleep(0.5)
        state = _canvas_state(viewer)
    assert max(s["distinct"] for s in state) >= 50, state
    before = _digest(state)

    # Hover over the image shows RA/Dec from the WCS and the pixel value.
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    page.mouse.move(box["x"] + box["width"] * 0.31, box["y"] + box["height"] * 0.61)
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline and "Dec:" not in text:
        time.sleep(0.5)
        text = page.locator("body").evaluate(TOOLTIP_TEXT)
    assert "RA:" in text and "Dec:" in text and "value:" in text, text
    ra_shown = float(text.split("RA:")[1].split()[0])
    assert abs(ra_shown - mini_image_repo.stars[-1][0]) < 0.01

    # Changing the stretch redraws the image with other pixel values.
    page.mouse.move(box["x"] - 50, box["y"] - 50)
    viewer.locator("select").first.select_option("linear")
    deadline = time.monotonic() + 60
    after = _digest(_canvas_state(viewer))
    while time.monotonic() < deadline and after == before:
        time.sleep(0.5)
        after = _digest(_canvas_state(viewer))
    assert after != before, "the image did not change with the stretch"

    # Clicking the catalog source at pixel (75, 75) opens its cutout below the image:
    # find where that pixel is on screen from the hover read-out at two mouse positions.
    def pixel_at(sx: float, sy: float) -> tuple[float, float]:
        page.mouse.move(sx, sy)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = page.locator("body").evaluate(TOOLTIP_TEXT)
            if "x, y:" in text:
                xs, ys = text.split("x, y:")[1].split()[:2]
                return float(xs.strip(",")), float(ys)
            time.sleep(0.3)
        raise AssertionError("no hover read-out")

    sx1, sy1 = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4
    sx2, sy2 = box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6
    (px1, py1), (px2, py2) = pixel_at(sx1, sy1), pixel_at(sx2, sy2)
    tx = sx1 + (75 - px1) * (sx2 - sx1) / (px2 - px1)
    ty = sy1 + (75 - py1) * (sy2 - sy1) / (py2 - py1)
    page.mouse.click(tx, ty)
    nested = viewer.locator(".skydeck-image-viewer")
    expect(nested.first).to_be_visible(timeout=60_000)
    expect(nested.first.locator("canvas").first).to_be_visible(timeout=60_000)
