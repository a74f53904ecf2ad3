"""Delivering due email notifications: claim, send outside any transaction, record.

1. Claim a batch: rows that are due and scheduled become `sending` under a fresh claim token
   (SELECT ... FOR UPDATE SKIP LOCKED where the database has it; SQLite serializes writers).
   Two workers, two beats or a redelivered task never claim the same row.
2. Send outside the transaction, over a few SMTP connections at once (one connection per
   lane for the whole batch, all opened at once within one connect budget).
3. Record: `sent` is committed only for rows still claimed by this token; a row someone else
   reclaimed (because this worker looked dead) is aborted, never sent twice.
4. A failure of the message (a 4xx for its recipient) schedules a retry with exponential
   backoff and jitter; after MAX_ATTEMPTS SMTP tries (a reclaim is not a try) the row is
   `failed` and the firm's admins get an in-app alert; a 5xx for the recipient fails it at
   once and marks the address bouncing (`bounces`). A failure of the server (refused, timed
   out, hung, TLS, 421) spends no attempt: the row waits and is tried every few minutes until
   max_age() (72 hours by default), and the run claims no more batches; the outage is
   logged at ERROR once when it starts and once when it ends, and each admin gets one in-app
   alert a day while it lasts.
5. Claims older than CLAIM_TIMEOUT (a worker killed mid-batch) go back to `scheduled`.
"""

import contextlib
import errno
import functools
import logging
import os
import random
import select
import smtplib
import socket
import ssl
import uuid
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import connection, transaction
from django.utils import timezone
from psycopg import pq

from portal.models import Membership, Role

from . import bounces
from .models import Notification, Preference
from .smtp import open_side_by_side

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BASE_BACKOFF_SECONDS = 60
# While the mail server itself is down, messages wait (no attempt spent) and try again this
# often; one older than max_age() is given up, so a weekend outage is survived but a message
# is never sent days late.
OUTAGE_RETRY_SECONDS = 120


def backoff_base_seconds() -> float:
    """The first retry's delay (doubled at each attempt). A setting so that tests and `make
    chaos` can shrink the clock; production leaves the default."""
    return getattr(settings, "NOTIFICATION_RETRY_BASE_SECONDS", BASE_BACKOFF_SECONDS)


def outage_retry_seconds() -> float:
    return getattr(settings, "NOTIFICATION_OUTAGE_RETRY_SECONDS", OUTAGE_RETRY_SECONDS)


def max_age(firm) -> timedelta:
    """How long the firm's emails wait for a mail server that is down (its setting)."""
    return timedelta(hours=firm.notification_max_age_hours)


LANES = 8  # SMTP connections used side by side
# Seconds to open all the lanes of a batch, together (they open at once): a mail server that
# accepts connections and never greets costs a task this much, not one SMTP timeout per lane.
# 10 s is far above a healthy server's few milliseconds (or a second with TLS and login).
CONNECT_BUDGET_SECONDS = 10.0


def connect_budget() -> float:
    return getattr(settings, "NOTIFICATION_SMTP_CONNECT_BUDGET", CONNECT_BUDGET_SECONDS)


def claim_timeout() -> timedelta:
    return timedelta(seconds=getattr(settings, "NOTIFICATION_CLAIM_TIMEOUT", 600))


def release_stale_claims(now=None) -> int:
    """Claims whose worker died: schedule them again (nothing of theirs was committed sent)."""
    now = now or timezone.now()
    return Notification.objects.filter(
        state=Notification.State.SENDING, claimed_at__lt=now - claim_timeout()
    ).update(state=Notification.State.SCHEDULED, claim_token=None)


def release_claims(token) -> int:
    """Give back the rows this claim still holds (nothing of theirs was committed sent)."""
    return Notification.objects.filter(claim_token=token, state=Notification.State.SENDING).update(
        state=Notification.State.SCHEDULED, claim_token=None
    )


def claim_batch(limit: int, now=None) -> tuple[uuid.UUID, list[int]]:
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        due = Notification.objects.filter(
            state=Notification.State.SCHEDULED,
            channel=Notification.Channel.EMAIL,
            due_at__lte=now,
        ).order_by("due_at")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            Notification.objects.filter(pk__in=ids, state=Notification.State.SCHEDULED).update(
                state=Notification.State.SENDING,
                claim_token=token,
                claimed_at=now,
            )
    return token, ids


