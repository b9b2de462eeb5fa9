"""The dashboards' setup logic without Superset: settings, passwords, secrets, the role spec, the server command."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from marketing_assets.bi import server
from marketing_assets.bi.server import BiSettings, BiSetupError


def _settings(tmp_path: Path, landing: Path | None = None, **env) -> BiSettings:
    base = {"MARKETING_WAREHOUSE": str(tmp_path / "own.duckdb"), "MARKETING_LANDING_DIR": str(landing or tmp_path / "landing")}
    return BiSettings.from_env({**base, **env})


def test_bi_home_follows_the_warehouse_and_port_defaults_to_8088(tmp_path):
    s = _settings(tmp_path)
    assert s.home == tmp_path / ".superset" / "own"
    assert s.port == 8088 and s.url == "http://127.0.0.1:8088"
    assert s.bi_database == s.home / "marketing_bi.duckdb"
    assert _settings(tmp_path, MARKETING_BI_HOME=str(tmp_path / "bi"), BI_PORT="9001").home == tmp_path / "bi"


@pytest.mark.parametrize("port", ["http", "0", "70000", "-1"])
def test_bad_bi_port_is_refused(tmp_path, port):
    with pytest.raises(BiSetupError, match="BI_PORT"):
        _settings(tmp_path, BI_PORT=port)


def test_demo_password_default_only_on_demo_data(tmp_path, monkeypatch):
    own = _settings(tmp_path)
    with pytest.raises(BiSetupError, match="MARKETING_BI_DEMO_PASSWORD"):
        server.demo_password(own, env={})
    assert server.demo_password(own, env={"MARKETING_BI_DEMO_PASSWORD": "s3cret"}) == "s3cret"
    demo = tmp_path / "demo_landing"
    from marketing_assets.lib.publish import DEMO_MANIFEST

    manifest = demo.joinpath(*DEMO_MANIFEST)
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}")
    assert server.demo_password(_settings(tmp_path, landing=demo), env={}) == server.DEMO_PASSWORD
    assert server.demo_password(_settings(tmp_path, landing=demo), env={"MARKETING_BI_DEMO_PASSWORD": "x"}) == "x"


def test_generated_secrets_are_owner_only_and_stable(tmp_path):
    s = _settings(tmp_path)
    first = server.admin_password(s, env={})
    assert server.admin_password(s, env={}) == first and len(first) >= 20
    mode = stat.S_IMODE((s.home / "admin_password").stat().st_mode)
    assert mode == 0o600
    assert server.admin_password(s, env={"MARKETING_BI_ADMIN_PASSWORD": "given"}) == "given"


def test_superset_env_points_at_the_project_config_and_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERSET_SECRET_KEY", raising=False)
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    s = _settings(tmp_path)
    env = server.superset_env(s)
    assert env["SUPERSET_CONFIG_PATH"] == str(server.CONFIG) and server.CONFIG.is_file()
    assert env["MARKETING_BI_HOME"] == str(s.home)
    assert env["SUPERSET_SECRET_KEY"] == (s.home / "secret_key").read_text()
    assert "PYTHONPATH" not in env  # the BI venv must not see the project's packages


def test_server_binds_loopback_only(tmp_path):
    cmd = server.serve_command(_settings(tmp_path, BI_PORT="8123"))
    assert cmd[cmd.index("--bind") + 1] == "127.0.0.1:8123"
    assert cmd[-1] == "superset.app:create_app()"


def test_security_spec_has_every_role_and_one_demo_user_each(tmp_path):
    from marketing_assets.bi import bundle

    s = _settings(tmp_path)
    with pytest.raises(BiSetupError):  # own data without a password
        server.security_spec(s, env={})
    spec = server.security_spec(s, env={"MARKETING_BI_DEMO_PASSWORD": "pw"})
    assert set(spec["roles"]) == set(server.ROLES)
    assert [u["username"] for u in spec["users"]] == list(spec["roles"]) and {u["password"] for u in spec["users"]} == {"pw"}
    grants = bundle.role_grants()
    for role, grant in spec["roles"].items():
        assert grant["dashboards"] == [str(bundle.dashboard_uuid(slug)) for slug in grants[role]["dashboards"]]
        assert grant["datasets"] == [str(bundle.dataset_uuid(n)) for n in grants[role]["datasets"]]


def test_extract_assets_link_to_the_dashboards_that_read_them():
    import dagster as dg

    from marketing_assets.definitions import DASHBOARDS_URL, defs

    graph = defs.resolve_asset_graph()
    from marketing_assets.bi import bundle

    bundle_readers: dict[str, set[str]] = {}

    for slug, names in bundle.dashboard_datasets().items():
        for name in names:
            bundle_readers.setdefault(name, set()).add(slug)
    assert bundle_readers
    for name, slugs in bundle_readers.items():
        meta = graph.get(dg.AssetKey(["extracts", name])).metadata
        urls = {v.url for k, v in meta.items() if k.startswith("dashboard: ")}
        assert urls == {server.dashboard_url(DASHBOARDS_URL, slug) for slug in slugs}, name
    # an asset no dashboard reads carries no link
    assert not any(k.startswith("dashboard: ") for k in graph.get(dg.AssetKey(["sources", "crm_contacts"])).metadata)
