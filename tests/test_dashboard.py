"""Dashboard pages under Streamlit's AppTest on fixture stores: content (numbers shown) and chart specs.

Stores are built through the store API (tests/dashboard_stores.py): the Chinchilla table imported (240 runs,
loss) and a synthetic sweep of own runs (GaitPT + GaitFormer, metric: the main metric, known law).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import dashboard_stores as ds
from gaitforecast.dashboard import ENTRY_SCRIPT
from gaitforecast.dashboard.data import DEFAULT_STORE, resolve_store_path
from gaitforecast.store import RunStore

REPO = Path(__file__).resolve().parents[1]
PAGES = ("runs", "scaling", "optimal", "forecast", "architectures", "backtest", "mup")


@pytest.fixture(scope="module")
def chin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("chin") / "store.duckdb"
    ds.chinchilla_store(path)
    return path


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("own") / "store.duckdb"
    ds.own_store(path)
    return path


def page(store: Path, name: str | None = None, monkeypatch=None, **state) -> AppTest:
    """Run the app on ``store``, switch to page ``name``; fail on any exception shown by the app."""
    monkeypatch.setenv("GAITFORECAST_STORE", str(store))
    at = AppTest.from_file(str(ENTRY_SCRIPT), default_timeout=90)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if name:
        at.switch_page(f"views/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def layer_encodings(spec: dict) -> list[dict]:
    return [layer["encoding"] for layer in spec.get("layer", [spec])]


_SI = {"k": 1e3, "M": 1e6, "G": 1e9}


def number(text: str) -> float:
    """Parse the dashboard's short number form ('27M', '1.72e+12', '0.812') back to a float."""
    m = re.fullmatch(r"([-+0-9.e]+)([kMG]?)", text.strip())
    assert m, text
    return float(m.group(1)) * _SI.get(m.group(2), 1.0)


# ---------------------------------------------------------------- store problems: say what to run
@pytest.mark.parametrize("name", PAGES)
def test_missing_store_says_what_to_run_and_creates_nothing(tmp_path, monkeypatch, name):
    store = tmp_path / "nothing.duckdb"
    at = page(store, name, monkeypatch)
    text = " ".join(e.value for e in at.info)
    assert "No run store" in text and "gaitforecast run-small" in text
    assert any("run-small" in c.value for c in at.code)
    assert not store.exists()


def test_empty_store_and_foreign_file(tmp_path, monkeypatch):
    empty = tmp_path / "empty.duckdb"
    with RunStore(empty).writer():
        pass  # creates the schema, no runs
    at = page(empty, "forecast", monkeypatch)
    assert "has no runs yet" in at.info[0].value and "gaitforecast run-small" in at.info[0].value

    foreign = tmp_path / "notes.duckdb"
    foreign.write_text("not a database")
    at = page(foreign, "scaling", monkeypatch)
    assert "not a gaitforecast run store" in at.error[0].value
    assert foreign.read_text() == "not a database"


def test_store_path_precedence():
    assert resolve_store_path(["--store", "a.duckdb"], {"GAITFORECAST_STORE": "b.duckdb"}) == Path("a.duckdb")
    assert resolve_store_path(["-q", "--strict-markers"], {"GAITFORECAST_STORE": "b.duckdb"}) == Path("b.duckdb")
    assert resolve_store_path([], {}) == DEFAULT_STORE


# ---------------------------------------------------------------- Runs
def test_runs_page_filters_curves_and_detail(own, monkeypatch):
    n_done = ds.n_own_done()
    at = page(own, "runs", monkeypatch)
    assert metrics(at)["Runs shown"] == str(n_done + 2)
    assert at.dataframe[0].value.shape[0] == n_done + 2
    assert ds.METRIC in at.dataframe[0].value.columns
    curve = specs(at)[0]
    assert curve["mark"]["type"] == "line"
    assert curve["encoding"]["x"]["scale"]["type"] == "log"
    assert curve["encoding"]["x"]["field"] == "samples_seen"
    assert curve["encoding"]["color"]["field"] == "label"  # "gaitpt w16 · 3fa2c1", not a bare hex id
    from gaitforecast.dashboard.charts import run_label

    assert run_label("59bd52f0e72616b6", "gaitformer", 64.0) == "gaitformer w64 · 59bd52"
    assert run_label("59bd52f0e72616b6", None, float("nan")) == "59bd52"

    at.multiselect(key="runs_status").set_value(["done"]).run()
    assert at.dataframe[0].value.shape[0] == n_done
    at.multiselect(key="runs_arch").set_value(["gaitformer"]).run()
    table = at.dataframe[0].value
    assert len(table) == 12 and set(table["arch"]) == {"gaitformer"}
    rid = at.selectbox(key="run_detail").value
    fields = at.dataframe[1].value
    assert fields.set_index("field").loc["id", "value"] == rid
    assert ds.METRIC in set(at.dataframe[2].value["metric"])


