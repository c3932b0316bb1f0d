"""The local pipeline: aggregator, Carbon and the render API started and stopped together."""
