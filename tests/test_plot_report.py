"""`gaitforecast plot` and `gaitforecast report`: figure files with the fitted values in their spec, the same
charts and numbers as the dashboard and the law commands, and output paths refused as `export` refuses them.
The report in a real browser is in test_browser.py."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from test_cli_runs import gaitforecast
from test_dashboard import chin, own, page  # noqa: F401  (chin, own: the fixture stores, one per module)

from gaitforecast import forecast

LOSS = ("--metric", "loss")
FAST = ("--resamples", "100")


def run_ok(*args: str, cwd: Path):
    res = gaitforecast(*args, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return res


def refused(*args: str, cwd: Path) -> str:
    """The one-line reason of a command that must exit 2 without a traceback."""
    res = gaitforecast(*args, cwd=cwd)
    err = " ".join(res.stderr.split())
    assert res.returncode == 2, err
    assert "Traceback" not in res.stderr and err.startswith("error:"), err
    return err


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def datasets(spec: dict) -> list[pd.DataFrame]:
    return [pd.DataFrame(rows) for rows in spec.get("datasets", {}).values()]


# ---------------------------------------------------------------- figure files
@pytest.fixture(scope="module")
def chin_fit(chin):
    """The use case's fit of the Chinchilla store as the commands below make it (loss, 100 resamples)."""
    return forecast.fit(forecast.read_runs(chin), forecast.Request(metric="loss", resamples=100))


def test_plot_spec_holds_the_fitted_law_its_caption_and_band(chin, chin_fit, tmp_path):
    res = run_ok("plot", "scaling", "--store", str(chin), *LOSS, *FAST, "--out", str(tmp_path / "fig.json"),
                 "--json", cwd=tmp_path)
    out = json.loads(res.stdout)
    spec = json.loads((tmp_path / "fig.json").read_text())
    meta = spec["usermeta"]["gaitforecast"]
    fit = forecast.fit_summary(chin_fit)  # what `fit --json` prints for the same options
    assert meta["params"] == fit["params"] and meta["ci"] == fit["ci"]  # to the last digit
    assert (meta["law"], meta["n_runs"], meta["level"], meta["n_resamples"]) == ("chinchilla", 240, 0.95, 100)
    assert out["params"] == fit["params"] and out["bytes"] == (tmp_path / "fig.json").stat().st_size
    alpha, (lo, hi) = fit["params"]["alpha"], fit["ci"]["alpha"]
    assert 0.33 < alpha < 0.36  # Epoch's 0.347 on these 240 runs
    caption = " ".join(spec["title"]["text"])
    assert f"alpha {alpha:.3g} [{lo:.3g}, {hi:.3g}]" in caption and caption == out["caption"]
    assert "240 imported runs" in caption and "95 % bootstrap intervals (100 run-level resamples)" in caption
    assert spec["title"]["orient"] == "bottom" and spec["width"] == 520
    # the drawn law: the compute-optimal frontier's predicted loss at a budget is what `predict --budget` says
    curve = next(d for d in datasets(spec) if {"flops", "pred", "lo", "hi"} <= set(d.columns))
    assert len(curve) == 16 and (curve["lo"] <= curve["pred"]).all() and (curve["pred"] <= curve["hi"]).all()
    row = curve.iloc[10]
    predict = forecast.forecast_budget(chin_fit, float(row["flops"]))
    assert row["pred"] == pytest.approx(predict["predicted"], rel=1e-9)
    assert [row["lo"], row["hi"]] == pytest.approx(predict["predicted_ci"], rel=1e-9)


def test_plot_writes_png_svg_pdf(chin, chin_fit, tmp_path):
    from gaitforecast.reporting import figures, render

    chart = figures.scaling(chin_fit).chart(width=400)
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<svg"), ("pdf", b"%PDF")):
        data = render.render(chart, fmt, scale=1)
        assert data.startswith(magic) and len(data) > 10_000, (fmt, len(data))
    width, height = png_size(render.render(chart, "png", scale=1))
    assert 400 < width < 700 and 320 < height < 700  # plot area + axes, legend and caption
    path = tmp_path / "fig.png"
    path.write_text("an older figure")
    run_ok("plot", "scaling", "--store", str(chin), *LOSS, *FAST, "--out", str(path), "--width", "400",
           "--ppi", "144", "--no-caption", cwd=tmp_path)
    width, height = png_size(path.read_bytes())  # replaced: 2x the pixels at 144 ppi, no caption under it
    assert 800 < width < 1400 and 640 < height < 2 * 420
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]  # no temporary file left beside it


def test_scaling_figure_is_the_dashboard_chart(chin, chin_fit, monkeypatch):
    """The file and the Scaling laws page draw the same layers from the same data (same fit, same seed)."""
    from gaitforecast.reporting import figures

    mine = figures.scaling(chin_fit).chart().to_dict()
    chart = page(chin, "scaling", monkeypatch, n_boot=100).get("vega_lite_chart")[0]  # the "vs compute" tab
    shown = json.loads(chart.proto.spec)

    def layers(spec):
        return [(layer["mark"]["type"], layer["encoding"]["x"]["field"], layer["encoding"]["y"]["field"])
                for layer in spec["layer"]]

    assert layers(mine) == layers(shown) == [("area", "flops", "lo"), ("line", "flops", "pred"),
                                             ("circle", "flops", "y")]
    shown_data = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]
    cols = ["flops", "pred", "lo", "hi"]
    mine_curve, shown_curve = (next(d for d in frames if set(cols) <= set(d.columns))[cols]
                               for frames in (datasets(mine), shown_data))
    pd.testing.assert_frame_equal(mine_curve, shown_curve)