def test_runs_page_imported_table(chin, monkeypatch):
    at = page(chin, "runs", monkeypatch)
    assert at.dataframe[0].value.shape[0] == ds.CHINCHILLA_RUNS
    assert "imported runs carry only final values" in at.info[0].value
    assert at.sidebar.selectbox[0].value == "loss"
    assert "(imported)" in " ".join(c.value for c in at.sidebar.caption)


# ---------------------------------------------------------------- Scaling laws
def test_scaling_page_chinchilla_matches_epoch(chin, monkeypatch):
    at = page(chin, "scaling", monkeypatch)
    params = at.dataframe[0].value.set_index("parameter")
    assert params.loc["alpha", "value"] == pytest.approx(0.347, abs=0.004)
    assert params.loc["beta", "value"] == pytest.approx(0.367, abs=0.004)
    assert params.loc["E", "value"] == pytest.approx(1.817, abs=0.01)
    assert (params["ci_lo"] <= params["value"]).all() and (params["value"] <= params["ci_hi"]).all()
    assert metrics(at)["Runs fitted"] == str(ds.CHINCHILLA_RUNS)

    charts = specs(at)
    assert len(charts) == 4  # vs compute, vs params, vs data, residuals
    for spec, axis in zip(charts[:3], ("flops", "params", "samples")):
        marks = [layer["mark"]["type"] for layer in spec["layer"]]
        assert marks == ["area", "line", "circle"]  # bootstrap band, law, runs
        for enc in layer_encodings(spec):
            assert enc["x"]["field"] == axis and enc["x"]["scale"]["type"] == "log"
            assert enc["y"]["scale"]["type"] == "log"
        assert spec["layer"][0]["encoding"]["y2"]["field"] == "hi"
        assert any(t["field"] == "id" for t in spec["layer"][2]["encoding"]["tooltip"])
    resid = charts[3]["layer"][1]["encoding"]
    assert resid["y"]["field"] == "resid" and resid["x"]["scale"]["type"] == "log"


def test_scaling_page_own_runs_recovers_known_law(own, monkeypatch):
    at = page(own, "scaling", monkeypatch)
    assert metrics(at)["Runs fitted"] == "24"  # GaitPT only: laws are per architecture
    params = at.dataframe[0].value.set_index("parameter")
    truth = ds.TRUE_LAW["gaitpt"]
    for name in ("alpha", "beta"):
        assert abs(params.loc[name, "value"] - truth[name]) < 0.06
    assert params.loc["E", "value"] == pytest.approx(truth["E"], abs=0.03)
    y = specs(at)[0]["layer"][0]["encoding"]["y"]
    assert y["title"] == f"−ln {ds.METRIC}" and y["scale"]["type"] == "log"

    at.sidebar.selectbox(key="law").set_value("power-compute").run()
    assert not at.exception
    charts = specs(at)
    assert [layer["mark"]["type"] for layer in charts[0]["layer"]] == ["area", "line", "circle"]
    assert "not a function of params" in " ".join(c.value for c in at.caption)


