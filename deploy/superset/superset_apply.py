"""Import the dashboards bundle and apply roles, dashboard grants and demo users, inside Superset.

Run by the BI venv's Python (``python -m marketing_assets.bi setup``); it imports only Superset. Reads a JSON
spec on stdin::

    {"bundle": "<path of the bundle zip>", "owner": "admin",
     "roles": {"<role>": {"dashboards": [uuid, ...], "datasets": [uuid, ...], "drill": bool, "sql_lab": bool}},
     "users": [{"username": ..., "role": ..., "password": ...}]}

The bundle is imported kind by kind with overwrite (database, datasets, charts, dashboards): Superset's
``import-dashboards`` overwrites only the dashboards and never the charts and datasets they contain, so a
changed chart or dataset in ``dashboards.yaml`` would not reach an existing installation.

Each role gets Superset's ``Gamma`` permissions (read dashboards and charts, no editing of shared objects),
``datasource_access`` on exactly its datasets, and is set on exactly its dashboards (``DASHBOARD_RBAC``: a
dashboard with roles opens only for users holding one of them). Without ``drill`` the role loses drill to
detail / drill by and the samples endpoint, so it never sees row-level data. With ``sql_lab`` it also gets
SQL Lab on the BI database (read-only by construction). Re-running converges: grants not in the spec are
removed from these roles and dashboards, users' roles and passwords are reset to the spec.
"""

from __future__ import annotations

import json
import sys
import zipfile

# Drill to detail / drill by: the dashboard action and the samples endpoint it calls (Gamma lacks can_samples).
DRILL_PERMISSIONS = {("can_drill", "Dashboard"), ("can_samples", "Datasource"), ("can_get_drill_info", "Dataset"),
                     ("can_view_query", "Dashboard"), ("can_view_chart_as_table", "Dashboard")}
DRILL_GRANTS = (("can_drill", "Dashboard"), ("can_samples", "Datasource"), ("can_get_drill_info", "Dataset"))


# Bundle folder -> the model class name its metadata.yaml must declare for that kind's import command.
KINDS = (("databases/", "Database"), ("datasets/", "SqlaTable"), ("charts/", "Slice"), ("dashboards/", "Dashboard"))


def import_bundle(path: str) -> dict[str, int]:
    """Import every object of the bundle, overwriting what an earlier import created (matched by UUID)."""
    import yaml
    from superset.commands.chart.importers.v1 import ImportChartsCommand
    from superset.commands.dashboard.importers.v1 import ImportDashboardsCommand
    from superset.commands.database.importers.v1 import ImportDatabasesCommand
    from superset.commands.dataset.importers.v1 import ImportDatasetsCommand
    from superset.commands.importers.v1.utils import get_contents_from_bundle

    with zipfile.ZipFile(path) as bundle:
        contents = get_contents_from_bundle(bundle)
    metadata = yaml.safe_load(contents["metadata.yaml"])
    commands = {"Database": ImportDatabasesCommand, "SqlaTable": ImportDatasetsCommand, "Slice": ImportChartsCommand,
                "Dashboard": ImportDashboardsCommand}
    counts = {}
    for prefix, kind in KINDS:
        typed = {**contents, "metadata.yaml": yaml.safe_dump({**metadata, "type": kind})}
        commands[kind](typed, overwrite=True).run()
        counts[prefix.rstrip("/")] = sum(1 for name in contents if name.startswith(prefix))
    return counts


def main() -> int:
    spec = json.load(sys.stdin)
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from flask import g
        from superset import db, security_manager as sm

        g.user = sm.find_user(username=spec["owner"])
        imported = import_bundle(spec["bundle"])
        from superset.connectors.sqla.models import SqlaTable
        from superset.models.dashboard import Dashboard
        from werkzeug.security import generate_password_hash

        gamma = list(sm.find_role("Gamma").permissions)
        sql_lab = list(sm.find_role("sql_lab").permissions) if sm.find_role("sql_lab") else []
        roles = {}
        for name, grant in spec["roles"].items():
            role = sm.add_role(name)
            perms = [p for p in gamma if grant["drill"] or (p.permission.name, p.view_menu.name) not in DRILL_PERMISSIONS]
            if grant["drill"]:
                perms += [sm.add_permission_view_menu(permission, view) for permission, view in DRILL_GRANTS]
            datasets = db.session.query(SqlaTable).filter(SqlaTable.uuid.in_(grant["datasets"])).all()
            missing = set(grant["datasets"]) - {str(d.uuid) for d in datasets}
            if missing:
                raise SystemExit(f"role {name}: datasets not imported: {sorted(missing)}")
            for dataset in datasets:
                perms.append(sm.add_permission_view_menu("datasource_access", dataset.perm))
            if grant["sql_lab"]:
                perms += sql_lab
                for database in {d.database for d in datasets}:
                    perms.append(sm.add_permission_view_menu("database_access", database.perm))
            role.permissions = list(dict.fromkeys(perms))
            roles[name] = role
        dashboards = db.session.query(Dashboard).all()
        for dashboard in dashboards:
            granted = [roles[n] for n, g in spec["roles"].items() if str(dashboard.uuid) in g["dashboards"]]
            others = [r for r in dashboard.roles if r.name not in roles]
            dashboard.roles = others + granted
            dashboard.published = True
        for user in spec["users"]:
            role = roles[user["role"]]
            found = sm.find_user(username=user["username"])
            if found is None:
                sm.add_user(user["username"], user["username"].title(), "Demo", f"{user['username']}@localhost", role, password=user["password"])
            else:
                found.roles = [role]
                found.password = generate_password_hash(user["password"])
                found.active = True
        db.session.commit()
        print(f"imported {', '.join(f'{n} {k}' for k, n in imported.items())}; roles {', '.join(roles)} applied to {len(dashboards)} dashboards; users {', '.join(u['username'] for u in spec['users'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
