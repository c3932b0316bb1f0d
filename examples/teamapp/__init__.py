"""Teamapp: a small team-manager web application for football managers.

Managers log in, look at their squad, sync their players from the CHPP game API (simulated
locally by `chpp_sim`), edit players and get training recommendations. It is instrumented with
every part of `statsd_metrics` so that the pipeline's dashboards have something real to show:
`demo` starts the CHPP simulator, the app and a traffic generator together.
"""
