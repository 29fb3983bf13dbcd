"""Pre-recorded doors: Deepgram's ``POST /v1/listen`` and OpenAI's ``POST /v1/audio/transcriptions``.

The whole file arrives as the request body (see :mod:`gateway.server.httpbody`),
is decoded to 16 kHz in a worker thread (never on the event loop), and is
transcribed by the local engine's one model, a window at a time between the
live streams' batches (:meth:`WhisperEngine.transcribe_file`). The response
is built by :mod:`gateway.core.prerecorded`.

Refused politely, with Deepgram's (or OpenAI's) error shape: a ``{"url": ...}``
body or a ``callback`` (this gateway reaches nothing outside), ``diarize``
(no diarizer), a relay-only routing request (files are served locally).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import anyio.to_thread
import numpy as np
from websockets.http11 import Request, Response

from gateway.core import formatting
from gateway.core.audio import AudioDecoder
from gateway.core.containers import decode_file
from gateway.core.errors import BadRequest, HandshakeError, StreamError
from gateway.core.multipart import FormField, parse_multipart
from gateway.core.params import StreamParams, parse_params
from gateway.core.prerecorded import FileOptions, ResponseFormat, deepgram_response, openai_body
from gateway.core.types import SAMPLE_RATE, Audio
from gateway.engines.local import WhisperEngine
from gateway.server.auth import Principal
from gateway.server.http import body_response, error_response, json_response
from gateway.server.httpbody import body_of, too_large

log = logging.getLogger(__name__)

LISTEN_PATH = "/v1/listen"
OPENAI_TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"

PostHandler = Callable[[Request], Awaitable[Response]]


class Host(Protocol):
    """What the doors need from the server (the Gateway)."""

    def principal(self, request: Request | None) -> Principal: ...

    def local_engine(self, params: StreamParams, strict: bool = True) -> WhisperEngine: ...


@dataclass(frozen=True, slots=True)
class FileJob:
    """One decoded upload."""

    audio: Audio
    sha256: str

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def decode_upload(body: bytes, params: StreamParams | None) -> FileJob:
    """The body as 16 kHz mono: raw samples when ``encoding`` was given, else a container (blocking)."""
    if params is not None and "encoding" in params.raw and not params.encoding.is_container:
        decoder = AudioDecoder(params.encoding, params.sample_rate, params.channels)
        frame = decoder.decode(body)
        audio = np.concatenate([frame.channels[0], decoder.flush()[0]])
    else:
        audio = decode_file(body)
    return FileJob(audio, hashlib.sha256(body).hexdigest())


def _flag(params: StreamParams, name: str) -> bool:
    values = params.raw.get(name)
    return values is not None and len(values) > 0 and values[-1].strip().lower() in ("true", "1", "")


def _refuse_unsupported(params: StreamParams) -> None:
    if params.raw.get("callback"):
        raise BadRequest("callback is not supported: this gateway reaches nothing outside; wait for the response")
    if _flag(params, "diarize"):
        raise BadRequest("diarize is not supported: this gateway has no diarizer")
    if params.engine is not None and "whisper" not in params.engine.split(","):
        raise BadRequest("pre-recorded audio is transcribed by the local engine only; drop 'engine'")


def hotwords_of(params: StreamParams) -> str:
    """Deepgram's ``keyterm``/``keywords`` (boosts dropped) as faster-whisper ``hotwords``: unlike an
    initial prompt, they stay in every 30-s window's prompt, not only the first one's."""
    return ", ".join(params.keyterms)


class PrerecordedDoors:
    """The POST routes; ``post_routes`` maps a path to its handler."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.post_routes: dict[str, PostHandler] = {
            LISTEN_PATH: self.deepgram,
            OPENAI_TRANSCRIPTIONS_PATH: self.openai,
        }
        self.files_done = 0

    # -- Deepgram ----------------------------------------------------------------

    async def deepgram(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            return await self._deepgram(request, request_id)
        except (HandshakeError, StreamError) as exc:
            error = exc if isinstance(exc, HandshakeError) else BadRequest(exc.message)
            log.info("pre-recorded %s refused: %s %s", request_id, error.status, error.message)
            return error_response(error, request_id)

    async def _deepgram(self, request: Request, request_id: str) -> Response:
        self.host.principal(request)
        if too_large(request):
            return json_response(413, {"err_code": "PAYLOAD_TOO_LARGE", "err_msg": "the file is too large"})
        params = parse_params(urlsplit(request.path).query)
        _refuse_unsupported(params)
        engine = self.host.local_engine(params)
        body = body_of(request)
        if request.headers.get("Content-Type", "").lower().startswith("application/json"):
            raise BadRequest(_json_source_refusal(body))
        job = await anyio.to_thread.run_sync(decode_upload, body, params)
        segments = await engine.transcribe_file(job.audio, hotwords=hotwords_of(params))
        style = formatting.Formatting(params.numerals, params.profanity_filter, params.redact)
        segments = [formatting.apply(segment, style) for segment in segments]
        self.files_done += 1
        utt_split = params.raw.get("utt_split")
        options = FileOptions(
            formatted=params.formatted,
            utterances=_flag(params, "utterances"),
            utt_split_s=_seconds(utt_split[-1]) if utt_split else 0.8,
            paragraphs=_flag(params, "paragraphs"),
        )
        body_json = deepgram_response(
            segments,
            options,
            request_id=request_id,
            created=datetime.now(UTC),
            duration=job.duration,
            sha256=job.sha256,
            model=engine.model,
        )
        if params.tags:
            body_json["metadata"]["tags"] = list(params.tags)
        log.info("pre-recorded %s: %.1f s of audio, %d segments", request_id, job.duration, len(segments))
        return json_response(200, body_json, {"dg-request-id": request_id})

    # -- OpenAI ------------------------------------------------------------------

    async def openai(self, request: Request) -> Response:
        try:
            return await self._openai(request)
        except HandshakeError as exc:
            return openai_error(exc.status, exc.message, "invalid_request_error" if exc.status == 400 else None)
        except StreamError as exc:
            return openai_error(400, exc.message, "invalid_request_error")

    async def _openai(self, request: Request) -> Response:
        self.host.principal(request)
        if too_large(request):
            return openai_error(413, "the file is too large", "invalid_request_error")
        form = await anyio.to_thread.run_sync(
            parse_multipart, body_of(request), request.headers.get("Content-Type", "")
        )
        upload = _field(form, "file")
        if upload is None or not upload.value:
            raise BadRequest("'file' is required: the audio file as a multipart field")
        raw_format = _text(form, "response_format") or "json"
        try:
            fmt = ResponseFormat(raw_format)
        except ValueError:
            raise BadRequest(
                f"response_format must be one of {', '.join(f.value for f in ResponseFormat)}, got {raw_format!r}"
            ) from None
        language = (_text(form, "language") or "en").lower()
        if language not in ("en", "english"):
            raise BadRequest(f"language {language!r} is not served: the model is English only")
        if _text(form, "stream") in ("true", "1"):
            raise BadRequest("stream=true is not supported for transcriptions; use /v1/realtime")
        engine = self.host.local_engine(StreamParams(model=None), strict=False)
        job = await anyio.to_thread.run_sync(decode_upload, upload.value, None)
        segments = await engine.transcribe_file(job.audio, _text(form, "prompt") or "")
        self.files_done += 1
        granularities = [f.text for f in form.get("timestamp_granularities[]", [])] or ["segment"]
        result = openai_body(
            segments, fmt, duration=job.duration, language="english", timestamp_granularities=granularities
        )
        if isinstance(result, dict):
            return json_response(200, result)
        return body_response(200, result.encode(), fmt.content_type)


def _json_source_refusal(body: bytes) -> str:
    try:
        source = json.loads(body or b"{}")
    except ValueError:
        return "the JSON body is malformed; send the audio file itself as the body"
    if isinstance(source, dict) and "url" in source:
        return "url sources are not fetched: this gateway has no outside access; send the audio file as the body"
    return 'a JSON body must be {"url": ...}; send the audio file itself as the body'


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"parameter 'utt_split' must be a number of seconds, got {raw!r}") from None
    if not 0.0 < value <= 60.0:
        raise BadRequest(f"parameter 'utt_split' must be between 0 and 60 seconds, got {value}")
    return value


def _field(form: dict[str, list[FormField]], name: str) -> FormField | None:
    values = form.get(name)
    return values[-1] if values else None


def _text(form: dict[str, list[FormField]], name: str) -> str | None:
    field = _field(form, name)
    return field.text.strip() if field is not None else None


def openai_error(status: int, message: str, kind: str | None, param: str | None = None) -> Response:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    body: dict[str, Any] = {
        "error": {"message": message, "type": kind or "invalid_request_error", "param": param, "code": None}
    }
    return json_response(status, body)
