"""Grafana as code: the dashboards (`dashboards`, built with grafana-foundation-sdk) and the
alert rules read from their provisioning files and evaluated without a Grafana (`alerts`).
Both live, as Grafana reads them, in graphite/grafana/."""
