"""Scales, calendar and constants shared by every part of the demo-data generator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

GENERATOR_VERSION = "1.0.0"

FX_TO_USD: dict[str, float] = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
"""Constant FX rates used for every non-USD amount (recorded in the manifest and the MMM truth)."""

N_WEEKS = 156
"""Complete Monday-to-Sunday weeks of history (three years), the weekly MMM frame's length."""

EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Scale:
    """Volume knobs of one generation scale.

    ``volume`` scales spend and revenue (1.0 = default). ``rows_per_file`` splits big tables into
    several landing files of at most that many data rows (``None`` keeps one file per table).
    ``shard_accounts`` generates in streaming shards of about that many CRM accounts (each shard simulated,
    written and dropped before the next), so memory stays bounded by one shard; ``None`` simulates the
    whole company at once (the byte-stable path of the smaller scales).
    """

    name: str
    n_accounts: int
    cycles_per_account: float
    touches_per_cycle: float
    anon_visitors: int
    anon_sessions_per_visitor: float
    browse_sessions_per_touch: float
    n_products: int
    n_webshop_customers: int
    webshop_orders_per_week: int
    n_sales_reps: int
    volume: float
    sales_touches_per_opp: float
    rows_per_file: int | None
    shard_accounts: int | None = None


SCALES: dict[str, Scale] = {
    "small": Scale(
        name="small",
        n_accounts=620,
        cycles_per_account=2.45,
        touches_per_cycle=9.8,
        anon_visitors=8_500,
        anon_sessions_per_visitor=1.8,
        browse_sessions_per_touch=0.25,
        n_products=60,
        n_webshop_customers=2_500,
        webshop_orders_per_week=300,
        n_sales_reps=8,
        volume=0.3,
        sales_touches_per_opp=4.5,
        rows_per_file=None,
    ),
    "default": Scale(
        name="default",
        n_accounts=15_000,
        cycles_per_account=2.45,
        touches_per_cycle=9.8,
        anon_visitors=210_000,
        anon_sessions_per_visitor=1.8,
        browse_sessions_per_touch=0.25,
        n_products=200,
        n_webshop_customers=60_000,
        webshop_orders_per_week=1_900,
        n_sales_reps=40,
        volume=1.0,
        sales_touches_per_opp=4.5,
        rows_per_file=None,
    ),
    "large": Scale(
        name="large",
        n_accounts=400_000,
        cycles_per_account=4.85,
        touches_per_cycle=2.5,
        anon_visitors=900_000,
        anon_sessions_per_visitor=1.6,
        browse_sessions_per_touch=0.2,
        n_products=600,
        n_webshop_customers=1_000_000,
        webshop_orders_per_week=9_000,
        n_sales_reps=900,
        volume=50.0,
        sales_touches_per_opp=1.6,
        rows_per_file=500_000,
    ),
    "xlarge": Scale(
        name="xlarge",
        n_accounts=2_000_000,
        cycles_per_account=4.85,
        touches_per_cycle=2.5,
        anon_visitors=4_500_000,
        anon_sessions_per_visitor=1.6,
        browse_sessions_per_touch=0.2,
        n_products=600,
        n_webshop_customers=5_000_000,
        webshop_orders_per_week=45_000,
        n_sales_reps=4_500,
        volume=250.0,
        sales_touches_per_opp=1.6,
        rows_per_file=500_000,
        shard_accounts=50_000,
    ),
}


@dataclass(frozen=True)
class IdBase:
    """Ids already given out by earlier shards, added to every id a shard writes (all 0 in one-shot runs)."""

    account: int = 0
    contact: int = 0
    marketing_touchpoint: int = 0
    sales_touchpoint: int = 0
    opportunity: int = 0
    session: int = 0
    customer: int = 0
    sale_order: int = 0
    return_order: int = 0


NO_IDS = IdBase()


def epoch_day(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


@dataclass(frozen=True)
class Timeline:
    """The generated history: 156 complete Monday-based weeks plus the days up to ``end_date``.

    Day ``d`` (0-based) is ``start_date + d``; week ``w`` covers days ``7w .. 7w+6``. Weeks ``0..155`` are
    complete; when ``end_date`` is not a Sunday, a partial week 156 holds the last few days.
    """

    end_date: dt.date

    @property
    def last_full_week_end(self) -> dt.date:
        return self.end_date - dt.timedelta(days=(self.end_date.weekday() - 6) % 7)

    @property
    def start_date(self) -> dt.date:
        return self.last_full_week_end - dt.timedelta(days=N_WEEKS * 7 - 1)

    @property
    def n_days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def n_sim_weeks(self) -> int:
        """Weeks simulated, including a trailing partial week."""
        return -(-self.n_days // 7)

    @property
    def start_epoch_day(self) -> int:
        return epoch_day(self.start_date)

    @property
    def start_ts(self) -> int:
        """Epoch seconds of ``start_date`` 00:00:00 UTC."""
        return self.start_epoch_day * 86400

    @property
    def end_ts(self) -> int:
        """Epoch seconds of the last second of ``end_date``."""
        return (epoch_day(self.end_date) + 1) * 86400 - 1

    def day_dates(self) -> np.ndarray:
        """``datetime64[D]`` of every day."""
        return np.datetime64(self.start_date, "D") + np.arange(self.n_days)

    def week_starts(self, n: int | None = None) -> list[dt.date]:
        n = N_WEEKS if n is None else n
        return [self.start_date + dt.timedelta(days=7 * w) for w in range(n)]

    def day_of_year(self) -> np.ndarray:
        """Day of year (1..366) of every day."""
        dates = self.day_dates()
        return (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1

    def month_index(self) -> tuple[np.ndarray, list[dt.date]]:
        """Per day the index of its calendar month, and the first day of each month covered."""
        months = self.day_dates().astype("datetime64[M]")
        uniq, idx = np.unique(months, return_inverse=True)
        firsts = [dt.date.fromisoformat(str(m) + "-01") for m in uniq]
        return idx, firsts


def slugify(text: str) -> str:
    """``Brand Search - US`` -> ``brand_search_us`` (the utm_campaign spelling of a campaign name)."""
    out, prev_sep = [], False
    for ch in text.lower():
        if ch.isalnum():
            out.append(ch)
            prev_sep = False
        elif not prev_sep:
            out.append("_")
            prev_sep = True
    return "".join(out).strip("_")


def child_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent, reproducible random stream ``stream`` of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def shard_rng(seed: int, stream: int, shard: int) -> np.random.Generator:
    """Random stream ``stream`` of shard ``shard`` of a sharded generation (independent of ``child_rng``'s)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream), int(shard)]))
