"""The owner's figures: per-day and per-type statistics, latencies, and the dashboard's "today"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from receptionist.store.schema import (
    ai_token_usage,
    call_details,
    notifications,
)
from receptionist.tenants.repository import TenantError
from receptionist.web.call_list import LIST_COLUMNS, money_pair, newest_first, summary_of
from receptionist.web.deps import MAX_PAGE, WebDeps, WebError, day_bounds, tenant_tz
from receptionist.web.models import (
    CallSummary,
    DayStats,
    Latency,
    Stats,
    TypeStats,
)
from receptionist.web.scope import Scope

MAX_STATS_DAYS = 366
LATENCY_SAMPLE_CALLS = 2000  # the latest calls of the range whose turns are timed


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)


@dataclass
class _Tally:
    calls: int = 0
    answered: int = 0
    missed: int = 0
    failed: int = 0
    durations: int = 0
    duration_ms: int = 0
    cost: Decimal = Decimal(0)

    def add(self, status: str, heard: bool, duration_ms: int | None) -> None:
        self.calls += 1
        if status == "failed":
            self.failed += 1
        elif status == "rejected" or (status == "completed" and not heard):
            self.missed += 1
        elif status == "completed":
            self.answered += 1
        if duration_ms is not None:
            self.durations += 1
            self.duration_ms += duration_ms

    def add_group(self, status: str, heard: bool, n: int, durations: int, duration_ms: int) -> None:
        """`n` calls of one status (and heard or not) at once, as a GROUP BY row counts them."""
        self.calls += n
        if status == "failed":
            self.failed += n
        elif status == "rejected" or (status == "completed" and not heard):
            self.missed += n
        elif status == "completed":
            self.answered += n
        self.durations += durations
        self.duration_ms += duration_ms

    def merge(self, other: _Tally) -> None:
        """Add another tally's counts (its cost is summed separately)."""
        self.calls += other.calls
        self.answered += other.answered
        self.missed += other.missed
        self.failed += other.failed
        self.durations += other.durations
        self.duration_ms += other.duration_ms

    def duration_avg(self) -> float | None:
        return round(self.duration_ms / self.durations / 1000, 1) if self.durations else None

    def out(self, day: date, rate: Decimal) -> DayStats:
        usd, inr = money_pair(self.cost, rate)
        return DayStats(
            day=day,
            calls=self.calls,
            answered=self.answered,
            missed=self.missed,
            failed=self.failed,
            duration_s_avg=self.duration_avg(),
            cost_usd=usd or 0.0,
            cost_inr=inr or 0.0,
        )


BUCKET_S = 900  # every real UTC offset is a whole number of quarter hours (India: +5:30)


def _bucket(dialect: str, column: Any) -> sa.ColumnElement[Any]:
    """The quarter hour (UTC, counted from the epoch) a timestamp falls in."""
    if dialect == "sqlite":  # ISO text there; strftime('%s') reads it as UTC seconds
        # `//`: SQLAlchemy's `/` is true division, which would give every call its own group
        return sa.cast(sa.func.strftime("%s", column), sa.Integer) // BUCKET_S
    # date_part is double precision; extract() is numeric since PostgreSQL 14, and slower
    return sa.cast(sa.func.floor(sa.func.date_part("epoch", column) / BUCKET_S), sa.BigInteger)


async def stats(
    s: Scope, deps: WebDeps, date_from: date | None = None, date_to: date | None = None
) -> Stats:
    """Counted by the database in quarter hours, folded into the tenant's days here: the answer
    is the same, the rows read are bounded by the range (not by the number of calls), and no
    transcript is loaded (response times were measured when each call was stored)."""
    tz = tenant_tz(deps, s)
    first, last = _stats_range(date_from, date_to, tz)
    lo, hi = day_bounds(first, tz, end=False), day_bounds(last, tz, end=True)
    q = _stats_queries(s, deps.db.dialect, lo, hi)
    async with deps.db.session() as conn:
        bucket_rows = (await conn.execute(q.by_bucket)).all()
        type_rows = (await conn.execute(q.by_type)).all()
        cost_rows = (await conn.execute(q.costs)).all()
        samples = (await conn.scalars(q.sample)).all()
    days = {first + timedelta(days=i): _Tally() for i in range((last - first).days + 1)}
    _fold_into_days(days, tz, bucket_rows, cost_rows)
    total = _Tally()
    for t in days.values():
        total.merge(t)
    total.cost = sum((t.cost for t in days.values()), Decimal(0))
    types: dict[str | None, _Tally] = {}
    for r in type_rows:
        types.setdefault(r.call_type, _Tally()).add_group("", False, r.n, r.timed, r.total_ms)
    response = _response_ms(samples)
    rate = deps.usd_inr
    return Stats(
        date_from=first,
        date_to=last,
        days=[t.out(day, rate) for day, t in days.items()],
        call_types=[
            TypeStats(call_type=k, calls=t.calls, duration_s_avg=t.duration_avg())
            for k, t in sorted(types.items(), key=lambda kv: -kv[1].calls)
        ],
        totals=total.out(last, rate),
        response=Latency(
            turns=len(response),
            p50_ms=_percentile(response, 50),
            p90_ms=_percentile(response, 90),
            p99_ms=_percentile(response, 99),
        ),
    )


