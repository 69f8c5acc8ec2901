"""The dashboard in a real browser: `streamlit run app/streamlit_app.py` served headless on 127.0.0.1, Debian's
Chromium driven by Playwright, a budget entered on the Forecast page and the recommendation read back; and the
HTML file of `gaitforecast report` opened from disk, its numbers and figures read back.

Needs the `chromium` apt package and the `playwright` Python package (no Playwright browser download). Without
them the test is skipped, unless GAITFORECAST_REQUIRE_BROWSER=1 (CI), where it fails instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dashboard_stores as ds

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "app" / "streamlit_app.py"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BUDGET = "5.88e23"  # Chinchilla's training budget


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _missing(reason: str) -> None:
    if os.environ.get("GAITFORECAST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test required (GAITFORECAST_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture
def served(tmp_path):
    """The dashboard on the Chinchilla store, served headless on a free port; yields the base URL."""
    store = tmp_path / "store.duckdb"
    ds.chinchilla_store(store)
    port = ds.free_port()
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", GAITFORECAST_STORE="",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    cmd = [sys.executable, "-m", "streamlit", "run", str(LAUNCHER), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--", "--store", str(store)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ds.wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_SI = {"k": 1e3, "M": 1e6, "G": 1e9}


def _number(text: str) -> float:
    m = re.fullmatch(r"([-+0-9.e]+)([kMG]?)", text.strip())
    assert m, f"not a dashboard number: {text!r}"
    return float(m.group(1)) * _SI.get(m.group(2), 1.0)


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium binary, after checking Playwright is importable (skip or fail before serving the app)."""
    path = _chromium()
    if path is None:
        _missing("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright Python package is not installed (pip install playwright)")
    return path


@pytest.mark.browser
def test_forecast_in_real_browser(chromium, served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shot = tmp_path / "forecast.png"
    artifacts = os.environ.get("GAITFORECAST_ARTIFACTS")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        try:
            page.goto(f"{served}/forecast", wait_until="domcontentloaded")
            # a fresh server fits on the first visit: the live bar follows the bootstrap's resamples
            bar = page.locator('[data-testid="stProgress"]')
            counted = re.compile(r"bootstrapping [\w-]+ on 240 runs: [\d,]+ of 1,000 resamples")
            expect(bar.first).to_contain_text(counted, timeout=60_000)
            page.get_by_role("heading", name="Forecast").wait_for(timeout=30_000)
            budget = page.get_by_label("Compute budget (FLOPs)", exact=True)
            budget.wait_for(timeout=30_000)
            budget.fill(BUDGET)
            budget.press("Enter")
            # The table echoes the budget once the rerun with the new value has rendered.
            page.locator("table").get_by_text("5.88e+23").wait_for(timeout=30_000)
            page.locator(".vega-embed").first.wait_for(timeout=30_000)
            expect(bar).to_have_count(0, timeout=60_000)  # cleared once the page is done
            labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
            values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
            shown = dict(zip((x.strip() for x in labels), (v.strip() for v in values)))
        finally:  # a screenshot either way: on failure it shows what the page said
            page.screenshot(path=str(shot), full_page=True)
            if artifacts:
                Path(artifacts).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(artifacts) / "dashboard-forecast.png")
            browser.close()

    assert shot.stat().st_size > 20_000
    n_opt = _number(shown["Recommended parameters"])
    d_opt = _number(shown["Recommended samples"])
    assert 4e10 < n_opt < 1.5e11, shown  # ~70B parameters at Chinchilla's budget (Epoch's fit)
    assert 10 < d_opt / n_opt < 30, shown  # ~20 tokens per parameter
    assert 1.9 < float(shown["Predicted loss"]) < 2.1, shown


@pytest.mark.browser
def test_report_renders_offline_in_real_browser(chromium, tmp_path):
    """`gaitforecast report` on the Chinchilla store, opened from disk: the fitted law, the forecast and every
    figure render, and the page asks for nothing outside the file."""
    from playwright.sync_api import sync_playwright
    from test_cli_runs import gaitforecast

    store, report = tmp_path / "store.duckdb", tmp_path / "report.html"
    ds.chinchilla_store(store)
    res = gaitforecast("report", "--store", str(store), "--metric", "loss", "--budget", BUDGET, "--resamples", "100",
                       "--out", str(report), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    facts = json.loads(res.stdout)
    alpha, predicted = facts["params"]["alpha"], facts["forecast"]["predicted"]
    assert 0.33 < alpha < 0.36 and 1.9 < predicted < 2.1  # Epoch's alpha 0.347; ~1.97 at Chinchilla's budget
    shot = tmp_path / "report.png"
    requested: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.on("request", lambda request: requested.append(request.url))
        try:
            page.goto(report.as_uri(), wait_until="load")
            cell = page.locator('[data-key="param-alpha"] td').nth(1).inner_text()
            forecast_cell = page.locator('#forecast [data-key="predicted"] td').nth(1).inner_text()
            n_opt_cell = page.locator('#forecast [data-key="params_opt"] td').nth(1).inner_text()
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, "
                                   "i.naturalHeight])")
            compare = page.locator("#compare").inner_text()
            title = page.title()
        finally:
            page.screenshot(path=str(shot), full_page=True)
            artifacts = os.environ.get("GAITFORECAST_ARTIFACTS")
            if artifacts:
                Path(artifacts).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(artifacts) / "report.png")
            browser.close()

    assert cell == f"{alpha:.4g}" and forecast_cell == f"{predicted:.4g}"
    assert 4e10 < float(n_opt_cell) < 1.5e11  # ~70B parameters at Chinchilla's budget
    assert len(images) == 5 and all(ok and w > 300 and h > 200 for ok, w, h in images), images  # 5 figures drawn
    assert "Not available: compare needs runs of at least two architectures" in compare
    assert title == "Scaling-law report: loss (imported)"
    assert requested == [report.as_uri()], requested  # self-contained: figures are data URIs, nothing fetched
