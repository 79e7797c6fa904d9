"""HTTP services: the scoring and profile API on BentoML and the Segment-compatible collector.

`serving.service:Scoring` is the BentoML service that `cip serve` runs (importing it reads
the settings, so this package imports nothing eagerly); `serving.collector` is the event
collector it mounts under `/v1`.
"""
