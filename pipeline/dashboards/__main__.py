"""`python -m pipeline.dashboards` regenerates graphite/grafana/dashboards/*.json."""

import sys

from pipeline.dashboards import write_all

for path in write_all():
    print(path)
sys.exit(0)
