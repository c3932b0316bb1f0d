"""A Graphite query for grafana-foundation-sdk, which has none (0.0.21 ships Prometheus, Loki...).

The model is what Grafana's Graphite datasource saves in a panel's `targets`: `refId`, the
`target` expression and `textEditor` (our targets are function calls the visual editor cannot
always parse, so panels open in the raw editor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from grafana_foundation_sdk.cog import builder, runtime, variants
from grafana_foundation_sdk.models.common import DataSourceRef

PLUGIN = "graphite"


@dataclass
class GraphiteQuery(variants.Dataquery):
    target: str
    ref_id: str = "A"
    datasource: DataSourceRef | None = None
    hide: bool = False

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id, "target": self.target}
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        if self.hide:
            payload["hide"] = True
        payload["textEditor"] = True
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        datasource = data.get("datasource")
        return cls(
            target=data.get("target", ""),
            ref_id=data.get("refId", "A"),
            datasource=DataSourceRef.from_json(datasource) if datasource else None,
            hide=bool(data.get("hide", False)),
        )


class Query(builder.Builder[GraphiteQuery]):
    """`Query("sumSeries(a.*)").ref_id("B")`, passed to a panel builder's `with_target`."""

    def __init__(self, target: str) -> None:
        self._internal = GraphiteQuery(target=target)

    def build(self) -> GraphiteQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def datasource(self, ref: DataSourceRef) -> Self:
        self._internal.datasource = ref
        return self

    def hide(self, hide: bool) -> Self:
        self._internal.hide = hide
        return self


# Lets the SDK decode dashboards that hold Graphite targets (Dashboard.from_json).
runtime.register_dataquery_variant(
    runtime.DataqueryConfig(identifier=PLUGIN, from_json_hook=GraphiteQuery.from_json)
)
