"""`python -m statsd_metrics.grafana.dashboards` regenerates graphite/grafana/dashboards/*.json."""

import sys

from . import write_all

for path in write_all():
    print(path)
sys.exit(0)
