"""Cohort LTV pooled over the cohorts observed long enough: the figures the cohort_ltv extract publishes per
channel group next to each cohort's own curve (the page's LTV curves and per-channel summary)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

KEY = ["channel_group", "cohort_month"]
POOLED_RETENTION = ("retention_30d", "retention_60d", "retention_90d")


def pooled_columns(months: int) -> dict[str, str]:
    """Published name -> type of the pooled columns for the cohorts observed for at least ``months`` months."""
    m = f"{months}m"
    return {f"observed_{m}": "bool", f"pooled_ltv_{m}": "float", f"pooled_cac_{m}": "float", f"pooled_ltv_to_cac_{m}": "float",
            **{f"pooled_{r}_{m}": "float" for r in POOLED_RETENTION}, f"median_payback_month_{m}": "float"}


def observed_cohorts(frame: pd.DataFrame, months: int) -> pd.Series:
    """Per row: its cohort (month × channel group) has a row for every month from the first to ``months``."""
    upto = frame[frame["months_since_acquisition"] <= months]
    ages = upto.groupby(KEY)["months_since_acquisition"].agg(["max", "nunique"])
    first = frame["months_since_acquisition"].min()
    full = ages[(ages["max"] == months) & (ages["nunique"] == months - first + 1)].index
    return pd.Series(pd.MultiIndex.from_frame(frame[KEY]).isin(full), index=frame.index)


def _weighted(rows: pd.DataFrame, name: str) -> pd.Series:
    """Per channel group, the customer-weighted average of ``name`` over ``rows`` (rows without a value or weight left out)."""
    w = rows["customers"].replace(0, float("nan"))
    ok = rows[name].notna() & w.notna()
    num = (rows[name] * w).where(ok).groupby(rows["channel_group"]).sum()
    den = w.where(ok).groupby(rows["channel_group"]).sum()
    return (num / den.replace(0, float("nan"))).where(ok.groupby(rows["channel_group"]).any())


def pool_cohorts(frame: pd.DataFrame, sets: Iterable[int] = (12, 24)) -> pd.DataFrame:
    """``frame`` (one row per cohort month × channel group × months since acquisition) with, for each ``months`` of
    ``sets``, the :func:`pooled_columns`: per channel group over its cohorts observed for at least ``months`` months,
    LTV per customer at the row's month (their cumulative gross margin ÷ their customers, months 0…``months``) and on
    every of their rows the customer-weighted CAC and retention at acquisition, LTV at ``months`` ÷ that CAC and the
    median payback month. Rows of other cohorts get ``observed_<months>m`` False and no pooled figures."""
    out = frame.copy()
    num = {c: pd.to_numeric(out[c], errors="coerce") for c in ("months_since_acquisition", "customers", "cumulative_gross_margin")}
    f = pd.DataFrame({**{k: out[k] for k in KEY}, **num})
    for name in ("cac", "payback_month", *POOLED_RETENTION):
        f[name] = pd.to_numeric(out[name], errors="coerce") if name in out else float("nan")
    start = f["months_since_acquisition"].min()
    for months in sets:
        m = f"{months}m"
        observed = observed_cohorts(f, months) & (f["months_since_acquisition"] <= months)
        rows = f[observed]
        by_month = rows.groupby(["channel_group", "months_since_acquisition"])[["cumulative_gross_margin", "customers"]].sum(min_count=1)
        ltv = by_month["cumulative_gross_margin"] / by_month["customers"].replace(0, float("nan"))
        at = pd.MultiIndex.from_frame(f[["channel_group", "months_since_acquisition"]])
        out[f"observed_{m}"] = observed_cohorts(f, months)
        out[f"pooled_ltv_{m}"] = pd.Series(ltv.reindex(at).to_numpy(), index=f.index).where(observed)
        first = rows[rows["months_since_acquisition"] == start]
        per_channel = pd.DataFrame({f"pooled_cac_{m}": _weighted(first, "cac"), **{f"pooled_{r}_{m}": _weighted(first, r) for r in POOLED_RETENTION},
                                    f"median_payback_month_{m}": first.groupby("channel_group")["payback_month"].median()})
        ltv_end = ltv.xs(months, level="months_since_acquisition") if len(ltv) else pd.Series(dtype=float)
        per_channel[f"pooled_ltv_to_cac_{m}"] = ltv_end.reindex(per_channel.index) / per_channel[f"pooled_cac_{m}"].replace(0, float("nan"))
        for column in per_channel.columns:
            out[column] = f["channel_group"].map(per_channel[column]).where(out[f"observed_{m}"]).astype(float)
    return out
