"""Charts to bytes: PNG, SVG and PDF through vl-convert (no browser, no network), or the Vega-Lite spec as JSON.
Write them with :func:`gaitforecast.outfile.write_file` (only over a regular file, through a rename)::

    write_file(Path("figure.png"), render(chart, "png", scale=2))
"""

from __future__ import annotations

import json
from pathlib import Path

from gaitforecast.errors import GaitforecastError

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".json": "json"}


def figure_format(path: Path) -> str:
    """The figure format named by ``path``'s extension (png, svg, pdf; json for the Vega-Lite spec)."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise GaitforecastError(f"cannot tell the figure format of {path} (extension {path.suffix or 'none'!r}); "
                                "name a .png, .svg or .pdf file (or .json for the Vega-Lite spec)")
    return fmt


def _vl_convert():
    try:
        import vl_convert
    except ImportError:
        raise GaitforecastError("rendering figures needs vl-convert-python, which is not installed: "
                                "pip install vl-convert-python") from None
    return vl_convert


def _vl_version(vlc) -> str | None:
    """The Vega-Lite version Altair writes its specs for, when vl-convert bundles it (else its newest)."""
    import altair as alt

    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return major_minor if major_minor in vlc.get_vegalite_versions() else None


def render(chart, fmt: str, scale: float | None = None, ppi: float | None = None) -> bytes:
    """``chart`` (an Altair chart with inline data) as ``fmt`` bytes. ``scale`` multiplies a PNG's pixels,
    ``ppi`` sets its pixels per inch (300 for print: 300/72 times the pixels, recorded in the file)."""
    spec = chart.to_dict()
    if fmt == "json":
        return (json.dumps(spec, indent=2, allow_nan=False) + "\n").encode()
    vlc = _vl_convert()
    common = {"vl_version": _vl_version(vlc), "allowed_base_urls": []}  # the data is inline: never fetch
    try:
        if fmt == "svg":
            return vlc.vegalite_to_svg(spec, **common).encode()
        if fmt == "png":
            return vlc.vegalite_to_png(spec, scale=scale, ppi=ppi, **common)
        if fmt == "pdf":
            return vlc.vegalite_to_pdf(spec, **common)
    except ValueError as exc:  # vl-convert reports a spec it cannot render as ValueError
        raise GaitforecastError(f"vl-convert could not render the figure: {str(exc).splitlines()[0]}") from None
    raise GaitforecastError(f"unknown figure format {fmt!r}; one of {', '.join(sorted(set(FORMATS.values())))}")