def _stats_range(date_from: date | None, date_to: date | None, tz: Any) -> tuple[date, date]:
    """The days asked for: the last 30 up to today (the tenant's) unless given, bounded."""
    last = date_to or datetime.now(tz).date()
    first = date_from or last - timedelta(days=29)
    if first > last or (last - first).days >= MAX_STATS_DAYS:
        raise WebError(
            400, "bad_range", f"from must be on or before to, at most {MAX_STATS_DAYS} days"
        )
    return first, last


@dataclass(frozen=True)
class _StatsQueries:
    by_bucket: Any  # calls per quarter hour, status and whether they were answered
    by_type: Any  # calls per call type
    costs: Any  # the model's cost per quarter hour
    sample: Any  # the response times of the latest calls


def _stats_queries(s: Scope, dialect: str, lo: datetime, hi: datetime) -> _StatsQueries:
    c, u = call_details.c, ai_token_usage.c
    in_range = (c.started_at >= lo, c.started_at < hi)
    bucket = _bucket(dialect, c.started_at).label("bucket")
    heard = c.answered_at.is_not(None).label("heard")
    n = sa.func.count().label("n")
    timed = sa.func.count(c.duration_ms).label("timed")
    total_ms = sa.func.coalesce(sa.func.sum(c.duration_ms), 0).label("total_ms")
    by_bucket = (
        s.calls(bucket, c.status, heard, n, timed, total_ms)
        .where(*in_range)
        .group_by(bucket, c.status, heard)
    )
    by_type = s.calls(c.call_type, n, timed, total_ms).where(*in_range).group_by(c.call_type)
    costs = (
        s.usage(bucket, sa.func.sum(u.total_cost).label("cost"))
        .join(call_details, call_details.c.call_sid == u.call_sid)
        # A call's usage is written when it ends or later, never before it starts: a bound the
        # (tenant, created_at) index uses, so the usage table is not read whole (a day's slack
        # for clocks of different machines).
        .where(*in_range, u.total_cost.is_not(None), u.created_at >= lo - timedelta(days=1))
        .group_by(bucket)
    )
    if s.tenant is not None:  # the calls' side too, so it is read through the tenant's index
        costs = costs.where(c.tenant == s.tenant)
    sample = (
        s.calls(c.stats["response_ms"].label("response_ms"))
        .where(*in_range)
        .order_by(c.started_at.desc(), c.id.desc())
        .limit(LATENCY_SAMPLE_CALLS)
    )
    return _StatsQueries(by_bucket, by_type, costs, sample)


def _fold_into_days(days: dict[date, _Tally], tz: Any, bucket_rows: Any, cost_rows: Any) -> None:
    """Add the quarter hours' counts and costs to the tenant's local days."""
    day_of: dict[int, _Tally] = {}  # a quarter hour's local day (a few rows share each)

    def local_day(b: Any) -> _Tally:
        b = int(b)
        tally = day_of.get(b)
        if tally is None:
            day = datetime.fromtimestamp(b * BUCKET_S, UTC).astimezone(tz).date()
            tally = day_of[b] = days[day]
        return tally

    for bucket_, status, heard_, n_, timed_, total_ms_ in bucket_rows:
        local_day(bucket_).add_group(status, bool(heard_), int(n_), int(timed_), int(total_ms_))
    for r in cost_rows:
        local_day(r.bucket).cost += Decimal(str(r.cost))


def _response_ms(samples: Any) -> list[float]:
    """Every response time in the sampled calls' figures (skipping anything not a number)."""
    return [
        float(ms)
        for times in samples
        if isinstance(times, list)
        for ms in times
        if isinstance(ms, int | float) and not isinstance(ms, bool)
    ]