@dataclass
class Outgoing:
    row: Notification
    email: EmailMultiAlternatives


def build(rows: list[Notification]) -> tuple[list[Outgoing], list[Notification]]:
    """The email for each row; rows the recipient opted out of are returned apart."""
    opted_out = set(
        Preference.objects.filter(
            user_id__in=[r.recipient_id for r in rows if r.recipient_id and not r.essential],
            nonessential_email=False,
        ).values_list("user_id", flat=True)
    )
    outgoing, skipped = [], []
    for row in rows:
        if not row.essential and row.recipient_id in opted_out:
            skipped.append(row)
            continue
        from_email = f"{row.firm.name} via credportal <{_sender_address()}>"
        email = EmailMultiAlternatives(
            subject=row.title,
            body=row.body_text,
            from_email=from_email,
            to=[row.to_email],
            headers={"Message-ID": row.message_id},
        )
        if row.body_html:
            email.attach_alternative(row.body_html, "text/html")
        outgoing.append(Outgoing(row, email))
    return outgoing, skipped


def _sender_address() -> str:
    address = settings.DEFAULT_FROM_EMAIL
    return address[address.find("<") + 1 : address.rfind(">")] if "<" in address else address


def _commit_sent(token, ids: list[int], then=None, held=()) -> set[int]:
    """Mark sent the rows this claim still owns; returns their ids.

    `then(owned_ids)` writes the final dots on the sockets `held`. On PostgreSQL it runs the
    moment the COMMIT is written, before its reply (with the WAL flush) is awaited, and the
    COMMIT and the dots are held back in the kernel together (see `_held_back`): a worker
    killed between the two writes loses its chunk, and that window is a few system calls
    during which no other process is woken. Elsewhere (SQLite, or inside a test's
    transaction) it runs after the commit."""
    then = then or (lambda owned: None)
    if not ids:
        then(set())
        return set()
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        return _commit_sent_pipelined(token, ids, then, held)
    with transaction.atomic():
        owned = Notification.objects.filter(
            pk__in=ids, claim_token=token, state=Notification.State.SENDING
        )
        if connection.features.has_select_for_update:
            owned = owned.select_for_update()
        owned_ids = set(owned.values_list("pk", flat=True))
        _mark_sent(owned_ids)
    then(owned_ids)
    return owned_ids


def _mark_sent(ids, token=None) -> int:
    rows = Notification.objects.filter(pk__in=ids)
    if token is not None:
        rows = rows.filter(claim_token=token, state=Notification.State.SENDING)
    return rows.update(state=Notification.State.SENT, sent_at=timezone.now())


_MARK_SENT_RETURNING = (
    "UPDATE {table} SET state = %s, sent_at = %s"
    " WHERE id = ANY(%s) AND claim_token = %s AND state = %s RETURNING id"
)


