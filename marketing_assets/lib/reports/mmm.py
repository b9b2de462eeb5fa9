"""The marketing-mix model on the marketing ROI page: weekly decomposition, MMM ROI per channel group, and the budget
plan with its what-if scenarios (``mmm_contributions``, ``mmm_budget_plan``, ``mmm_roi`` and the ``marketing_roi`` extract)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from marketing_assets.lib.reports import text as T
from marketing_assets.lib.reports.blocks import Callout, How, Subheading, rich
from marketing_assets.lib.reports.common import Col, additive_total, col, figure, get_frame, kpi_col, na, table
from marketing_assets.lib.reports.dictionary import KpiLookup
from marketing_assets.lib.reports.formatting import fmt_date, fmt_value, is_num

MMM_ROI_COLUMNS = ("mmm_roi", "mmm_roi_low", "mmm_roi_high", "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high")


def mmm_labels(model: pd.DataFrame | None) -> dict[str, str]:
    """MMM channel key -> reader-facing label (the channel-group vocabulary), from the model table."""
    if model is None or "channel_label" not in model.columns:
        return {}
    return dict(zip(model["channel"].astype(str), model["channel_label"].astype(str)))


def mmm_components(frame: pd.DataFrame | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(wide components by week, actual/predicted by week) from a long or wide decomposition."""
    if frame is None:
        return None, None
    wk = "week" if "week" in frame.columns else ("date" if "date" in frame.columns else None)
    if wk is None:
        return None, None
    f = frame.copy()
    f[wk] = pd.to_datetime(f[wk])
    if {"component", "contribution"} <= set(f.columns):
        f["contribution"] = pd.to_numeric(f["contribution"], errors="coerce")
        wide = f.pivot_table(index=wk, columns="component", values="contribution", aggfunc="sum").sort_index()
    else:
        wide = f.set_index(wk).sort_index().select_dtypes("number")
    lines_cols = [c for c in wide.columns if str(c).lower() in ("actual", "predicted", "fitted", "total", "revenue")]
    lines = wide[lines_cols] if lines_cols else None
    return wide.drop(columns=lines_cols), lines


def mmm(data: Mapping[str, pd.DataFrame], lookup: KpiLookup, currency: str) -> list:
    comps, lines = mmm_components(get_frame(data, "mmm_contributions"))
    labels = mmm_labels(get_frame(data, "mmm_roi", ["channel"]))
    blocks: list = []
    if comps is None or comps.empty:
        blocks.append(na("mmm_contributions"))
    else:
        base_first = [c for c in ("baseline", "trend", "seasonality", "promo") if c in comps.columns]
        media = [c for c in comps.columns if c not in base_first]
        order = base_first + sorted(media, key=lambda c: -comps[c].sum())
        comps = comps[order]
        names = {c: labels.get(c, str(c).replace("_", " ")) for c in order}
        negative = [names[c] for c in order if (comps[c] < 0).any()]
        total = comps.sum().sum()
        share = comps.sum() / total if total else comps.sum() * float("nan")
        tab = pd.DataFrame({"component": [names[c] for c in order], "kind": ["base" if c in base_first else "media" for c in order],
                            "contribution": [comps[c].sum() for c in order], "share": [share[c] for c in order]})
        media_share = tab.loc[tab["kind"] == "media", "share"].sum()
        note = T.MMM_NEGATIVE.format(names=", ".join(negative)) if negative else ""
        blocks.append(Callout(rich(T.MMM_CALLOUT, weeks=len(comps), start=fmt_date(comps.index[0]), end=fmt_date(comps.index[-1]), share=fmt_value(media_share, "percent"))))
        blocks.append(figure(T.MMM_FIGURE.format(currency=currency), "stacked_area", list(comps.index), {names[c]: comps[c].fillna(0).tolist() for c in order}, "",
                             how=T.MMM_HOW + note, y_label=currency, height=320))
        if lines is not None and not lines.empty:
            blocks.append(figure(T.MMM_FIT_FIGURE.format(currency=currency), "line", list(lines.index), {str(c).capitalize(): lines[c].tolist() for c in lines.columns}, "",
                                 how=T.MMM_FIT_HOW, y_label=currency, height=240))
        blocks.append(table(tab, [Col("component", "Driver"), Col("kind", "Type"), Col("contribution", f"Modelled revenue over the fit period ({currency})", "currency"),
                                  Col("share", "Share of modelled revenue", "percent")], currency=currency))
    roi = get_frame(data, "marketing_roi", ["channel_group", "mmm_roi"])
    if roi is not None:
        r = roi[(col(roi, "level", "channel") == "channel")].dropna(subset=["mmm_roi"]).drop_duplicates("channel_group").copy()
        for c in MMM_ROI_COLUMNS:
            r[c] = pd.to_numeric(col(r, c), errors="coerce")
        r = r.sort_values("mmm_roi", ascending=False)
        if not r.empty:
            lows, highs = r["mmm_roi_low"].fillna(r["mmm_roi"]), r["mmm_roi_high"].fillna(r["mmm_roi"])
            outside = r.loc[(r["mmm_roi"] < lows) | (r["mmm_roi"] > highs), "channel_group"].tolist()
            caution = T.MMM_ROI_CAUTION.format(groups=", ".join(outside)) if outside else ""
            blocks.append(figure(T.MMM_ROI_FIGURE.format(mmm_roi=lookup.label("mmm_roi")), "interval", r["channel_group"].tolist(), r["mmm_roi"].tolist(), lows.tolist(), highs.tolist(), "",
                                 how=T.MMM_ROI_HOW + caution, reference=1.0, reference_label=T.BREAK_EVEN, value_labels=[fmt_value(v, "ratio") for v in r["mmm_roi"]]))
            blocks.append(table(r, [Col("channel_group", "Channel group"), *(kpi_col(lookup, k) for k in MMM_ROI_COLUMNS)]))
    return blocks


