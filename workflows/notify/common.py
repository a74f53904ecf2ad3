"""What every workflow's messages share: the firm's civil hours, who is on each side, one
message to one person, and the reminder cadence that turns a clock into messages."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from notifications.outbox import Message, cancel, schedule
from portal.models import Firm, Membership, Role, User

from ..rules import Party, Step, may_do


def civil_moment(firm, start: datetime, days: int) -> datetime:
    """`days` after `start`, at the firm's reminder hour, in the firm's time zone."""
    local_day = start.astimezone(firm.zone).date() + timedelta(days=days)
    moment = datetime.combine(local_day, time(hour=firm.reminder_hour), tzinfo=firm.zone)
    return max(moment, start)


def civil_before(firm, deadline: datetime, days: int) -> datetime:
    """`days` before the deadline's day, at the firm's reminder hour, in its time zone."""
    local_day = deadline.astimezone(firm.zone).date() - timedelta(days=days)
    return datetime.combine(local_day, time(hour=firm.reminder_hour), tzinfo=firm.zone)


def _long_date(firm, moment: datetime) -> str:
    return f"{moment.astimezone(firm.zone):%A, %B %-d}"


def _days(count: int) -> str:
    """ "1 day", "3 days"."""
    return f"{count} day{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class Clock:
    """When a cadence's reminders fall, and the step each is keyed by.

    Counting up (a `start`): day N is N days after the start at the firm's hour, step
    "day-N", and none falls on or after the deadline, if there is one. Counting down (no
    start): day N is N days before the deadline's day, step "before-N". A `stamp` ends every
    step (the clock set again has new messages). A moment before `now` is skipped; with no
    `now`, none is (the scale seeder writes history)."""

    firm: Firm
    now: datetime | None
    deadline: datetime | None = None
    start: datetime | None = None
    stamp: str = ""

    def moments(self, days: Iterable[int]) -> Iterator[tuple[int, str, datetime]]:
        """(day, step, when) for each of `days` still to come, in the order given."""
        for day in days:
            if self.start is None:
                due, step = civil_before(self.firm, self.deadline, day), f"before-{day}"
            else:
                due, step = civil_moment(self.firm, self.start, day), f"day-{day}"
                if self.deadline is not None and due >= self.deadline:
                    continue
            if self.now is not None and due < self.now:
                continue
            yield day, f"{step}-{self.stamp}" if self.stamp else step, due

    def last_day(self) -> datetime:
        """The deadline's own day at the firm's hour; now, when that has passed."""
        return max(civil_before(self.firm, self.deadline, 0), self.now)


# --- who ------------------------------------------------------------------------------


def _client_with_people(client_id: int) -> Client:
    return (
        Client.objects.select_related("firm", "user", "assigned_staff")
        .prefetch_related("delegates__roles", "delegates__user")
        .get(pk=client_id)
    )


def provider_side(client: Client, step: Step, profile, requested_role: str = ""):
    """(user or None, email, name) for the provider and each active delegate allowed to act."""
    people = [(client.user, client.email, client.first_name)]
    for delegate in client.delegates.all():
        if not delegate.is_active:
            continue
        party = Party(
            name=delegate.name,
            is_provider=False,
            roles={role.profile_id: role.cms_role for role in delegate.roles.all()},
        )
        if may_do(party, step, profile, requested_role):
            people.append((delegate.user, delegate.email, delegate.name))
    return people


def firm_admins(firm_ids) -> dict[int, list[User]]:
    """The active admins of these firms, by firm (one query)."""
    admins: dict[int, list[User]] = {}
    for membership in (
        Membership.objects.filter(firm__in=firm_ids, role=Role.ADMIN, is_active=True)
        .select_related("user")
        .order_by("pk")
    ):
        admins.setdefault(membership.firm_id, []).append(membership.user)
    return admins


def staff_side(client: Client, admins: dict[int, list[User]] | None = None) -> list[User]:
    """The assigned staff member, or the firm's admins when nobody is assigned (`admins`:
    already read with `firm_admins`, for messages built in bulk)."""
    if client.assigned_staff_id:
        return [client.assigned_staff]
    if admins is None:
        admins = firm_admins([client.firm_id])
    return admins.get(client.firm_id, [])


# --- what -----------------------------------------------------------------------------


def _message(client, obj, *, kind, step, due, to, context, essential=True, link=None):
    """A message to one person; to the provider's side (no `link` of its own: their to-do
    list), its email signs them in with one tap."""
    user, email, name = to
    return Message(
        sign_in=link is None,
        firm=client.firm,
        kind=kind,
        subject_type=type(obj).__name__.lower(),
        subject_id=str(obj.public_id),
        step=step,
        due_at=due,
        template="notification",
        to_email=email or (user.email if user else ""),
        recipient=user,
        essential=essential,
        link_path=link or reverse("dashboard"),
        context={"name": name, **context},
    )


def _staff_message(client, obj, *, kind, step, due, context, admins=None):
    link = reverse("client_detail", args=[client.public_id])
    return [
        _message(
            client,
            obj,
            kind=kind,
            step=step,
            due=due,
            to=(user, user.email, user.display_name),
            context=context,
            link=link,
        )
        for user in staff_side(client, admins)
    ]


def _tell_staff_now(client, obj, *, kind, step, subject, headline, lines) -> None:
    """Tell the staff side at once (a claim to verify, a problem to solve); the step is
    stamped with the moment, so that each telling is a message of its own."""
    now = timezone.now()
    schedule(
        _staff_message(
            client,
            obj,
            kind=kind,
            step=f"{step}-{now:%Y%m%d%H%M%S}",
            due=now,
            context={"subject": subject, "headline": headline, "lines": lines},
        )
    )


def reminders(
    client,
    obj,
    clock: Clock,
    days: Iterable[int],
    *,
    kind: str,
    context: dict | Callable[[int, datetime], dict],
    people=None,
    admins=None,
) -> list[Message]:
    """A cadence's messages: for each of `days` still to come on `clock`, one to each of
    `people` (the provider's side, as `provider_side` gives them) or, without people, to the
    staff side (`admins` as for `staff_side`). `context`: what each says, or, when that
    depends on the day, `context(day, when)`."""
    messages = []
    for day, step, due in clock.moments(days):
        words = context(day, due) if callable(context) else context
        if people is None:
            messages += _staff_message(
                client, obj, kind=kind, step=step, due=due, context=words, admins=admins
            )
        else:
            messages += [
                _message(client, obj, kind=kind, step=step, due=due, to=person, context=words)
                for person in people
            ]
    return messages


def claim_undone(obj, *, kinds: list[str]) -> None:
    """ "I've done this" was taken back: a check the staff side has not been sent yet is
    not sent (one already sent stands: the timeline says it was undone)."""
    cancel(subject_type=type(obj).__name__.lower(), subject_ids=[str(obj.public_id)], kinds=kinds)
