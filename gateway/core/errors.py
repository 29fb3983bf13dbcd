"""Close codes and the exception tree.

Every failure a client can cause or observe is one of these exceptions, and
each carries the close code the server uses for it. The tree follows the two
phases of a connection:

``GatewayError``
    ``HandshakeError`` - refused before the WebSocket upgrade, answered with
    an HTTP status and a JSON body (``err_code``, ``err_msg``, ``request_id``)
    like Deepgram's.

        ``BadRequest`` (400) - unknown encoding, bad sample rate, malformed
        parameter, unknown model.

        ``Unauthorized`` (401) - missing or wrong API key.

        ``Forbidden`` (403) - the key may not use what it asked for (e.g. a
        private tenant asking for a relay).

        ``PaymentRequired`` (402) - the relay budget is spent and the stream
        asked for the relay only.

        ``Draining`` (503) - the server is shutting down (SIGTERM) and takes
        no new streams; a stream upgraded in the same instant is closed 1013.

    ``StreamError`` - after the upgrade, ends one stream with a close code
    and a reason; other streams are never touched.

        ``InvalidAudio`` (1007 DATA-0000) - a frame that is not a whole number
        of samples, or audio that cannot be decoded.

        ``InvalidMessage`` (1007) - a text frame that is not a JSON object.

        ``FrameTooLarge`` (1009) - a frame above the configured limit.

        ``IdleTimeout`` (1011 NET-0001) - no audio and no message for the
        idle window.

        ``ServerFull`` (1013) - the concurrent-stream limit is reached.

        ``UpstreamError`` (1011) - a relayed engine failed and no failover
        was possible. Subclasses say how: ``UpstreamRejected`` (the upstream
        refused the credentials or parameters: permanent),
        ``UpstreamUnavailable`` (could not connect, 5xx, timeout),
        ``UpstreamDropped`` (closed mid-stream), ``UpstreamStalled`` (no
        message while audio flowed).

        ``RelayBudgetExhausted`` (1008 BUDGET-0001) - the relay-minutes
        budget ran out mid-stream and no local engine may take over.

        ``TwilioProtocolError`` (1008 TWILIO-0001) - a Twilio Media Streams
        event that is unknown, lacks a field, or comes out of order (media
        before start).

        ``SlowSubscriber`` (1008 SUB-0001) - a live-event subscriber fell too
        far behind and was dropped (the call goes on).

``InvalidTransition`` is a programming error: a state machine was asked to
move where it may not. It is never sent to a client as such.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes the gateway sends (RFC 6455 section 7.4)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    """Sent to every open stream after its finals when the server drains (SIGTERM)."""
    TRY_AGAIN_LATER = 1013


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""


class HandshakeError(GatewayError):
    """Refuses the upgrade with an HTTP status and a Deepgram-style JSON body."""

    status: int = 400
    err_code: str = "Bad Request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(HandshakeError):
    status = 400
    err_code = "Bad Request"


class Unauthorized(HandshakeError):
    status = 401
    err_code = "INVALID_AUTH"


class Forbidden(HandshakeError):
    status = 403
    err_code = "INSUFFICIENT_PERMISSIONS"


class PaymentRequired(HandshakeError):
    status = 402
    err_code = "ASR_PAYMENT_REQUIRED"


class Draining(HandshakeError):
    status = 503
    err_code = "SERVICE_UNAVAILABLE"


class StreamError(GatewayError):
    """Ends one stream after the upgrade with ``code`` and a reason."""

    code: CloseCode = CloseCode.INTERNAL_ERROR
    tag: str = "ERR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def reason(self) -> str:
        """Close reason: tag and message, cut to fit a close frame (123 bytes)."""
        text = f"{self.message} ({self.tag})"
        raw = text.encode()
        if len(raw) <= 123:
            return text
        return raw[:120].decode(errors="ignore") + "..."


class InvalidAudio(StreamError):
    code = CloseCode.INVALID_PAYLOAD
    tag = "DATA-0000"


class InvalidMessage(StreamError):
    code = CloseCode.INVALID_PAYLOAD
    tag = "DATA-0001"


class FrameTooLarge(StreamError):
    code = CloseCode.MESSAGE_TOO_BIG
    tag = "DATA-0002"


class IdleTimeout(StreamError):
    code = CloseCode.INTERNAL_ERROR
    tag = "NET-0001"


class ServerFull(StreamError):
    code = CloseCode.TRY_AGAIN_LATER
    tag = "CAP-0001"


class UpstreamError(StreamError):
    code = CloseCode.INTERNAL_ERROR
    tag = "UPSTREAM"
    permanent: bool = False
    """Retrying the same request cannot help (bad credentials or parameters)."""


class UpstreamRejected(UpstreamError):
    tag = "UPSTREAM-REJECTED"
    permanent = True


class UpstreamUnavailable(UpstreamError):
    tag = "UPSTREAM-UNAVAILABLE"


class UpstreamDropped(UpstreamError):
    tag = "UPSTREAM-DROPPED"


class UpstreamStalled(UpstreamError):
    tag = "UPSTREAM-STALLED"


class RelayBudgetExhausted(StreamError):
    code = CloseCode.POLICY_VIOLATION
    tag = "BUDGET-0001"


class TwilioProtocolError(StreamError):
    code = CloseCode.POLICY_VIOLATION
    tag = "TWILIO-0001"


class SlowSubscriber(StreamError):
    code = CloseCode.POLICY_VIOLATION
    tag = "SUB-0001"


class InvalidTransition(RuntimeError):
    """A state machine was asked for a transition its current state forbids."""