def budget(data: Mapping[str, pd.DataFrame], lookup: KpiLookup, currency: str) -> list:
    plan = get_frame(data, "mmm_budget_plan", ["channel", "scenario"])
    roi = get_frame(data, "marketing_roi", ["channel_group"])
    if plan is None or roi is None or "planned_spend" not in roi.columns:
        return [na("budget_plan")]
    p = plan.copy()
    for c in ("current_spend", "scenario_spend", "uplift", "uplift_low", "uplift_high"):
        p[c] = pd.to_numeric(col(p, c), errors="coerce")
    optimal = p[p["scenario"] == "optimal_same_total"]
    groups = roi[(col(roi, "level", "channel") == "channel")].dropna(subset=["planned_spend"]).drop_duplicates("channel_group").copy()
    if optimal.empty or groups.empty:
        return [na("no_budget_plan")]
    for c in ("plan_current_spend", "planned_spend", "planned_spend_change_pct"):
        groups[c] = pd.to_numeric(groups[c], errors="coerce")
    groups = groups.sort_values("plan_current_spend", ascending=False)
    start, end = col(optimal, "period_start").min(), col(optimal, "period_end").max()
    weeks = col(optimal, "period_weeks").max()
    period = f"{fmt_date(start)} to {fmt_date(end)}" + (f" ({int(weeks)} weeks)" if is_num(weeks) else "")
    up, lo, hi = (float(optimal[c].iloc[0]) for c in ("uplift", "uplift_low", "uplift_high"))
    crosses = is_num(lo) and is_num(hi) and lo < 0 < hi
    signed = lambda v: fmt_value(v, "currency", currency=currency, signed=True)  # noqa: E731
    interval = T.BUDGET_INTERVAL.format(low=signed(lo), high=signed(hi)) if is_num(lo) and is_num(hi) else ""
    explain = T.BUDGET_CROSSES_ZERO if crosses else (T.BUDGET_ABOVE_ZERO if is_num(lo) and lo > 0 else "")
    current = additive_total(groups, "plan_current_spend", lookup, column="plan_current_spend")
    blocks: list = [
        Callout(rich(T.BUDGET_CALLOUT, period=period, total=fmt_value(current, "currency", currency=currency), uplift=signed(up), interval=interval, explain=explain),
                "warn" if crosses or not up > 0 else "good"),
        figure(T.BUDGET_FIGURE.format(current=lookup.label("plan_current_spend"), planned=lookup.label("planned_spend"), period=period, currency=currency), "grouped_bar",
               groups["channel_group"].astype(str).tolist(), {lookup.label("plan_current_spend"): groups["plan_current_spend"].fillna(0).tolist(),
                                                              lookup.label("planned_spend"): groups["planned_spend"].fillna(0).tolist()},
               "", how=T.BUDGET_HOW, y_label=currency, colors=("#9aa5b1", "#59a14f")),
        table(groups, [Col("channel_group", "Channel group"), *(kpi_col(lookup, k, currency=currency) for k in ("plan_current_spend", "planned_spend")),
                       kpi_col(lookup, "planned_spend_change_pct", fmt="change")], currency=currency),
    ]
    labels = mmm_labels(get_frame(data, "mmm_roi", ["channel"]))
    others = p[p["scenario"] != "optimal_same_total"]
    if not others.empty:
        others = others.copy()
        others["channel"] = others["channel"].map(lambda c: labels.get(str(c), str(c)))
        blocks += [Subheading(T.WHAT_IF_TITLE.format(period=period)), How([T.WHAT_IF_HOW]),
                   table(others, [Col("scenario", "Scenario"), Col("spend_change", f"Spend change ({currency})", "currency"), Col("uplift", f"Predicted revenue change ({currency})", "currency"),
                                  Col("uplift_per_extra_spend", "Revenue per extra unit of spend", "ratio")], currency=currency)]
    return blocks
