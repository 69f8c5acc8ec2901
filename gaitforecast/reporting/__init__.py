"""Results to share: figures for papers (`gaitforecast plot`) and a self-contained HTML report (`gaitforecast
report`), both drawn with the dashboard's chart builders from the forecast use case's results.

``figures`` builds a captioned chart per kind, ``render`` turns a chart into PNG/SVG/PDF bytes (vl-convert) and
writes files safely, ``report`` assembles the HTML. Altair and vl-convert are imported here, never by the CLI at
start-up: import these modules inside a command.
"""
