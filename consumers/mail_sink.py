"""(v2) The demo's local SMTP sink: a real SMTP server (aiosmtpd) on a free loopback port that
keeps every message it accepts as an `.eml` file in a folder, and sends nothing on.

`complaints up --demo` starts one and points the delivery service at it, so the simulated
customers' email letters go through the same SMTP conversation as in production, never to a
real mail server. Open the files with any mail client (or read them: they are text).
"""

from __future__ import annotations

import re
import socket
import threading
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, Final

from aiosmtpd.controller import Controller

from consumers.delivery import SmtpConfig
from consumers.letter_service import write_atomically

HOST: Final = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class _Folder:
    """aiosmtpd handler: each accepted message as `<n>-<message id>.eml`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = len(list(directory.glob("*.eml")))
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.content
        headers = BytesHeaderParser().parsebytes(content)
        message_id = re.sub(r"[^A-Za-z0-9._@-]", "", str(headers.get("Message-ID") or ""))
        with self._lock:
            self.count += 1
            number = self.count
        name = f"{number:06d}-{message_id or 'message'}.eml"
        write_atomically(self.directory / name, content)
        return f"250 2.0.0 Ok: kept as {name}"


class MailSink:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._controller: Controller | None = None
        self._handler: _Folder | None = None

    def start(self) -> SmtpConfig:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._handler = _Folder(self.directory)
        self._controller = Controller(self._handler, hostname=HOST, port=_free_port())
        self._controller.start()
        return SmtpConfig(host=HOST, port=self._controller.port, tls="off",
                          sender=None, timeout_s=10.0)

    @property
    def received(self) -> int:
        return self._handler.count if self._handler is not None else 0

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