# ---------------------------------------------------------------- Compute-optimal
def test_optimal_page_chinchilla(chin, monkeypatch):
    at = page(chin, "optimal", monkeypatch)
    shown = metrics(at)
    iso_a = float(shown["N_opt ∝ C^a (IsoFLOP)"].split("=")[1])
    fit_a = float(shown["N_opt ∝ C^a"].split("=")[1])
    assert 0.45 < iso_a < 0.56 and fit_a == pytest.approx(0.513, abs=0.01)  # Epoch: N_opt ∝ C^0.513
    assert float(shown["D_opt ∝ C^b"].split("=")[1]) == pytest.approx(1 - fit_a, abs=0.01)
    assert len(at.dataframe[1].value) == 16
    iso_chart, frontier, alloc = specs(at)
    assert iso_chart["layer"][0]["encoding"]["x"]["field"] == "params"
    assert iso_chart["layer"][2]["mark"]["type"] == "point"  # minima per budget
    assert [layer["mark"]["type"] for layer in frontier["layer"]] == ["area", "line", "circle", "line"]
    assert frontier["layer"][3]["mark"]["interpolate"] == "step-after"
    marks = [layer["mark"]["type"] for layer in alloc["layer"]]
    assert marks == ["area", "line", "circle"]
    for enc in layer_encodings(alloc):
        assert enc["x"]["scale"]["type"] == "log" and enc["y"]["scale"]["type"] == "log"


def test_optimal_page_law_without_split(own, monkeypatch):
    at = page(own, "optimal", monkeypatch, law="power-compute")
    assert "does not split compute" in at.info[-1].value
    assert "IsoFLOP groups with a minimum" in metrics(at)  # the IsoFLOP part still applies
    assert metrics(at)["IsoFLOP groups with a minimum"] == "4 of 4"


