"""Django's SMTP backend, plus a two-phase send that keeps the outbox exactly-once.

An SMTP server accepts a message when it reads the final "." of DATA. `prepare` sends the
whole transaction except that dot; the caller records "sent" in the database and writes the
dot (`finish`) the moment that COMMIT is on the wire, before waiting for its reply. If the
process dies before the COMMIT is sent, the server sees the connection drop mid-DATA and
discards the message, and the row is still claimed, not sent: it is delivered again later,
once. A process that dies after sending the COMMIT still has its written bytes delivered by
the kernel. What is left is the few microseconds between writing the COMMIT and writing the
dots (a message lost if the process is killed exactly then; measured by `make chaos`,
docs/reliability.md).

Backends without this (console, file, locmem, HTTP providers such as django-anymail's) are
used through `send_messages`, marked sent right after: at least once, with the same
Message-ID every time so a duplicate can be recognised.
"""

import contextlib
import copy
import email.policy
import re
import smtplib
import socket
import struct
import threading
import time

from django.core.mail.backends import smtp

_LEADING_DOT = re.compile(rb"(?m)^\.")


class EmailBackend(smtp.EmailBackend):
    supports_two_phase = True

    def open(self):
        opened = super().open()
        if self.connection is not None and self.connection.sock is not None:
            # The final dot is a tiny write after the body: without NODELAY, Nagle's
            # algorithm holds it until the body is acknowledged (milliseconds per message).
            self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return opened

    def prepare(self, email_message) -> None:
        """Send MAIL, RCPT, DATA and the body; the message is not accepted yet."""
        for _ in self.prepare_steps(email_message):
            pass

    def prepare_steps(self, email_message):
        """`prepare`, one command at a time: each step sends a command and yields; the next
        step reads its reply. Driving several connections' steps in turn keeps one command
        of each in flight at once, so N messages cost one round trip per command, not N."""
        if self.connection is None:
            self.open()
        connection = self.connection
        connection.ehlo_or_helo_if_needed()
        from_email = self.prep_address(email_message.from_email)
        recipients = [self.prep_address(address) for address in email_message.recipients()]
        data = email_message.message(policy=email.policy.SMTP).as_bytes()
        connection.putcmd("mail", f"FROM:{smtplib.quoteaddr(from_email)}")
        yield
        code, reply = connection.getreply()
        if code != 250:
            connection.rset()
            raise smtplib.SMTPSenderRefused(code, reply, from_email)
        for recipient in recipients:
            connection.putcmd("rcpt", f"TO:{smtplib.quoteaddr(recipient)}")
            yield
            code, reply = connection.getreply()
            if code not in (250, 251):
                connection.rset()
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        connection.putcmd("data")
        yield
        code, reply = connection.getreply()
        if code != 354:
            connection.rset()
            raise smtplib.SMTPDataError(code, reply)
        body = _LEADING_DOT.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        connection.send(body)

    def finish(self) -> None:
        """Write the final dot: from here the server owns the message."""
        self.connection.send(b".\r\n")

    def confirm(self) -> tuple[int, bytes]:
        """The server's answer to the dot (250 accepted; anything else: not delivered)."""
        return self.connection.getreply()

    def abort(self) -> None:
        """Drop a prepared transaction undelivered: reset the TCP connection (no dot, no QUIT)."""
        connection, self.connection = self.connection, None
        if connection is None or connection.sock is None:
            return
        try:
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.sock.close()
        except OSError:
            pass


def open_side_by_side(lanes: list[EmailBackend], budget: float) -> dict[EmailBackend, Exception]:
    """Open every lane not open yet, all at once, within `budget` seconds for all of them
    together; returns the error of each lane that is not open at the end (left closed).

    1. Each lane opens (connect, greeting, STARTTLS, login, EHLO) in a thread of its own, on
       a copy of itself whose socket timeout is twice the budget: no step of a thread nobody
       waits for any more lasts longer than that.
    2. This thread waits until every lane is open or has failed, or the budget is spent.
    3. A lane open in time gets its connection; a failed one, its error. One still opening
       is given up (a TimeoutError): its thread closes whatever it opens when it ends.

    So a server that accepts connections and never greets costs the budget once, not one
    SMTP timeout per lane. The wait is interruptible: Celery's SoftTimeLimitExceeded (raised
    by a signal in this thread) propagates at once, and the opening threads clean up alone."""
    openings = [_Opening(lane, budget) for lane in lanes if lane.connection is None]
    deadline = time.monotonic() + budget
    try:
        for opening in openings:
            opening.thread.start()
        for opening in openings:
            opening.done.wait(max(0.0, deadline - time.monotonic()))
    finally:
        errors = {}
        for opening in openings:
            if (error := opening.result()) is not None:
                errors[opening.lane] = error
    return errors


class _Opening:
    """One lane being opened in a thread; its connection is handed over only if it is wanted."""

    def __init__(self, lane: EmailBackend, budget: float):
        self.lane, self.budget = lane, budget
        self.spare = copy.copy(lane)  # the same server and options, no connection yet
        self.spare.connection = self.spare._partial_connection = None
        self.spare.timeout = min(lane.timeout or 2 * budget, 2 * budget)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error: Exception | None = None
        self.given_up = False
        self.thread = threading.Thread(target=self._open, name="smtp-lane-open", daemon=True)

    def _open(self) -> None:
        try:
            self.spare.open()
            self.spare.connection.ehlo_or_helo_if_needed()
            self.spare.connection.sock.settimeout(self.lane.timeout)
        # Handed to the waiting thread. (SoftTimeLimitExceeded is raised in the main thread
        # only, never in this one.)
        except Exception as exc:  # noqa: BLE001
            self.error = exc
            _close_quietly(self.spare)
        with self.lock:
            if self.given_up:
                _close_quietly(self.spare)
            elif self.error is None:
                self.lane.connection = self.spare.connection
            self.done.set()

    def result(self) -> Exception | None:
        """The lane's error (None: it is open). A lane still opening is given up now."""
        with self.lock:
            if not self.done.is_set():
                self.given_up = True
                return TimeoutError(
                    "the SMTP server was not ready within the connect budget "
                    f"(NOTIFICATION_SMTP_CONNECT_BUDGET: {self.budget:g} s for all connections)"
                )
            return self.error


def _close_quietly(backend: EmailBackend) -> None:
    """Close a connection without a word to the server (no QUIT to wait for a reply to)."""
    for connection in (backend._partial_connection, backend.connection):
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()
    backend._partial_connection = backend.connection = None
