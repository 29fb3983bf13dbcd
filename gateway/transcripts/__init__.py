"""Where finals go once they are sent: records, the durable SQLite store, the
live subscriber hub, the fan-out joining them (and the webhook), and the
exports (JSON, text, SRT, WebVTT). Depends only on the core.
"""