# ---------------------------------------------------------------- Forecast
def test_forecast_page_chinchilla_budget(chin, monkeypatch):
    at = page(chin, "forecast", monkeypatch)
    at.text_input(key="budget").set_value("5.88e23").run()
    shown = metrics(at)
    n_opt = number(shown["Recommended parameters"])
    d_opt = number(shown["Recommended samples"])
    assert 4e10 < n_opt < 1.5e11  # Epoch's fit: ~70B parameters at Chinchilla's budget
    assert 10 < d_opt / n_opt < 30  # ~18-20 tokens per parameter
    assert n_opt * d_opt * 6 == pytest.approx(5.88e23, rel=0.02)
    assert 1.9 < float(shown["Predicted loss"]) < 2.1
    table = at.table[0].value
    assert "parameters N_opt" in table.index
    low, high = float(table.loc["parameters N_opt", "95% low"]), float(table.loc["parameters N_opt", "95% high"])
    assert low < n_opt < high
    downloads = at.get("download_button")
    assert len(downloads) == 2
    chart = specs(at)[0]
    assert [layer["mark"]["type"] for layer in chart["layer"]] == ["area", "line", "circle", "rule", "point"]
    assert chart["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"

    at.text_input(key="budget").set_value("lots").run()
    assert "not a number" in at.error[0].value


def test_forecast_page_own_runs(own, monkeypatch):
    at = page(own, "forecast", monkeypatch, budget="1e15")
    shown = metrics(at)
    n_opt = number(shown["Recommended parameters"])
    assert 4.5e6 < n_opt < 1e9  # beyond the largest GaitPT run, since the budget is 10x the largest
    predicted = float(shown[f"Predicted {ds.METRIC}"])
    truth = float(np.exp(-ds.true_error("gaitpt", n_opt, number(shown["Recommended samples"]))))
    assert predicted == pytest.approx(truth, abs=0.03)


# ---------------------------------------------------------------- Architectures
def test_architectures_page(own, chin, monkeypatch):
    at = page(own, "architectures", monkeypatch)
    rows = at.dataframe[0].value
    assert len(rows) == 8 and (rows["diff"] < 0).all()  # GaitFormer's law is worse at every budget
    assert "gaitpt" in at.success[0].value
    per_arch, diff, exponents = specs(at)
    colors = {enc["color"]["field"] for enc in layer_encodings(per_arch)}
    assert colors == {"arch"} and len(per_arch["layer"]) == 3
    assert diff["layer"][1]["encoding"]["y2"]["field"] == "diff_hi"
    assert diff["layer"][1]["encoding"]["x"]["scale"]["type"] == "log"
    # both families follow one law with alpha 0.30 and beta 0.35: the exponents' intervals hold them, and the
    # interval of the beta difference holds zero (`compare`'s numbers, through the forecast use case)
    table = at.dataframe[1].value
    assert len(table) == 4 and set(table["arch"]) == {"gaitpt", "gaitformer"}
    assert dict(zip(table["arch"], table["runs"])) == {"gaitpt": 24, "gaitformer": 12}
    for row in table.to_dict(orient="records"):
        lo, hi = row["95% low"], row["95% high"]
        assert lo < ds.TRUE_LAW[row["arch"]][row["exponent"]] < hi and lo < row["value"] < hi
    assert at.info[0].value.startswith("neither family scales better with data with 95 % confidence")
    difference = metrics(at)["β(gaitpt) − β(gaitformer), 95% interval"]
    value, lo, hi = map(float, re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", difference).groups())
    assert lo < 0 < hi and lo < value < hi
    assert [enc["yOffset"]["field"] for enc in layer_encodings(exponents)] == ["arch", "arch"]
    assert exponents["layer"][0]["encoding"]["x2"]["field"] == "hi"

    at = page(chin, "architectures", monkeypatch)
    assert "only one" in at.info[0].value and not specs(at)


def test_architectures_page_falls_back_when_one_family_cannot_carry_chinchilla(tmp_path, monkeypatch):
    """GaitPT's runs of the default profile (rank-1 does not grow with width): the page compares both families with
    power-compute, says why there are no exponents, and shows no error (it used to stop on the bootstrap's)."""
    import numpy as np
    import pandas as pd

    from gaitforecast.laws.synthetic import synthetic_runs
    from gaitforecast.store import RunStore
    from test_laws_comparison import WIDTH_DOES_NOT_PAY

    metric = "synth-casiab.rank1_mean"
    pt = pd.DataFrame([dict(arch="gaitpt", params=n, samples=d, flops=c, seed=s, **{metric: m})
                       for n, d, c, s, m in WIDTH_DOES_NOT_PAY])
    gf = synthetic_runs("chinchilla", {"E": 0.05, "A": 30.0, "B": 60.0, "alpha": 0.3, "beta": 0.35}, n_configs=20,
                        noise=0.01, seed=4, arch="gaitformer")
    gf = gf.assign(**{metric: np.exp(-gf["loss"])}).drop(columns=["loss", "id"], errors="ignore")
    store = tmp_path / "store.duckdb"
    RunStore(store).import_runs(pd.concat([gf, pt], ignore_index=True), "two.csv")
    at = page(store, "architectures", monkeypatch)
    assert not at.error, [e.value for e in at.error]
    notes = [m.value for m in at.info]
    assert any("could not be bootstrapped on gaitpt" in n and "power-compute" in n for n in notes), notes
    assert any("compared with `power-compute`" in c.value for c in at.caption)
    assert len(at.dataframe[0].value) == 8


# ---------------------------------------------------------------- Backtest
def test_backtest_page(chin, monkeypatch):
    at = page(chin, "backtest", monkeypatch)
    shown = metrics(at)
    assert int(shown["Runs fitted"]) + int(shown["Runs predicted"]) == ds.CHINCHILLA_RUNS
    assert float(shown["Median |rel. error|"].rstrip("%")) < 5.0
    assert len(at.dataframe[0].value) == int(shown["Runs predicted"])
    chart = specs(at)[0]
    assert [layer["mark"]["type"] for layer in chart["layer"]] == ["line", "rule", "circle"]
    dots = chart["layer"][2]["encoding"]
    assert dots["x"]["field"] == "actual" and dots["y"]["field"] == "predicted"
    assert dots["x"]["scale"]["type"] == "log" and dots["y"]["scale"]["type"] == "log"
    assert chart["layer"][1]["encoding"]["y2"]["field"] == "hi"

    slider = at.select_slider(key="cutoff")
    slider.set_value(slider.options[-5] if isinstance(slider.options[-5], float) else float(slider.options[-5])).run()
    assert not at.exception
    assert int(metrics(at)["Runs predicted"]) < int(shown["Runs predicted"])


# ---------------------------------------------------------------- muP
def test_mup_page(own, chin, monkeypatch):
    at = page(own, "mup", monkeypatch)
    shown = metrics(at)
    assert float(shown["mup: max |slope| vs width"]) < 0.05
    assert float(shown["sp: max |slope| vs width"]) == pytest.approx(0.5, abs=0.05)
    assert len(at.dataframe[0].value) == len(ds.mup_payload()["rows"])
    spec = specs(at)[0]
    assert spec["facet"]["column"]["field"] == "parametrization"
    assert spec["spec"]["encoding"]["x"]["scale"]["type"] == "log"

    at = page(chin, "mup", monkeypatch)
    assert "No coordinate check" in at.info[0].value
    assert f"gaitforecast mup-check --store {chin}" in at.code[0].value


# ---------------------------------------------------------------- caching and the store lock
def test_fit_cached_by_store_content_and_lock_not_held(tmp_path, monkeypatch):
    from gaitforecast import laws
    from gaitforecast.laws import LawFitter

    calls = []

    class CountingFitter(LawFitter):
        def fit(self, runs, metric=None):
            calls.append(len(runs.y) if hasattr(runs, "y") else len(runs))
            return super().fit(runs, metric)

    monkeypatch.setattr(laws, "LawFitter", CountingFitter)  # what the forecast use case calls
    store_path = tmp_path / "store.duckdb"
    store = ds.chinchilla_store(store_path)
    at = page(store_path, "scaling", monkeypatch)
    assert calls == [ds.CHINCHILLA_RUNS]
    at.select_slider(key="hold_samples").set_value(at.select_slider(key="hold_samples").options[0]).run()
    at.switch_page("views/forecast.py").run()
    assert calls == [ds.CHINCHILLA_RUNS]  # widget change and page change re-use the fit

    # The app holds neither the writer lock nor the file: a writer gets in at once, and while a writer holds the
    # lock the app still reads.
    with store.writer(timeout=1.0) as w:
        w.set_status(store.runs()["id"].iloc[0], "failed")
        at.switch_page("views/scaling.py").run()
        assert not at.exception
    assert calls == [ds.CHINCHILLA_RUNS, ds.CHINCHILLA_RUNS - 1]  # the store changed: refitted once


# ---------------------------------------------------------------- live progress while the engine runs
def test_live_progress_reports_resamples_and_an_eta_on_a_cache_miss_then_clears(tmp_path, monkeypatch):
    from gaitforecast.dashboard import live

    received, drawn = [], []
    real_receive, real_draw = live.LiveProgress.receive, live.draw
    monkeypatch.setattr(live.LiveProgress, "receive", lambda self, now: (received.append(now), real_receive(self, now)))
    monkeypatch.setattr(live, "draw", lambda slot, now: (drawn.append(now), real_draw(slot, now)))
    monkeypatch.setattr(live, "EVERY_S", 0.0)  # every count, so what arrives does not depend on the machine's pace
    store_path = tmp_path / "store.duckdb"  # a store no test has fitted: the fit is a cache miss
    ds.chinchilla_store(store_path)
    at = page(store_path, "scaling", monkeypatch, n_boot=100)
    boots = [p for p in received if p.stages[0].message == "bootstrapping chinchilla on 240 runs"]
    counts = [p.current.done for p in boots]
    assert counts[0] == 0 and counts[-1] == boots[-1].current.total == 100 and counts == sorted(counts)
    midway = [p for p in boots if 0 < p.current.done < 100]
    assert midway and all(p.eta_s is not None and p.describe().endswith(" s left") for p in midway)
    assert drawn and drawn[-1] is received[-1]  # the display thread drew onto the page, the last report included
    assert not at.get("progress")  # and cleared the bar when the page was done

    received.clear(), drawn.clear()
    at.run()  # a cache hit runs no engine code: nothing to report, nothing drawn
    assert received == [] and drawn == [] and not at.get("progress")


def test_live_progress_bar_shows_the_stage_count_and_eta():
    def app():
        import streamlit as st

        from gaitforecast.dashboard import live
        from gaitforecast.laws.progress import Progress, Stage

        stages = (Stage("calibrating chinchilla for extrapolation", 2, 6, "rollouts", 8.0),
                  Stage("bootstrapping chinchilla on 101 runs", 50, 100, "resamples", 1.0))
        live.draw(st.empty(), Progress(stages))

    bar = AppTest.from_function(app).run().get("progress")[0]
    assert bar.value == 41  # (2 + 50/100) of 6 rollouts
    assert bar.text == ("calibrating chinchilla for extrapolation: 2 of 6 rollouts > bootstrapping chinchilla on "
                        "101 runs: 50 of 100 resamples, about 11 s left")  # 8 s for 2.5 of 6: 11.2 s to go


# ---------------------------------------------------------------- `gaitforecast dashboard`
def _cli(*args: str, **kwargs) -> subprocess.Popen:
    code = "import sys; from gaitforecast.cli import main; sys.argv[0] = 'gaitforecast'; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def test_cli_dashboard_serves_the_app_and_refuses_a_bad_port(chin):
    from gaitforecast.cli.cmd_dashboard import streamlit_command

    cmd = streamlit_command(chin, port=8600, headless=True)
    assert cmd[cmd.index("run") + 1] == str(ENTRY_SCRIPT)
    assert cmd[-3:] == ["--", "--store", str(chin)] and "--server.headless" in cmd

    bad = _cli("dashboard", "--port", "70000")
    out, _ = bad.communicate(timeout=60)
    assert bad.returncode == 2 and "--port must be between 1 and 65535" in out and "Traceback" not in out

    port = ds.free_port()
    proc = _cli("dashboard", "--store", str(chin), "--port", str(port), "--headless", "--address", "127.0.0.1")
    try:
        ds.wait_healthy(port, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200 and "<html" in r.read().decode().lower()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_law_pages_explain_a_store_without_finished_runs(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "store.duckdb")
    with store.writer() as w:
        w.upsert_run({"config": {"arch": "gaitpt", "width": 8}, "arch": "gaitpt", "width": 8, "params": 2.8e5,
                      "samples": 1e4, "flops": 5e12, "status": "running"})
    at = page(store.path, "forecast", monkeypatch)
    assert "No finished runs yet (1 running)" in at.info[0].value
    at.switch_page("views/runs.py").run()
    assert metrics(at)["Runs shown"] == "1"


def test_pages_open_on_the_arch_with_most_runs_and_a_law_its_runs_carry(tmp_path, monkeypatch):
    """Like the default sweep: 20 runs of one family, 5 of the other; no page may open on an error."""
    import pandas as pd

    from gaitforecast.laws.synthetic import synthetic_runs

    truth = {"E": 0.2, "A": 5.0, "B": 20.0, "alpha": 0.3, "beta": 0.3}  # errors 0.2-0.7
    table = pd.concat([synthetic_runs("chinchilla", truth, n_configs=5, seed=1, arch="gaitpt", metric=ds.METRIC),
                       synthetic_runs("chinchilla", truth, n_configs=20, seed=2, arch="gaitformer", metric=ds.METRIC)])
    store = tmp_path / "uneven.duckdb"
    RunStore(store).import_runs(table.drop(columns="id"), "uneven.csv")
    at = page(store, "scaling", monkeypatch)
    assert at.sidebar.selectbox(key="arch").value == "gaitformer" and at.sidebar.selectbox(key="law").value == "chinchilla"
    assert not at.error and metrics(at)["Runs fitted"] == "20"
    at.sidebar.selectbox(key="arch").set_value("gaitpt").run()
    assert at.sidebar.selectbox(key="law").value == "power-compute"
    assert not at.exception and not at.error and metrics(at)["Runs fitted"] == "5"
    arch_page = page(store, "architectures", monkeypatch)
    captions = " ".join(c.value for c in arch_page.caption)
    assert not arch_page.error and "compared with `power-compute`" in captions
    assert len(arch_page.dataframe[0].value) == 8
    assert "dots: its runs (gaitformer 20, gaitpt 5)" in captions  # both families' laws drawn, with their runs
    assert arch_page.info[-1].value.endswith("needs more runs than the store has (gaitpt: 5 distinct runs, 7 needed)")
