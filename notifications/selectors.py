import base64
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.module_loading import import_string

from .models import BouncingAddress, Notification


def inbox_for(user, firm=None) -> QuerySet:
    """A person's in-app notifications that are due (future reminders are not shown yet), in
    the firm they act in (all of theirs when they act in none, as a platform operator)."""
    queryset = Notification.objects.filter(
        recipient=user,
        channel=Notification.Channel.IN_APP,
        due_at__lte=timezone.now(),
        state__in=Notification.INBOX_STATES,
    )
    if firm is not None:
        queryset = queryset.filter(firm=firm)
    return queryset.order_by("-due_at", "-id")


def unread_count(user, firm=None) -> int:
    return inbox_for(user, firm).filter(read_at__isnull=True).count()


def unread_count_for(user_ref) -> Coalesce:
    """`unread_count` in the membership's firm as an expression, so a query already made for
    the request (the membership) brings it along instead of a query of its own."""
    unread = (
        inbox_for(user_ref, OuterRef("firm"))
        .filter(read_at__isnull=True)
        .order_by()
        .values("recipient")
        .annotate(count=Count("recipient"))
        .values("count")
    )
    return Coalesce(Subquery(unread, output_field=IntegerField()), 0)


# --- the notification centre: one page, by day and by client ---------------------------

INBOX_PAGE_SIZE = 50


@dataclass
class InboxGroup:
    """A day's notifications about one client (`label` is their name), or about no client
    the portal can name ("": a provider's own file, the firm itself)."""

    label: str
    link: str
    items: list[Notification] = field(default_factory=list)

    @property
    def unread(self) -> int:
        return sum(1 for item in self.items if item.read_at is None)


@dataclass
class InboxDay:
    day: date
    label: str  # "Today", "Yesterday", "Thursday, December 3"
    groups: list[InboxGroup] = field(default_factory=list)


@dataclass(frozen=True)
class InboxPage:
    days: list[InboxDay]
    next_cursor: str  # "" on the last page


def encode_cursor(item: Notification) -> str:
    return base64.urlsafe_b64encode(f"{item.due_at.isoformat()}|{item.pk}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        moment, pk = base64.urlsafe_b64decode(cursor.encode()).decode().rsplit("|", 1)
        moment = datetime.fromisoformat(moment)
        if timezone.is_naive(moment):
            return None
        return moment, int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


def link_labels(firm, paths) -> dict[str, str]:
    """The names of what these links open, by link ("/clients/<id>/" -> "Ana Rivera, LCSW"):
    the function named by settings.NOTIFICATION_LINK_LABELS (the clients app's), since the
    notifications store a link, not a client, and import no domain app."""
    return import_string(settings.NOTIFICATION_LINK_LABELS)(firm, paths)


def _day_label(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    return format_date(day, "l, F j" if day.year == today.year else "l, F j, Y")


def _without_prefix(title: str, label: str) -> str:
    """ "Ana Rivera, LCSW: round 1 unsigned" under Ana's heading: "Round 1 unsigned"."""
    prefix = f"{label}: "
    if label and title.startswith(prefix) and len(title) > len(prefix):
        rest = title[len(prefix) :]
        return rest[0].upper() + rest[1:]
    return title


def _excerpt(body: str) -> str:
    """What an in-app copy says, from the email text it shares (templates/emails/
    notification_body.txt): without the greeting, and without the link to the portal (the
    reader is in it) and the signature after it."""
    lines = body.strip().splitlines()
    if lines and lines[0].startswith("Hello ") and lines[0].endswith(","):
        lines = lines[1:]
    for index, line in enumerate(lines):
        if line.startswith("Open your to-do list"):
            lines = lines[:index]
            break
    return " ".join(line.strip() for line in lines if line.strip())


def inbox_page(user, firm, *, zone: tzinfo, cursor: str = "") -> InboxPage:
    """One page of a person's notifications, newest first, grouped by day (in the firm's
    zone) and, within a day, by the client each is about (a group per client, the one with
    the newest item first). Two queries: the page, and the names of the clients it links to
    (none when it links to no client's page, as a provider's). Each item gets `headline`,
    its title without the client's name its group's heading already says, and `excerpt`."""
    queryset = inbox_for(user, firm)
    position = decode_cursor(cursor) if cursor else None
    if position:
        moment, pk = position
        queryset = queryset.filter(Q(due_at__lt=moment) | Q(due_at=moment, pk__lt=pk))
    items = list(queryset[: INBOX_PAGE_SIZE + 1])
    next_cursor = ""
    if len(items) > INBOX_PAGE_SIZE:
        items = items[:INBOX_PAGE_SIZE]
        next_cursor = encode_cursor(items[-1])
    labels = link_labels(firm, {item.link_path for item in items}) if items else {}
    today = timezone.localdate(timezone=zone)
    days: list[InboxDay] = []
    for item in items:
        day = timezone.localtime(item.due_at, zone).date()
        if not days or days[-1].day != day:
            days.append(InboxDay(day=day, label=_day_label(day, today)))
        label = labels.get(item.link_path, "")
        group = next((g for g in days[-1].groups if g.label == label), None)
        if group is None:
            group = InboxGroup(label=label, link=item.link_path if label else "")
            days[-1].groups.append(group)
        item.headline = _without_prefix(item.title, label)
        item.excerpt = _excerpt(item.body_text)
        group.items.append(item)
    return InboxPage(days=days, next_cursor=next_cursor)


def bouncing_among(firm, addresses) -> dict[str, BouncingAddress]:
    """Which of these addresses are marked bouncing in the firm, by address (one query)."""
    wanted = {address.lower() for address in addresses if address}
    if not wanted:
        return {}
    return {
        mark.address: mark
        for mark in BouncingAddress.objects.filter(firm=firm, address__in=wanted).only(
            "address", "since", "reply"
        )
    }
