"""HTTP services: the scoring and profile API on BentoML and the Segment-compatible collector.

`serving.service.build_service(config=...)` builds the BentoML service from a typed
`serving.config.ServiceConfig` that the top layer passes in (`cip serve` runs it through
`pipelines.api`); `serving.collector` is the event collector it mounts under `/v1`. This
package imports nothing eagerly, so reading the settings stays quick.
"""