def _commit_sent_pipelined(token, ids: list[int], then, held) -> set[int]:
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    sql = _MARK_SENT_RETURNING.format(table=Notification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute(
                sql,
                [
                    Notification.State.SENT,
                    timezone.now(),
                    list(ids),
                    token,
                    Notification.State.SENDING,
                ],
            )
            owned_ids = {pk for (pk,) in cursor.fetchall()}
        except BaseException:
            connection.connection.rollback()
            raise
    try:
        with _held_back(pgconn.socket, held):
            pgconn.send_query(b"COMMIT")
            while pgconn.flush():
                _wait_for(pgconn.socket, select.POLLOUT)
            then(owned_ids)
    finally:
        error = _await_command(pgconn, b"COMMIT")
    if error:
        # The dots are written; the record of them may not be. Record it again, so the
        # rows are not released and sent twice; if the database is gone, this raises.
        logger.error("recording %s sent notifications failed at COMMIT: %s", len(owned_ids), error)
        if pgconn.status != pq.ConnStatus.OK:
            connection.close()
        _mark_sent(owned_ids, token=token)
    return owned_ids


@contextlib.contextmanager
def _held_back(database_fd: int, smtp_sockets):
    """Writes inside the block stay in the kernel (TCP_CORK) until it ends, then go out.

    Writing the COMMIT wakes the database's process, and on a busy machine this worker is
    then often not scheduled again for a millisecond or more: a SIGKILL in that gap lost the
    chunk's messages (recorded sent, dots never written). Held back, the COMMIT and the dots
    wake nobody until both are written; a process killed after that still has them sent,
    since the kernel flushes held data when it closes a dead process's sockets
    (`test_held_back_writes_are_sent_by_a_process_killed_before_it_lets_them_go`). A socket
    that cannot be corked (a Unix socket, another OS) writes at once, as before."""
    database = socket.socket(fileno=os.dup(database_fd))  # closing it leaves libpq's open
    corked = []
    try:
        for sock in (database, *smtp_sockets):
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                corked.append(sock)
        yield
    finally:
        for sock in corked:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        database.close()


def _wait_for(fd: int, event: int) -> None:
    """Block until `fd` is ready (poll, not select: any descriptor number works)."""
    poller = select.poll()
    poller.register(fd, event)
    poller.poll()


def _await_command(pgconn, tag: bytes) -> str:
    """Wait for the reply to a query sent with `send_query`; "" if it ended with `tag`."""
    try:
        while True:
            pgconn.consume_input()
            if not pgconn.is_busy():
                break
            _wait_for(pgconn.socket, select.POLLIN)
    except psycopg.OperationalError as exc:
        return str(exc)
    error = ""
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK or result.command_status != tag:
            message = result.error_message or result.command_status or b"?"
            error = message.decode(errors="replace")
    return error


def _refusal(code: int, text) -> str:
    """What a 5xx (or 4xx) reply to RCPT says, by its enhanced status code (RFC 3463):
    "gone" (this recipient will never be accepted: 5.1.x, 5.2.1, or a bare 550/551/553),
    "server" (our relay or our sender is refused: 5.7.x policy and relaying, 5.3.x and 5.4.x
    system and network, 421), or "retry" (anything else, mailbox full included)."""
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    enhanced = text.split(maxsplit=1)[0] if text.strip() else ""
    if code == 421 or enhanced.startswith(("5.7.", "5.3.", "5.4.")):
        return "server"
    if enhanced.startswith(("5.1.", "5.2.1")):
        return "gone"
    if code in (550, 551, 553) and not enhanced.startswith("5."):
        return "gone"
    return "retry"


def _bounce_reply(exc: BaseException) -> str:
    """The server's reply when it says this recipient will never be accepted ("550 5.1.1 no
    such user"); "" for any other failure. A relay refusing us ("554 5.7.1 relay access
    denied") is not a bounce: it would mark every address (`_server_unavailable`)."""
    if not isinstance(exc, smtplib.SMTPRecipientsRefused) or not exc.recipients:
        return ""
    replies = list(exc.recipients.values())
    if not all(_refusal(code, text) == "gone" for code, text in replies):
        return ""
    return "; ".join(
        f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
        for code, text in replies
    )


def _server_unavailable(exc: BaseException) -> bool:
    """The mail server failed, not this message: refused or dropped connections, timeouts,
    TLS failures, a 421 ("service not available"), a server that will not greet us, and a
    server that refuses us rather than the recipient (our login or sender refused, STARTTLS
    missing, relaying denied): none of these is the message's fault, so none spends its
    attempts."""
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    if isinstance(
        exc,
        smtplib.SMTPAuthenticationError
        | smtplib.SMTPHeloError
        | smtplib.SMTPSenderRefused
        | smtplib.SMTPNotSupportedError,
    ):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(
            _refusal(code, text) == "server" for code, text in exc.recipients.values()
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True  # a full disk (the file backend's folder): nothing wrong with the message
    return isinstance(exc, ConnectionError | TimeoutError | socket.gaierror | ssl.SSLError)


# This process's view of the mail server, so an outage is logged once, not per message.
_outage = {"since": None}


def _wait_for_server(token, row: Notification, error: str) -> None:
    """The server is down: put the row back without spending an attempt, note the outage."""
    Notification.objects.filter(
        pk=row.pk, claim_token=token, state=Notification.State.SENDING
    ).update(
        state=Notification.State.SCHEDULED,
        # bandit: retry jitter, not a secret
        due_at=timezone.now() + timedelta(seconds=outage_retry_seconds() * (0.5 + random.random())),  # nosec B311
        last_error=error[:2000],
        claim_token=None,
    )
    if _outage["since"] is None:
        _outage["since"] = timezone.now()
        logger.error("SMTP server unavailable (%s); messages wait and are retried", error[:200])
    _alert_admins_of_outage(row, error)


def _server_answered() -> None:
    if _outage["since"] is not None:
        logger.error("SMTP server answering again after an outage since %s", _outage["since"])
        _alert_admins_outage_ended(_outage["since"])
        _outage["since"] = None


def _alert_admins_outage_ended(since) -> None:
    """One in-app note per admin told of the outage: mail flows again (once a day at most,
    whichever worker saw the server come back)."""
    day = timezone.now().date().isoformat()
    told = Notification.objects.filter(
        kind="delivery.outage", created_at__gte=since - timedelta(days=1)
    ).values_list("firm_id", "recipient_id")
    for firm_id, user_id in set(told):
        _tell_in_app(
            [(firm_id, user_id)],
            kind="delivery.outage_ended",
            subject=("firm", str(firm_id), day),
            title="Email is flowing again",
            body="The mail server answers again: the emails that waited are going out now. "
            "Nothing was lost.",
        )


def _alert_admins_of_outage(row: Notification, error: str) -> None:
    """One in-app alert per admin and day while the mail server is down (not one per message)."""
    day = timezone.now().date().isoformat()
    _tell_in_app(
        [
            (row.firm_id, membership.user_id)
            for membership in Membership.objects.filter(
                firm=row.firm_id, role=Role.ADMIN, is_active=True
            )
        ],
        kind="delivery.outage",
        subject=("firm", str(row.firm_id), day),
        title="Email is delayed: the mail server is not answering",
        body="credportal cannot reach its mail server. Reminders and other emails are kept "
        "and go out when it answers again; nothing is lost unless the outage lasts more than "
        f"{row.firm.notification_max_age_hours} hours.",
    )


def _tell_in_app(
    people: list[tuple[int, int]], *, kind: str, subject: tuple, title: str, body: str, link=""
) -> None:
    """An in-app notice to each (firm id, user id), once per key: (kind, subject, person).
    `subject` is (type, id, step)."""
    subject_type, subject_id, step = subject
    now = timezone.now()
    Notification.objects.bulk_create(
        [
            Notification(
                firm_id=firm_id,
                recipient_id=user_id,
                channel=Notification.Channel.IN_APP,
                kind=kind,
                subject_type=subject_type,
                subject_id=subject_id,
                step=step,
                idempotency_key=f"{kind}:{subject_id}:{step}:{user_id}",
                due_at=now,
                state=Notification.State.SENT,
                title=title[:200],
                body_text=body,
                link_path=link,
                sent_at=now,
            )
            for firm_id, user_id in people
        ],
        ignore_conflicts=True,
    )


def _retry_or_fail(
    token,
    row: Notification,
    error: str,
    *,
    permanent: bool = False,
    server_down: bool = False,
    bounce: str = "",
) -> None:
    """An SMTP try failed: count it (only tries count, not reclaims) and retry or give up;
    a permanent refusal gives up at once, and a bounce (the server's 5xx reply for the
    recipient) also marks the address bouncing (`bounces`). A server that is down spends no
    attempt: the row waits for it, up to max_age() after it was written."""
    permanent = permanent or bool(bounce)
    if server_down:
        limit = max_age(row.firm)
        if row.created_at > timezone.now() - limit:
            _wait_for_server(token, row, error)
            return
        permanent = True
        hours = int(limit.total_seconds() // 3600)
        error = f"not delivered within {hours} hours while the mail server was down: {error}"
    row.attempts += 1
    if permanent or row.attempts >= MAX_ATTEMPTS:
        # One transaction: a bounce's mark is never lost to a failure after the row is
        # failed (the row stays claimed and comes back instead).
        with transaction.atomic():
            changed = Notification.objects.filter(
                pk=row.pk, claim_token=token, state=Notification.State.SENDING
            ).update(
                state=Notification.State.FAILED, last_error=error[:2000], attempts=row.attempts
            )
            if changed and bounce:
                bounces.bounce_record(row=row, reply=bounce)
        if changed:
            _alert_admins(row, error)
        return
    delay = backoff_base_seconds() * 2 ** (row.attempts - 1)
    # bandit: retry jitter, not a secret
    delay = delay * (0.5 + random.random())  # nosec B311
    Notification.objects.filter(
        pk=row.pk, claim_token=token, state=Notification.State.SENDING
    ).update(
        state=Notification.State.SCHEDULED,
        due_at=timezone.now() + timedelta(seconds=delay),
        last_error=error[:2000],
        attempts=row.attempts,
        claim_token=None,
    )


def _alert_admins(row: Notification, error: str) -> None:
    _tell_in_app(
        [
            (row.firm_id, membership.user_id)
            for membership in Membership.objects.filter(
                firm=row.firm_id, role=Role.ADMIN, is_active=True
            )
        ],
        kind="delivery.failed",
        subject=("notification", str(row.public_id), "failed"),
        title=f"An email could not be delivered: {row.title}",
        body=f"Email to {row.to_email} failed after {row.attempts} attempt(s); the mail server "
        "did not accept it. Check the address on the client page and contact them another "
        "way.",
        link=row.link_path,
    )
    logger.warning("notification %s failed after %s attempts", row.pk, row.attempts)


def _open_lanes(count: int) -> list:
    return [mailers.default for _ in range(count)]


def _ready_lanes(lanes: list) -> tuple[list, Exception | None]:
    """The lanes that are open, after opening the closed ones all at once within the connect
    budget; and the error of one that could not be opened (None if all are open)."""
    errors = open_side_by_side(lanes, connect_budget())
    return [lane for lane in lanes if lane not in errors], next(iter(errors.values()), None)


def send_claimed(token, ids: list[int]) -> dict[str, int]:
    """Send the claimed rows and record each outcome. Returns counts by outcome."""
    rows = list(Notification.objects.filter(pk__in=ids, claim_token=token).select_related("firm"))
    outgoing, skipped = build(rows)
    if skipped:
        Notification.objects.filter(pk__in=[r.pk for r in skipped], claim_token=token).update(
            state=Notification.State.CANCELLED, last_error="Recipient opted out of this kind"
        )
    counts = {"sent": 0, "retry": 0, "skipped": len(skipped)}
    if not outgoing:
        return counts
    lanes = _open_lanes(min(LANES, len(outgoing)))
    try:
        if getattr(lanes[0], "supports_two_phase", False):
            _send_two_phase(token, outgoing, lanes, counts)
        else:
            _send_plain(token, outgoing, lanes[0], counts)
    except SoftTimeLimitExceeded:
        # Out of time: drop every half-sent transaction (no final dot) and hand back what
        # this claim still holds, so another run sends it now rather than after the claim
        # timeout. Rows already committed sent stay sent.
        _abort_all(lanes)
        release_claims(token)
        raise
    except BaseException:
        # Anything else (the database failing while a failure is recorded, say): the
        # half-sent transactions are dropped at once, not closed with a QUIT that would wait
        # inside DATA; the rows stay claimed and come back after the claim timeout.
        _abort_all(lanes)
        raise
    finally:
        for lane in lanes:
            try:
                lane.close()
            except Exception:  # noqa: BLE001  (closing a broken connection)
                logger.debug("closing an SMTP lane failed", exc_info=True)
    return counts


def _abort_all(lanes) -> None:
    for lane in lanes:
        if hasattr(lane, "abort"):
            lane.abort()


def _send_plain(token, outgoing: list[Outgoing], backend, counts) -> None:
    """At least once: send, then mark sent (the same Message-ID if it ever repeats)."""
    backend.open()
    for item in outgoing:
        try:
            backend.send_messages([item.email])
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # noqa: BLE001  (any backend or network error)
            _retry_or_fail(
                token,
                item.row,
                repr(exc),
                bounce=_bounce_reply(exc),
                server_down=_server_unavailable(exc),
            )
            counts["retry"] += 1
            continue
        counts["sent"] += len(_commit_sent(token, [item.row.pk]))
        _server_answered()


def _send_two_phase(token, outgoing: list[Outgoing], lanes, counts) -> None:
    """Up to len(lanes) messages at a time: prepare all, commit all, then write the dots.

    Before each chunk, the lanes not open (all at first, then those dropped after a failure)
    are opened at once within the connect budget; a lane that cannot be opened is left out
    for the rest of the batch. When none is open, the rest of the batch fails as that lane's
    error says: a server that is down (refused, hung, TLS) spends no attempt."""
    start = 0
    while start < len(outgoing):
        lanes, error = _ready_lanes(lanes)
        if not lanes:
            for item in outgoing[start:]:
                _retry_or_fail(
                    token,
                    item.row,
                    repr(error),
                    server_down=_server_unavailable(error),
                )
                counts["retry"] += 1
            return
        chunk = list(zip(lanes, outgoing[start : start + len(lanes)], strict=False))
        start += len(chunk)
        prepared = _prepare_side_by_side(token, chunk, counts)
        unwritten = {}  # row pk -> why its final dot could not be written
        write_dots = functools.partial(_write_dots, prepared, unwritten)
        try:
            committed = _commit_sent(
                token,
                [item.row.pk for _, item in prepared],
                then=write_dots,
                held=[lane.connection.sock for lane, _ in prepared],
            )
        except BaseException:
            # Nothing is known committed: drop every prepared transaction undelivered (a
            # QUIT written inside DATA would only wait for a reply). The rows stay claimed
            # and come back after the claim timeout.
            for lane, _ in prepared:
                lane.abort()
            raise
        finished = []
        for lane, item in prepared:
            if item.row.pk not in committed:
                lane.abort()  # someone else owns this row now
            elif item.row.pk in unwritten:
                # The dot was not written, so the server discards the message: take the row
                # back for a retry (the other lanes' dots were still written).
                lane.abort()
                _take_back(token, item.row, f"final dot not written: {unwritten[item.row.pk]!r}")
                counts["retry"] += 1
            else:
                finished.append((lane, item))
        for lane, item in finished:
            try:
                code, reply = lane.confirm()
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:  # noqa: BLE001
                code, reply = 0, repr(exc).encode()
            if code == 250:
                counts["sent"] += 1
                _server_answered()
                continue
            # Refused at the dot: not delivered. Take the row back for a retry.
            _take_back(token, item.row, f"{code} {reply!r}")
            counts["retry"] += 1
            lane.abort()


def _write_dots(prepared, unwritten: dict, owned: set[int]) -> None:
    """The final dot of every prepared lane whose row is ours; a failure is noted, not raised
    (the COMMIT is in flight and the other lanes' dots must still go out)."""
    for lane, item in prepared:
        if item.row.pk in owned:
            try:
                lane.finish()
            except OSError as exc:  # the connection broke
                unwritten[item.row.pk] = exc


def _take_back(token, row: Notification, error: str) -> None:
    """A row committed `sent` whose message the server did not accept: retry it."""
    Notification.objects.filter(pk=row.pk, state=Notification.State.SENT).update(
        state=Notification.State.SENDING, sent_at=None
    )
    _retry_or_fail(token, row, error)


def _prepare_side_by_side(token, chunk, counts) -> list:
    """Prepare each (lane, item): all lanes' commands go out before any reply is awaited."""
    steps = {index: lane.prepare_steps(item.email) for index, (lane, item) in enumerate(chunk)}
    ready = set()
    while steps:
        for index, step in list(steps.items()):
            lane, item = chunk[index]
            try:
                next(step)
            except StopIteration:
                ready.add(index)
                del steps[index]
            except SoftTimeLimitExceeded:
                raise  # not an SMTP failure: the task is out of time (send_claimed releases)
            except Exception as exc:  # noqa: BLE001  (SMTP refusal or network error)
                lane.abort()
                _retry_or_fail(
                    token,
                    item.row,
                    repr(exc),
                    bounce=_bounce_reply(exc),
                    server_down=_server_unavailable(exc),
                )
                counts["retry"] += 1
                del steps[index]
    return [pair for index, pair in enumerate(chunk) if index in ready]


def deliver_due(*, batch_size: int = 500, max_batches: int = 20) -> dict[str, int]:
    """Deliver what is due now, batch after batch, until nothing is due (or the budget ends)."""
    release_stale_claims()
    totals = {"sent": 0, "retry": 0, "skipped": 0}
    for _ in range(max_batches):
        token, ids = claim_batch(batch_size)
        if not ids:
            break
        for key, value in send_claimed(token, ids).items():
            totals[key] += value
        if _outage["since"] is not None:
            break  # the mail server is down: the next sweep tries again (no budget spent per batch)
    return totals
