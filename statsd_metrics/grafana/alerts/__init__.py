"""Grafana alert rules evaluated without a Grafana: `statsd-metrics alerts check`.

`rules` reads Grafana's provisioning files (graphite/grafana/provisioning/alerting/);
`evaluate` runs each rule's Graphite query, reduce and threshold against a render API the way
Grafana's backend does, at every evaluation of its pending period, and reports its state.
"""
