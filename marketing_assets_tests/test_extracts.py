"""Extracts on demo data: files published atomically with the documented columns; checks failing on bad data."""

import datetime as dt
import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from marketing_assets.checks import data_quality_covers_every_check
from marketing_assets.checks import extracts as extract_checks
from marketing_assets.constants import EXTRACTS
from marketing_assets.extracts import EXTRACT_COLUMNS, extract_formats
from marketing_assets.resources import Warehouse
from marketing_assets_tests.conftest import checks_after_tampering, copy_graph, rerun_checks


def test_extracts_are_written_as_parquet_and_csv_with_published_columns(demo_graph):
    result, tmp, _ = demo_graph
    for name, columns in EXTRACT_COLUMNS.items():
        parquet = pd.read_parquet(tmp / "extracts" / f"{name}.parquet")
        assert list(parquet.columns) == list(columns) and len(parquet) > 0
        if "csv" not in extract_formats(name):  # Parquet only (PARQUET_ONLY)
            assert not (tmp / "extracts" / f"{name}.csv").exists(), name
            continue
        csv = pd.read_csv(tmp / "extracts" / f"{name}.csv")
        assert list(csv.columns) == list(columns) and len(parquet) == len(csv)
    checks = [e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == EXTRACTS]
    assert checks and all(e.passed for e in checks), {e.check_name: e.description for e in checks if not e.passed}
    assert not [p for p in (tmp / "extracts").iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_executive_kpis_come_from_the_dictionary(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        kpis = {r[0] for r in con.execute("SELECT DISTINCT kpi FROM extracts.executive_kpis").fetchall()}
        defined = {r[0] for r in con.execute("SELECT name FROM extracts.kpi_dictionary").fetchall()}
        monthly = con.execute(
            "SELECT sum(value) FROM extracts.executive_kpis WHERE grain='month' AND kpi='total_revenue' AND dimension IS NULL"
        ).fetchone()[0]
        weekly = con.execute(
            "SELECT sum(value) FROM extracts.executive_kpis WHERE grain='week' AND kpi='total_revenue' AND dimension IS NULL"
        ).fetchone()[0]
        by_product = con.execute(
            "SELECT sum(value) FROM extracts.executive_kpis WHERE grain='month' AND kpi='revenue_by_product'"
        ).fetchone()[0]
    assert kpis <= defined and {"total_revenue", "gross_margin_pct", "blended_roas", "cac", "inventory_turnover"} <= kpis
    assert weekly == pytest.approx(monthly) and by_product == pytest.approx(monthly)


def _tamper_files(demo_graph, tmp_path, name, mutate):
    tmp, landing = copy_graph(demo_graph, tmp_path)
    shutil.copytree(demo_graph[1] / "extracts", tmp / "extracts")
    frame = pd.read_parquet(tmp / "extracts" / f"{name}.parquet")
    frame = mutate(frame)
    frame.to_parquet(tmp / "extracts" / f"{name}.parquet", index=False)
    frame.to_csv(tmp / "extracts" / f"{name}.csv", index=False)
    return rerun_checks(tmp, landing, dg.AssetKey([EXTRACTS, name]))


def test_pii_in_an_extract_file_fails_its_check(demo_graph, tmp_path):
    evals = _tamper_files(demo_graph, tmp_path, "executive_kpis", lambda f: f.assign(dimension_value=f["dimension_value"].where(f.index != 0, "jane.doe@acme.com")))
    assert not evals["no_pii_in_files"].passed


def test_renamed_column_fails_the_published_column_check(demo_graph, tmp_path):
    evals = _tamper_files(demo_graph, tmp_path, "kpi_dictionary", lambda f: f.rename(columns={"owner": "team"}))
    assert not evals["published_columns"].passed


def test_revenue_that_does_not_reconcile_with_erp_fails(demo_graph, tmp_path):
    tmp, landing = copy_graph(demo_graph, tmp_path)
    shutil.copytree(demo_graph[1] / "extracts", tmp / "extracts")
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        con.execute("UPDATE extracts.executive_kpis SET value = value * 1.01 WHERE kpi = 'total_revenue' AND grain = 'month' AND rowid % 7 = 0")
    assert not rerun_checks(tmp, landing, dg.AssetKey([EXTRACTS, "executive_kpis"]))["revenue_reconciles_with_erp"].passed


# --------------------------------------------------------------------------------------------------------------------
# Blocking reconciliation checks: pass on the demo, fail on tampered warehouse tables (checks invoked directly: fast)
# --------------------------------------------------------------------------------------------------------------------

RECONCILIATIONS = {
    "marketing_roi": ("reconciles_with_crm_and_spend", extract_checks.marketing_roi_reconciles),
    "funnel": ("reconciles_with_crm", extract_checks.funnel_reconciles),
    "cohort_ltv": ("reconciles_with_erp", extract_checks.cohort_ltv_reconciles),
    "pipeline_forecast": ("reconciles_with_open_pipeline", extract_checks.pipeline_forecast_reconciles),
    "data_quality_report": ("covers_every_check", data_quality_covers_every_check),
}


def _evaluations(result) -> dict:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == EXTRACTS}


@pytest.mark.parametrize("name", list(RECONCILIATIONS))
def test_reconciliation_checks_pass_blocking_on_demo_data(demo_graph, name):
    check_name, check = RECONCILIATIONS[name]
    ev = _evaluations(demo_graph[0])[(name, check_name)]
    assert ev.passed and not ev.metadata.get("skipped"), ev.description
    assert ev.severity == dg.AssetCheckSeverity.ERROR
    (spec,) = check.check_specs
    assert spec.blocking


def _tampered(demo_graph, tmp_path, sql: str, name: str) -> dg.AssetCheckResult:
    tmp, _ = copy_graph(demo_graph, tmp_path)
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        assert con.execute(f"SELECT count(*) FROM {EXTRACTS}.{name}").fetchone()[0] > 0
        con.execute(sql)
    return RECONCILIATIONS[name][1](warehouse=Warehouse(database=str(tmp / "warehouse.duckdb"), extracts_dir=str(tmp / "extracts")))


TAMPER = [
    ("marketing_roi", "UPDATE extracts.marketing_roi SET attributed_pipeline = attributed_pipeline * 1.1 WHERE level = 'channel' AND attribution_model = 'linear' AND channel_group = 'Paid Search'", "linear/channel pipeline"),
    ("marketing_roi", "UPDATE extracts.marketing_roi SET attributed_revenue = attributed_revenue + 500 WHERE level = 'campaign' AND attribution_model = 'shapley' AND attributed_revenue > 0 AND rowid = (SELECT min(rowid) FROM extracts.marketing_roi WHERE level = 'campaign' AND attribution_model = 'shapley' AND attributed_revenue > 0)", "shapley/campaign revenue"),
    ("marketing_roi", "UPDATE extracts.marketing_roi SET ad_spend = ad_spend * 0.9 WHERE level = 'channel' AND channel_group = 'Paid Social' AND attribution_model = 'markov'", "markov/channel spend"),
    ("funnel", "DELETE FROM extracts.funnel WHERE channel_group = 'Paid Search' AND stage = 'known' AND month = (SELECT max(month) FROM extracts.funnel WHERE channel_group = 'Paid Search' AND stage = 'known' AND contacts > 0)", "channels "),
    ("funnel", "UPDATE extracts.funnel SET contacts = contacts + 1 WHERE channel_group = '(all)' AND stage = 'known' AND month = (SELECT min(month) FROM extracts.funnel)", "known "),
    ("funnel", "UPDATE extracts.funnel SET contacts = contacts * 100 WHERE stage = 'customer'", "exceed the stage before"),
    ("cohort_ltv", "UPDATE extracts.cohort_ltv SET customers = customers + 1 WHERE channel_group = '(all)' AND months_since_acquisition = 0 AND cohort_month = (SELECT max(cohort_month) FROM extracts.cohort_ltv)", "customers "),
    ("cohort_ltv", "UPDATE extracts.cohort_ltv SET cumulative_revenue = cumulative_revenue * 1.01 WHERE channel_group NOT IN ('(all)') AND months_since_acquisition = 0", "channels "),
    ("pipeline_forecast", "UPDATE extracts.pipeline_forecast SET open_pipeline = open_pipeline + 1000 WHERE sales_segment = 'All' AND forecast_month = (SELECT min(forecast_month) FROM extracts.pipeline_forecast)", "All vs CRM open"),
    ("pipeline_forecast", "UPDATE extracts.pipeline_forecast SET lower = upper + 1 WHERE sales_segment = 'SMB'", "inverted interval"),
    ("data_quality_report", "DELETE FROM extracts.data_quality_report WHERE section = 'check' AND check_name = 'cpa_spike'", "cpa_spike"),
    ("data_quality_report", "INSERT INTO extracts.data_quality_report SELECT * FROM extracts.data_quality_report WHERE section = 'check' LIMIT 1", "1 duplicated"),
    ("data_quality_report", "UPDATE extracts.data_quality_report SET status = 'not_evaluated' WHERE section = 'check' AND rowid = (SELECT min(rowid) FROM extracts.data_quality_report WHERE section = 'check')", "unknown status ['not_evaluated']"),
    ("data_quality_report", "DELETE FROM extracts.data_quality_report WHERE section = 'freshness' AND rowid = (SELECT min(rowid) FROM extracts.data_quality_report WHERE section = 'freshness')", "freshness rows"),
]


@pytest.mark.parametrize(("name", "sql", "named"), TAMPER, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(TAMPER)])
def test_each_reconciliation_check_fails_on_tampered_extract(demo_graph, tmp_path, name, sql, named):
    result = _tampered(demo_graph, tmp_path, sql, name)
    assert not result.passed and named in result.description, result.description


