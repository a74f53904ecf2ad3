"""A real SMTP server for tests: messages sent to it are parsed and kept in memory.

`SMTPSink` listens on 127.0.0.1 on a port the kernel picks (bound before anyone connects,
so two sinks never race for a port). Register this module with
`pytest_plugins = ["tests.smtp_sink"]` to get the function-scoped `smtp_sink` fixture:

    def test_sends(smtp_sink):
        ...  # point the sender at smtp_sink.url, e.g. EMAIL_URL for a subprocess
        [message] = smtp_sink.wait_for(1, timeout=10)
        assert message["To"] == "someone@example.test"
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Envelope:
    """What the SMTP client said around the message: the real sender and recipients."""

    mail_from: str
    rcpt_tos: tuple[str, ...]


class _Handler:
    def __init__(self, sink: SMTPSink):
        self._sink = sink

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self._sink._record(message, Envelope(envelope.mail_from, tuple(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class _EphemeralPortController(Controller):
    """Bind port 0 and learn the real port before `start()` connects to check readiness."""

    def _create_server(self):
        async def create():
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return create()


class SMTPSink:
    """An SMTP server on 127.0.0.1 that records every message it receives."""

    def __init__(self, host: str = HOST):
        self._condition = threading.Condition()
        self._messages: list[EmailMessage] = []
        self._envelopes: list[Envelope] = []
        self._controller = _EphemeralPortController(_Handler(self), hostname=host, port=0)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> SMTPSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SMTPSink:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._controller.hostname

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def url(self) -> str:
        """An EMAIL_URL (django-environ) that sends here."""
        return f"smtp://{self.host}:{self.port}"

    # --- what was received ----------------------------------------------------------------

    def _record(self, message: EmailMessage, envelope: Envelope) -> None:
        with self._condition:
            self._messages.append(message)
            self._envelopes.append(envelope)
            self._condition.notify_all()

    @property
    def messages(self) -> list[EmailMessage]:
        """A snapshot of the messages received so far, oldest first."""
        with self._condition:
            return list(self._messages)

    @property
    def envelopes(self) -> list[Envelope]:
        with self._condition:
            return list(self._envelopes)

    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.messages]

    def clear(self) -> None:
        with self._condition:
            self._messages.clear()
            self._envelopes.clear()

    # --- waiting --------------------------------------------------------------------------

    def _wait_until(self, predicate: Callable[[int], bool], timeout: float) -> bool:
        """Block until predicate(count) holds or `timeout` seconds pass; no polling gaps."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate(len(self._messages)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The messages received once there are at least `count`; TimeoutError after `timeout`."""
        if not self._wait_until(lambda n: n >= count, timeout):
            raise TimeoutError(
                f"SMTP sink on {self.host}:{self.port} received {len(self.messages)} "
                f"message(s) within {timeout:g}s, expected {count}: {self._summary()}"
            )
        return self.messages

    def assert_no_more_than(self, count: int, within: float) -> None:
        """Fail as soon as more than `count` messages arrive during the next `within` seconds."""
        if self._wait_until(lambda n: n > count, within):
            raise AssertionError(
                f"expected at most {count} message(s), received {len(self.messages)}: "
                f"{self._summary()}"
            )

    def _summary(self) -> str:
        return "; ".join(
            f"{message['Message-ID']} to {message['To']!s}: {message['Subject']!s}"
            for message in self.messages
        )


@pytest.fixture
def smtp_sink():
    """A running `SMTPSink`, stopped after the test."""
    with SMTPSink() as sink:
        yield sink