def test_every_figure_on_own_runs(own, tmp_path):
    """Each kind of figure from the use case's results, on a store of two architectures; the forecast figure's
    numbers are `predict --budget`'s."""
    from gaitforecast.reporting import figures, render

    runs, request = forecast.read_runs(own), forecast.Request(resamples=100)
    fitted = forecast.fit(runs, request)
    front = figures.frontier(fitted)
    assert front.meta["arch"] == "gaitpt" and front.meta["on_frontier"] >= 4 and "95 %" in front.caption
    n_opt = [row["params_opt"] for row in figures.optimal(fitted).meta["allocation"]]
    assert n_opt == sorted(n_opt) and n_opt[-1] > 10 * n_opt[0]  # N_opt grows with compute
    assert figures.scaling(fitted, "params").meta["held"].startswith("with samples held at")
    backtest = figures.build("backtest", runs, request)
    assert backtest.meta["n_fit"] + backtest.meta["n_test"] == 24 and 0.0 <= backtest.meta["coverage"] <= 1.0
    compare = figures.build("compare", runs, forecast.Request(resamples=30))  # four fits: keep them small
    meta = compare.meta
    assert meta["archs"] == ["gaitpt", "gaitformer"] and meta["n_runs"] == {"gaitpt": 24, "gaitformer": 12}
    assert len(meta["rows"]) == 8 and len(compare.panels) == 2  # the laws with their runs, then the difference
    svg = render.render(compare.chart(), "svg")
    assert svg.startswith(b"<svg") and svg.count(b"<path") > 10

    path = tmp_path / "forecast.svg"
    out = json.loads(run_ok("plot", "forecast", "--budget", "1e15", "--out", str(path), "--store", str(own), *FAST,
                            "--json", cwd=tmp_path).stdout)
    assert path.read_bytes().startswith(b"<svg") and out["bytes"] == path.stat().st_size > 5_000
    predict = forecast.forecast_budget(fitted, 1e15)  # `predict --budget 1e15 --resamples 100 --json`
    for key in ("predicted", "predicted_ci", "params_opt", "samples_opt"):
        assert out["forecast"][key] == predict[key]


def test_plot_refuses_bad_requests_and_paths_as_export_does(own, tmp_path):
    store = ("--store", str(own), *FAST)
    assert "cannot tell the figure format" in refused("plot", "scaling", "--out", str(tmp_path / "f.gif"), *store,
                                                       cwd=tmp_path)
    assert "unknown figure 'histogram'" in refused("plot", "histogram", "--out", str(tmp_path / "f.png"), *store,
                                                   cwd=tmp_path)
    assert "needs --budget" in refused("plot", "forecast", "--out", str(tmp_path / "f.png"), *store, cwd=tmp_path)
    assert "does not split compute" in refused("plot", "optimal", "--law", "power-compute", "--out",
                                               str(tmp_path / "f.png"), *store, cwd=tmp_path)
    assert "a report is one HTML file" in refused("report", "--out", str(tmp_path / "r.pdf"), *store, cwd=tmp_path)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # writing would block forever on a FIFO: refused before any work, untouched
    assert "it is a FIFO, not a regular file" in refused("plot", "scaling", "--out", str(fifo), *store, cwd=tmp_path)
    folder = tmp_path / "folder.svg"
    folder.mkdir()
    assert "it is a directory" in refused("plot", "frontier", "--out", str(folder), *store, cwd=tmp_path)
    html_folder = tmp_path / "report.html"
    html_folder.mkdir()
    assert "it is a directory" in refused("report", "--out", str(html_folder), *store, cwd=tmp_path)
    assert fifo.exists() and folder.is_dir() and list(folder.iterdir()) == list(html_folder.iterdir()) == []


def test_write_file_replaces_a_link_target_atomically(tmp_path):
    from gaitforecast.outfile import write_file

    target = tmp_path / "real.svg"
    target.write_text("old")
    link = tmp_path / "link.svg"
    link.symlink_to(target)
    assert write_file(link, b"<svg/>") == 6
    assert link.is_symlink() and target.read_bytes() == b"<svg/>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.svg", "real.svg"]


# ---------------------------------------------------------------- the report
def test_report_escapes_the_users_text(tmp_path):
    """Architecture and metric names are the user's text: markup in them is shown, never interpreted."""
    from gaitforecast.store import RunStore
    from gaitforecast.store.exchange import prepare_import

    rows = []
    for params in (1e6, 2e6, 4e6, 8e6):
        for samples in (1e8, 3e8, 1e9):
            rows.append({"params": params, "samples": samples, "arch": "<script>alert(1)</script>",
                         "loss <b>x</b>": 1.7 + 400 / params ** 0.34 + 300 / samples ** 0.28})
    store = tmp_path / "s.duckdb"
    plan = prepare_import(pd.DataFrame(rows), "t.csv", metrics=["loss <b>x</b>"], kinds={"loss <b>x</b>": "loss"})
    RunStore(store).write_import(plan)
    out = json.loads(run_ok("report", "--store", str(store), "--resamples", "50", "--out", str(tmp_path / "r.html"),
                            "--json", cwd=tmp_path).stdout)
    text = (tmp_path / "r.html").read_text()
    assert "<script" not in text and "<b>x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "loss &lt;b&gt;x&lt;/b&gt;" in text
    assert out["metric"] == "loss <b>x</b>" and out["n_runs"] == 12
    assert out["sections"]["compare"].startswith("compare needs runs of at least two architectures")
