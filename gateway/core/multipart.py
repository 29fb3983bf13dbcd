"""Parse a ``multipart/form-data`` body (RFC 7578) into its fields.

Pure: bytes and the request's Content-Type in, named fields out. Used for
OpenAI's ``POST /v1/audio/transcriptions`` upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

from gateway.core.errors import BadRequest


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.value.decode("utf-8", errors="replace")


def parse_multipart(body: bytes, content_type: str) -> dict[str, list[FormField]]:
    """Every field of the form by name (a repeated name, e.g. ``include[]``, keeps all values)."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise BadRequest("expected a multipart/form-data body with a boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("malformed multipart/form-data body")
    fields: dict[str, list[FormField]] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue  # a part without a name is not a form field
        payload = part.get_payload(decode=True)
        value = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        fields.setdefault(name, []).append(FormField(name, value, filename, part.get_content_type()))
    return fields