def test_funnel_month_without_contacts_reconciles_with_crm(demo_graph, tmp_path):
    """A month between the first and the last contact in which no contact was created: the funnel's rows of that month
    are empty (no contacts), the CRM counts 0; the check compares them as 0 (it raised a TypeError on the empty rows)."""
    created = "date_trunc('month', coalesce(created_at, lead_date, mql_date, sql_date, customer_date))::DATE"
    sql = f"""CREATE TEMP TABLE gap AS SELECT {created} AS month FROM sources.crm_contacts GROUP BY ALL ORDER BY month LIMIT 1 OFFSET 3;
              DELETE FROM sources.crm_contacts WHERE {created} = (SELECT month FROM gap);
              UPDATE extracts.funnel SET contacts = NULL WHERE month = (SELECT month FROM gap)"""
    result = _tampered(demo_graph, tmp_path, sql, "funnel")
    assert result.passed, result.description


def test_tampered_marketing_roi_fails_its_blocking_check_through_dagster(demo_graph, tmp_path):
    evals = checks_after_tampering(
        demo_graph, tmp_path, dg.AssetKey([EXTRACTS, "marketing_roi"]),
        "UPDATE extracts.marketing_roi SET attributed_pipeline = attributed_pipeline * 1.1 WHERE level = 'channel' AND attribution_model = 'linear'",
    )
    ev = evals["reconciles_with_crm_and_spend"]
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert any(d["item"] == "linear/channel pipeline" for d in ev.metadata["differences"].value)


