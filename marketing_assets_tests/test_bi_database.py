"""The read-only BI database: views over the published extracts, refreshed by publishing, never written through."""

import os

import duckdb
import pandas as pd
import pytest

from marketing_assets.lib.bi_database import build_bi_database, read_only_connection


def _publish(path, frame: pd.DataFrame) -> None:
    """Publish like write-audit-publish does: write beside, then rename over the old file."""
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def test_views_read_the_published_files_and_see_a_refresh_without_a_rebuild(tmp_path):
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    _publish(extracts / "marketing_roi.parquet", pd.DataFrame({"channel_group": ["Paid Search"], "ad_spend": [100.0]}))
    created = build_bi_database(tmp_path / "bi.duckdb", {"marketing_roi": extracts / "marketing_roi.parquet", "funnel": extracts / "funnel.parquet"})
    assert created == ["marketing_roi"]  # funnel is not published yet: no view over a missing file

    with read_only_connection(tmp_path / "bi.duckdb") as con:
        assert con.execute("SELECT ad_spend FROM extracts.marketing_roi").fetchall() == [(100.0,)]
    _publish(extracts / "marketing_roi.parquet", pd.DataFrame({"channel_group": ["Paid Search"], "ad_spend": [250.0]}))
    with read_only_connection(tmp_path / "bi.duckdb") as con, read_only_connection(tmp_path / "bi.duckdb") as other:
        assert con.execute("SELECT ad_spend FROM extracts.marketing_roi").fetchall() == [(250.0,)]
        assert other.execute("SELECT count(*) FROM extracts.marketing_roi").fetchone() == (1,)  # readers do not lock each other out


def test_nothing_is_written_through_the_bi_database(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet", index=False)
    build_bi_database(tmp_path / "bi.duckdb", {"x": tmp_path / "x.parquet"})
    with read_only_connection(tmp_path / "bi.duckdb") as con, pytest.raises(duckdb.Error):
        con.execute("CREATE TABLE extracts.y AS SELECT 1")


def test_rebuild_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    folder = tmp_path / "odd 'name"
    folder.mkdir()
    pd.DataFrame({"a": [1]}).to_parquet(folder / "a.parquet", index=False)
    pd.DataFrame({"b": [2]}).to_parquet(folder / "b.parquet", index=False)
    build_bi_database(tmp_path / "bi.duckdb", {"a": folder / "a.parquet"})
    assert build_bi_database(tmp_path / "bi.duckdb", {"a": folder / "a.parquet", 'b"q': folder / "b.parquet"}) == ["a", 'b"q']
    with read_only_connection(tmp_path / "bi.duckdb") as con:
        assert con.execute('SELECT b FROM extracts."b""q"').fetchall() == [(2,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bi.duckdb", "odd 'name"]
