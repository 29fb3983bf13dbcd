"""The inference pool: a Ray Serve application whose replicas own the Whisper model.

Gateways (:mod:`gateway.engines.ray_pool`) send it decode requests; it holds
no stream state, so replicas can die, scale out or move without a stream
noticing more than one resent decode. ``python -m gateway.pool`` deploys it
on a running Ray cluster; ``deploy/serve.yaml`` does the same with ``serve run``.
"""