# --------------------------------------------------------------------------------------------------------------------
# Files round-trip to the warehouse table
# --------------------------------------------------------------------------------------------------------------------


def _normalised(frame: pd.DataFrame, columns: dict[str, str], csv: bool = False) -> pd.DataFrame:
    out = {}
    for col, kind in columns.items():
        s = frame[col].reset_index(drop=True)
        if kind in ("date", "timestamp"):
            s = pd.to_datetime(s).astype("datetime64[ns]")
            out[col] = s.dt.floor("s") if csv and kind == "timestamp" else s  # CSV timestamps are written to the second
        elif kind == "string":
            s = s.astype(object).where(s.notna(), None)
            out[col] = s.where(s != "", None) if csv else s  # CSV cannot tell an empty string from NULL
        elif kind == "bool":
            out[col] = s.astype(bool)
        else:
            out[col] = pd.to_numeric(s).astype(float)
    return pd.DataFrame(out)


@pytest.mark.parametrize("name", list(EXTRACT_COLUMNS))
def test_extract_files_round_trip_to_the_warehouse_table(demo_graph, name):
    _, tmp, _ = demo_graph
    columns = EXTRACT_COLUMNS[name]
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        table = con.execute(f"SELECT * FROM {EXTRACTS}.{name}").df()
    parquet = pd.read_parquet(tmp / "extracts" / f"{name}.parquet")
    assert len(table) == len(parquet) > 0
    for col, kind in columns.items():  # dates stay dates, timestamps stay timestamps in Parquet
        values = parquet[col].dropna()
        if kind == "date" and len(values):
            assert all(type(v) is dt.date for v in values), col
        if kind == "timestamp":
            assert parquet[col].dtype.kind == "M", col
    expected = _normalised(table, columns)
    pd.testing.assert_frame_equal(_normalised(parquet, columns), expected, check_exact=False, rtol=1e-12, atol=1e-9)
    if "csv" in extract_formats(name):
        csv = pd.read_csv(tmp / "extracts" / f"{name}.csv", dtype={c: str for c, k in columns.items() if k == "string"}, keep_default_na=False, na_values=[""])
        assert len(csv) == len(table)
        pd.testing.assert_frame_equal(_normalised(csv, columns, csv=True), _normalised(table, columns, csv=True), check_exact=False, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------------------------------------------------
# marketing_roi recommendations
# --------------------------------------------------------------------------------------------------------------------


def _roi(tmp) -> tuple[pd.DataFrame, set[str]]:
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        roi = con.execute(f"SELECT * FROM {EXTRACTS}.marketing_roi").df()
        paid = {r[0] for r in con.execute(
            f"""SELECT DISTINCT channel_group FROM spend.ad_spend_daily
                WHERE spend > 0 AND date_day BETWEEN (SELECT min(period_start) FROM {EXTRACTS}.marketing_roi)
                                                 AND (SELECT max(period_end) FROM {EXTRACTS}.marketing_roi)"""
        ).fetchall()}
    return roi, paid


def test_marketing_roi_recommends_for_every_paid_channel_group_and_model(demo_graph):
    from marketing_assets.lib import kpis, recommend
    from marketing_assets.schemas import ATTRIBUTION_MODELS

    rules = recommend.load_rules(recommend.kpi_goals(kpis.load_kpi_dictionary()))
    roi, paid = _roi(demo_graph[1])
    assert paid, "demo data has ad spend in the window"
    channel = roi[roi.level == "channel"]
    rule_names = {r.name: r.recommendation for r in rules.rules}
    for group in paid:
        rows = channel[channel.channel_group == group]
        assert set(rows.attribution_model) == set(ATTRIBUTION_MODELS), group
        assert rows.recommendation.nunique() == 1 and rows.recommendation_rule.nunique() == 1, group  # decided on the reference model
        rec, rule, reason = rows.iloc[0][["recommendation", "recommendation_rule", "recommendation_reason"]]
        assert rec in recommend.RECOMMENDATIONS and rule_names[rule] == rec, (group, rec, rule)
        assert len(reason) > 20 and "{" not in reason and "n/a" not in reason, reason
    assert (channel.rules_version == rules.version).all()
    # campaign rows with spend follow their channel group and say so; groups without ad spend get no recommendation
    campaigns = roi[(roi.level == "campaign") & (roi.ad_spend > 0)]
    assert len(campaigns) and campaigns.recommendation.isin(recommend.RECOMMENDATIONS).all()
    groups = channel.drop_duplicates("channel_group").set_index("channel_group")
    assert (campaigns.recommendation.to_numpy() == groups.loc[campaigns.channel_group, "recommendation"].to_numpy()).all()
    assert campaigns.recommendation_rule.str.startswith("follows_channel_group:").all()
    assert campaigns.recommendation_reason.str.contains("measure channel groups, not campaigns").all()
    assert campaigns[["mmm_roi", "mmm_marginal_roi", "planned_spend"]].isna().all().all()  # no channel figure posing as the campaign's
    unpaid = channel[~channel.channel_group.isin(paid)]
    assert unpaid.recommendation.isna().all() and unpaid.recommendation_reason.isna().all()


def test_editing_the_rules_file_changes_the_recommendation(demo_graph, tmp_path, monkeypatch):
    import yaml

    from marketing_assets.checks import all_checks
    from marketing_assets.definitions import defs
    from marketing_assets.lib import recommend
    from marketing_assets_tests.conftest import make_resources

    before, paid = _roi(demo_graph[1])
    raw = yaml.safe_load(recommend.DEFAULT_RULES_FILE.read_text())
    rule = raw["rules"][1]
    assert rule["name"] == "too_little_spend" and rule["any"][0]["metric"] == "ad_spend"
    rule["any"][0]["value"] = 1e12  # every channel now has "too little spend"
    raw["version"] = raw["version"] + 100
    rules_file = tmp_path / "recommendations.yaml"
    rules_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setattr(recommend, "DEFAULT_RULES_FILE", rules_file)

    tmp, landing = copy_graph(demo_graph, tmp_path)
    result = dg.materialize(
        [*defs.assets, *all_checks], resources=make_resources(tmp, landing),
        selection=dg.AssetSelection.assets(dg.AssetKey([EXTRACTS, "marketing_roi"])), raise_on_error=False,
    )
    assert result.success
    after, _ = _roi(tmp)
    old = before[(before.level == "channel") & before.channel_group.isin(paid)].set_index(["channel_group", "attribution_model"])
    new = after[(after.level == "channel") & after.channel_group.isin(paid)].set_index(["channel_group", "attribution_model"])
    assert (new.recommendation == "test").all() and (new.recommendation_rule == "too_little_spend").all()
    assert new.recommendation_reason.str.startswith("Too little spend in the window").all()
    assert (new.rules_version == raw["version"]).all()
    assert (old.recommendation != "test").any(), "the edit must change at least one demo recommendation"
    assert new[["ad_spend", "attributed_pipeline"]].equals(old[["ad_spend", "attributed_pipeline"]])  # only the decision moved


# --------------------------------------------------------------------------------------------------------------------
# Funnel: one cohort per month × channel, monotone stages, no conversion on a stage the data cannot tell apart
# --------------------------------------------------------------------------------------------------------------------

FUNNEL_CHECK = "stages_monotone_from_one_cohort"


def test_funnel_stage_check_passes_blocking_on_demo_data(demo_graph):
    ev = _evaluations(demo_graph[0])[("funnel", FUNNEL_CHECK)]
    assert ev.passed, ev.description
    assert ev.severity == dg.AssetCheckSeverity.ERROR
    (spec,) = extract_checks.funnel_stages_from_one_cohort.check_specs
    assert spec.blocking


def test_demo_funnel_engaged_is_not_known_and_opportunity_is_flagged_against_sql(demo_graph):
    # The demo CRM gives every contact a lead date at creation (no engagement signal) and an SQL date exactly when
    # an opportunity is created on the account: engaged must stay below known, opportunity has no conversion.
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        stages = con.execute(
            """SELECT stage, sum(contacts), bool_and(stage_distinguishable), count(stage_conversion), any_value(stage_note)
               FROM extracts.funnel WHERE channel_group = '(all)' GROUP BY stage, stage_order ORDER BY stage_order"""
        ).fetchall()
    counts = {s: n for s, n, _, _, _ in stages}
    assert list(counts) == ["known", "engaged", "mql", "sql", "opportunity", "customer"]
    assert counts["engaged"] < counts["known"]
    assert list(counts.values()) == sorted(counts.values(), reverse=True)
    flagged = {s: (conv, note) for s, _, ok, conv, note in stages if not ok}
    assert list(flagged) == ["opportunity"]
    assert flagged["opportunity"][0] == 0 and "also reached this one" in flagged["opportunity"][1]


FUNNEL_TAMPER = [
    ("UPDATE extracts.funnel SET contacts = contacts * 2 WHERE stage = 'sql'", "monotone"),
    ("UPDATE extracts.funnel SET contacts = contacts + 1 WHERE rowid = (SELECT min(rowid) FROM extracts.funnel WHERE stage = 'known' AND channel_group = 'Email')", "cohort"),
    ("DELETE FROM extracts.funnel WHERE rowid = (SELECT min(rowid) FROM extracts.funnel WHERE stage = 'mql' AND contacts = 0)", "stages"),
    ("UPDATE extracts.funnel SET stage_conversion = 1.0 WHERE NOT stage_distinguishable", "conversion"),
    ("UPDATE extracts.funnel SET stage_distinguishable = false, stage_note = 'tampered' WHERE stage = 'mql'", "conversion"),
]


@pytest.mark.parametrize(("sql", "kind"), FUNNEL_TAMPER, ids=[f"{k}-{i}" for i, (_, k) in enumerate(FUNNEL_TAMPER)])
def test_funnel_stage_check_fails_on_tampered_extract(demo_graph, tmp_path, sql, kind):
    tmp, _ = copy_graph(demo_graph, tmp_path)
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        con.execute(sql)
    result = extract_checks.funnel_stages_from_one_cohort(warehouse=Warehouse(database=str(tmp / "warehouse.duckdb"), extracts_dir=str(tmp / "extracts")))
    assert not result.passed and f" {kind}" in result.description, result.description
    problem = result.metadata["problems"].value[0]
    assert problem["problem"] == kind and problem["month"] and problem["channel_group"] and problem["stage"]


def test_tampered_funnel_fails_its_blocking_stage_check_through_dagster(demo_graph, tmp_path):
    evals = checks_after_tampering(demo_graph, tmp_path, dg.AssetKey([EXTRACTS, "funnel"]), "UPDATE extracts.funnel SET contacts = contacts * 2 WHERE stage = 'sql'")
    ev = evals[FUNNEL_CHECK]
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    first = ev.metadata["problems"].value[0]
    assert first["stage"] == "sql" and first["reference_name"] == "mql" and first["value"] > first["reference"]


# --------------------------------------------------------------------------------------------------------------------
# One name per definition: every published figure is a dictionary KPI and equals its definition
# --------------------------------------------------------------------------------------------------------------------


def test_every_numeric_extract_column_is_a_kpi_or_described():
    from marketing_assets.extracts import COLUMN_KPIS, COLUMN_NOTES, UNIT_TEXT, column_descriptions, column_kpi
    from marketing_assets.lib.kpis import load_kpi_dictionary

    dictionary = load_kpi_dictionary()
    for name, columns in EXTRACT_COLUMNS.items():
        descriptions = column_descriptions(name, dictionary)
        for column, kind in columns.items():
            kpi = column_kpi(name, column, dictionary)
            assert descriptions[column], (name, column)
            if kpi is not None:  # a KPI's column states the dictionary's label, unit and definition, never its own
                k = dictionary[kpi]
                assert k.label in descriptions[column] and UNIT_TEXT[k.unit] in descriptions[column] and k.description in descriptions[column]
            else:
                assert column in COLUMN_NOTES, f"{name}.{column} is neither a dictionary KPI nor described"
        for column, kpi in COLUMN_KPIS.get(name, {}).items():
            assert kpi in dictionary.kpis and column in columns, (name, column, kpi)
    # every figure of marketing_roi is a KPI under its own name, except the across-model spreads of two
    roi_numbers = [c for c, t in EXTRACT_COLUMNS["marketing_roi"].items() if t in ("int", "float") and not c.endswith("_version")]
    assert [c for c in roi_numbers if column_kpi("marketing_roi", c, dictionary) != c] == [
        "channel_roas_min", "channel_roas_max", "attributed_revenue_min", "attributed_revenue_max", "attributed_revenue_model_spread"]


def test_published_extracts_are_bi_ready(demo_graph):
    _, tmp, _ = demo_graph
    roi = pd.read_parquet(tmp / "extracts" / "marketing_roi.parquet")
    funnel = pd.read_parquet(tmp / "extracts" / "funnel.parquet")
    cohorts = pd.read_parquet(tmp / "extracts" / "cohort_ltv.parquet")
    assert (roi["currency"] == "USD").all()  # ISO 4217 code of every money column
    assert roi["new_leads"].dtype.kind == "i" and funnel["contacts"].dtype.kind == "i" and cohorts["customers"].dtype.kind == "i"
    for column in ("ad_spend", "attributed_revenue", "cost_per_opportunity", "planned_spend"):
        values = roi[column].dropna()
        assert len(values) and ((values * 100).round(6) % 1 == 0).all(), column  # money in cents


AGREEMENT_TAMPER = [
    ("marketing_roi", "UPDATE extracts.marketing_roi SET channel_roas = channel_roas * 1.01 WHERE rowid = (SELECT min(rowid) FROM extracts.marketing_roi WHERE channel_roas > 0)"),
    ("marketing_roi", "UPDATE extracts.marketing_roi SET mmm_marginal_roi = mmm_marginal_roi + 0.1 WHERE mmm_marginal_roi IS NOT NULL"),
    # values swapped between two channel groups: every total still adds up, but the figures sit on the wrong rows
    ("marketing_roi", """UPDATE extracts.marketing_roi m SET new_leads = s.other FROM (
        SELECT rowid AS r, lead(new_leads) OVER (ORDER BY rowid) AS other FROM extracts.marketing_roi WHERE level = 'channel' AND attribution_model = 'linear'
     ) s WHERE m.rowid = s.r AND s.other IS NOT NULL AND s.other <> m.new_leads"""),
    ("executive_kpis", "UPDATE extracts.executive_kpis SET value = value + 1 WHERE rowid = (SELECT min(rowid) FROM extracts.executive_kpis WHERE kpi = 'blended_roas')"),
    ("cohort_ltv", "UPDATE extracts.cohort_ltv SET ltv_per_customer = ltv_per_customer + 5 WHERE rowid = (SELECT min(rowid) FROM extracts.cohort_ltv WHERE channel_group <> '(all)')"),
    ("funnel", "UPDATE extracts.funnel SET conversion_from_known = conversion_from_known / 2 WHERE rowid = (SELECT min(rowid) FROM extracts.funnel WHERE conversion_from_known > 0 AND stage = 'mql')"),
]


@pytest.mark.parametrize(("name", "sql"), AGREEMENT_TAMPER, ids=[f"{n}-{i}" for i, (n, _) in enumerate(AGREEMENT_TAMPER)])
def test_kpis_match_dictionary_fails_on_a_tampered_figure(demo_graph, tmp_path, name, sql):
    assert _evaluations(demo_graph[0])[(name, "kpis_match_dictionary")].passed
    evals = checks_after_tampering(demo_graph, tmp_path, dg.AssetKey([EXTRACTS, name]), sql)
    ev = evals["kpis_match_dictionary"]
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR, ev.description
    assert "differ from their definition" in ev.description and ev.metadata["differing_cells"].value >= 1


def test_levels_add_up_fails_when_a_campaign_does_not_add_up(demo_graph, tmp_path):
    assert _evaluations(demo_graph[0])[("marketing_roi", "levels_add_up")].passed
    evals = checks_after_tampering(
        demo_graph, tmp_path, dg.AssetKey([EXTRACTS, "marketing_roi"]),
        "UPDATE extracts.marketing_roi SET attributed_won_deals = attributed_won_deals + 1 WHERE rowid = (SELECT min(rowid) FROM extracts.marketing_roi WHERE level = 'campaign')",
    )
    ev = evals["levels_add_up"]
    assert not ev.passed and "attributed_won_deals" in ev.description and "campaign rows" in ev.description


def test_pool_cohorts_weights_the_cohorts_observed_long_enough_by_customers():
    from marketing_assets.lib.cohorts import pool_cohorts

    # A: cohorts of 1 and 3 customers observed 2 months, a young one (1 month) left out of the 2-month pool.
    rows = [("2025-01-01", 1, [10, 20, 30], 100.0, 2.0, 0.5), ("2025-02-01", 3, [40, 40, 80], 60.0, None, 0.1), ("2025-03-01", 5, [500, 600], 1.0, 0.0, 1.0)]
    frame = pd.DataFrame([(pd.Timestamp(c), "A", m, n, v * n, cac, pay, r) for c, n, ltv, cac, pay, r in rows for m, v in enumerate(ltv)],
                         columns=["cohort_month", "channel_group", "months_since_acquisition", "customers", "cumulative_gross_margin", "cac",
                                  "payback_month", "retention_30d"])
    out = pool_cohorts(frame, (2,))
    assert out["observed_2m"].tolist() == [True] * 6 + [False] * 2
    assert out["pooled_ltv_2m"].tolist()[:3] == [32.5, 35.0, 67.5] and out["pooled_ltv_2m"].iloc[6:].isna().all()  # (30 + 240) / 4 at month 2
    assert out["pooled_cac_2m"].iloc[0] == 70.0 and out["pooled_ltv_to_cac_2m"].iloc[0] == 67.5 / 70.0  # (100 + 180) / 4
    assert out["pooled_retention_30d_2m"].iloc[0] == pytest.approx(0.2) and out["median_payback_month_2m"].iloc[0] == 2.0


def test_attributed_revenue_spread_across_models_is_in_cents_as_published(monkeypatch):
    from marketing_assets import extracts
    from marketing_assets.lib.kpis import load_kpi_dictionary

    # the all-channels row: every model credits the same revenue, up to the float noise of parallel sums (no spread, not
    # 1e-7 one run and 4e-7 the next); a channel group: the spread is the published (cents) max minus min
    rows = [("(all)", "first_touch", 10947395.39), ("(all)", "linear", 10947395.390000004), ("(all)", "w_shaped", 10947395.389999997),
            ("Email", "first_touch", 100.004), ("Email", "linear", 50.0012), ("Email", "w_shaped", 75.0)]
    wide = pd.DataFrame(rows, columns=["channel_group", "attribution_model", "attributed_revenue"]).assign(period=pd.NaT, channel_roas=1.0)
    monkeypatch.setattr(extracts.kpis, "compute_wide", lambda con, names, grain, dims, **kw: wide[(wide.channel_group == "(all)") != ("channel_group" in dims)])
    window = (dt.date(2026, 9, 1), dt.date(2026, 11, 30))
    everything = extracts._roi_kpis(None, load_kpi_dictionary(), [], window)
    assert (everything["attributed_revenue_model_spread"] == 0).all() and (everything["attributed_revenue_min"] == 10947395.39).all()
    email = extracts._roi_kpis(None, load_kpi_dictionary(), ["channel_group"], window)
    assert email[["attributed_revenue_min", "attributed_revenue_max", "attributed_revenue_model_spread"]].drop_duplicates().values.tolist() == [[50.0, 100.0, 50.0]]
