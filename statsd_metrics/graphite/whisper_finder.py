"""The render API's Whisper finder, with carbon's own hash ring for carbonlink.

graphite-render 1.1.8 looks a series up on its ring with `(position, None)`; when a series'
hash lands exactly on a ring entry (about 1 series name in 300 with two caches, 1 in 550
with one), Python 3 compares None with the entry's node and the render fails with HTTP 500,
for that series, forever. Its ring also places two colliding replicas differently from
carbon's. This finder is graphite-render's with the ring swapped for carbon's
`ConsistentHashRing`: the one carbon's relay defines and carbon-c-relay's `carbon_ch`
reproduces, so the render API asks the cache the relay sent the series to.
graphite-render.yaml names it under `finders`.
"""

from __future__ import annotations

from carbon.hashing import ConsistentHashRing
from graphite_render.finders import whisper


class WhisperFinder(whisper.WhisperFinder):
    def __init__(self, config: dict) -> None:
        super().__init__(config)
        if self.carbonlink is not None:
            pool = self.carbonlink
            pool.hash_ring = ConsistentHashRing(
                pool.hosts, hash_type=config["carbon"].get("hashing_type", "carbon_ch")
            )