# --- the dashboard's "today" (appended: used by web/dashboard) ----------------------------------


@dataclass(frozen=True)
class TodaySummary:
    """The owner's day at a glance, in the tenant's time zone."""

    day: date
    answered: int
    missed: int
    failed: int
    in_progress: int
    call_types: list[tuple[str | None, int]]  # today's calls per type, most first
    urgent: list[CallSummary]  # today's calls that raised an urgent message
    messages: list[tuple[str, int]]  # today's WhatsApp messages per status
    month: str  # "YYYY-MM" (UTC, as the budget guard counts)
    month_cost_usd: float
    month_cost_inr: float
    budget_warn_usd: float | None
    budget_limit_usd: float | None


async def today(s: Scope, deps: WebDeps, *, now: datetime | None = None) -> TodaySummary:
    tz = tenant_tz(deps, s)
    now = now or datetime.now(UTC)
    day = now.astimezone(tz).date()
    lo, hi = day_bounds(day, tz, end=False), day_bounds(day, tz, end=True)
    c, n, u = call_details.c, notifications.c, ai_token_usage.c
    heard = c.answered_at.is_not(None).label("heard")
    counts = (
        s.calls(c.status, heard, c.call_type, sa.func.count().label("n"))
        .where(c.started_at >= lo, c.started_at < hi)
        .group_by(c.status, heard, c.call_type)
    )
    by_status = (
        s.notifications(n.status, sa.func.count().label("n"))
        .where(n.created_at >= lo, n.created_at < hi)
        .group_by(n.status)
        .order_by(n.status)
    )
    urgent_sids = (
        s.notifications(n.call_sid)
        .where(n.urgent.is_(True), n.created_at >= lo, n.created_at < hi, n.call_sid.is_not(None))
        .scalar_subquery()
    )
    urgent = newest_first(s.calls(*LIST_COLUMNS).where(c.call_sid.in_(urgent_sids))).limit(MAX_PAGE)
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    spent = (
        s.usage(sa.func.sum(u.total_cost))
        .join(call_details, call_details.c.call_sid == u.call_sid)
        .where(c.started_at >= month_start, c.started_at < now + timedelta(days=1))
    )
    async with deps.db.session() as conn:
        count_rows = (await conn.execute(counts)).all()
        status_rows = (await conn.execute(by_status)).all()
        urgent_rows = (await conn.execute(urgent)).all()
        month_total = (await conn.execute(spent)).scalar_one_or_none()
    tally = _DayCounts.of(count_rows)
    total = Decimal(str(month_total)) if month_total is not None else Decimal(0)
    usd, inr = money_pair(total, deps.usd_inr)
    warn, limit = _budget(s, deps)
    return TodaySummary(
        day=day,
        answered=tally.answered,
        missed=tally.missed,
        failed=tally.failed,
        in_progress=tally.in_progress,
        call_types=sorted(tally.types.items(), key=lambda kv: (-kv[1], kv[0] or "")),
        urgent=[CallSummary(**summary_of(r)) for r in urgent_rows],
        messages=[(r.status, int(r.n)) for r in status_rows],
        month=f"{now:%Y-%m}",
        month_cost_usd=usd or 0.0,
        month_cost_inr=inr or 0.0,
        budget_warn_usd=warn,
        budget_limit_usd=limit,
    )


@dataclass
class _DayCounts:
    answered: int = 0
    missed: int = 0
    failed: int = 0
    in_progress: int = 0
    types: dict[str | None, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Any) -> _DayCounts:
        """Rows of (status, heard, call_type, n), counted by the same rules as the stats' tally."""
        d = cls()
        for r in rows:
            k = int(r.n)
            if r.status == "failed":
                d.failed += k
            elif r.status == "rejected" or (r.status == "completed" and not r.heard):
                d.missed += k
            elif r.status == "completed":
                d.answered += k
            elif r.status == "in_progress":
                d.in_progress += k
            d.types[r.call_type] = d.types.get(r.call_type, 0) + k
        return d


def _budget(s: Scope, deps: WebDeps) -> tuple[float | None, float | None]:
    """The tenant's monthly budget (warn, limit) in USD; none for the all-tenants view."""
    if s.tenant is None:
        return None, None
    try:
        t = deps.tenants.get_any(s.tenant)
    except TenantError:
        return None, None
    warn = float(t.budget_warn_usd) if t.budget_warn_usd is not None else None
    limit = float(t.budget_limit_usd) if t.budget_limit_usd is not None else None
    return warn, limit
