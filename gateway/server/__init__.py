"""The process: HTTP routes and the WebSocket handshake (``app``), model loading
(``backends``), the health/readiness/metrics/config/stats routes (``status``), configuration,
API-key auth, the routing policy and usage ledger that pick an engine per
stream (``routing``, ``accounting``, ``dispatch``), and the call-center routes
(``calls``). The top of the import graph: nothing else imports it.
"""
