"""Schema-check factory: one blocking Pandera contract check per persisted table, PUDL style."""

from collections.abc import Mapping

import dagster as dg
import pandera.pandas as pa

from marketing_assets.lib import contract_sql, quality
from marketing_assets.lib.refs import ref
from marketing_assets.resources import Warehouse


def outcome_result(outcome: quality.CheckOutcome, severity=dg.AssetCheckSeverity.ERROR, **kwargs) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=bool(outcome.passed), severity=severity, description=outcome.description, metadata=outcome.metadata, **kwargs
    )


def build_contract_check(schema: str, table: str, model: type[pa.DataFrameModel], blocking: bool = True) -> dg.AssetChecksDefinition:
    key = dg.AssetKey([schema, table])

    @dg.asset_check(
        asset=key,
        name="contract",
        blocking=blocking,
        description=f"Every row conforms to the {model.__name__} Pandera contract (types, nulls, ranges, uniqueness).",
    )
    def _contract(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.get_connection() as con:
            return outcome_result(contract_sql.validate_contract(con, ref(schema, table), model))

    return _contract


def build_contract_checks(schema: str, models: Mapping[str, type[pa.DataFrameModel]]) -> list[dg.AssetChecksDefinition]:
    return [build_contract_check(schema, table, model) for table, model in models.items()]
