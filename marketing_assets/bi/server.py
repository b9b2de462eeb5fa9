"""Set up and serve the dashboards: ``python -m marketing_assets.bi setup|serve|up``. No Dagster import.

Superset runs in its own virtual environment (``MARKETING_BI_VENV``, default ``.venv-bi``) because its pins
conflict with the project's (see ``deploy/superset/requirements.txt``). This module runs in the project's venv
and drives Superset's CLI in that venv:

1. ``ensure_venv`` creates the BI venv and installs ``deploy/superset/requirements.txt`` under
   ``constraints.txt`` when it is missing or those files changed.
2. ``prepare`` rebuilds the read-only BI database (DuckDB views over the published extracts), generates the
   bundle from ``dashboards.yaml``, upgrades and initialises Superset's metadata, creates the admin, imports
   the bundle and applies the roles, the dashboards' role grants and the demo users
   (``deploy/superset/superset_apply.py``, run by the BI venv's Python).
3. ``serve`` runs Superset under gunicorn on 127.0.0.1:``BI_PORT`` (default 8088).

Everything Superset keeps lives in ``MARKETING_BI_HOME`` (default next to the warehouse:
``data/.superset/warehouse`` for ``data/warehouse.duckdb``, like the Dagster history).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "deploy" / "superset" / "requirements.txt"
CONSTRAINTS = REPO / "deploy" / "superset" / "constraints.txt"
CONFIG = REPO / "deploy" / "superset" / "superset_config.py"
APPLY_SCRIPT = REPO / "deploy" / "superset" / "superset_apply.py"
DEFAULT_PORT = 8088
DEMO_PASSWORD = "marketing-demo"  # documented; accepted only while the landing zone holds the synthetic demo data
ROLES = ("executive", "marketing", "analyst")
ADMIN = "admin"


class BiSetupError(RuntimeError):
    """A setting or step of the dashboards' setup failed; the message says which and what to do."""


@dataclasses.dataclass(frozen=True)
class BiSettings:
    venv: Path
    home: Path
    port: int
    landing_dir: Path
    extracts_dir: Path
    warehouse: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BiSettings:
        env = os.environ if env is None else env
        warehouse = Path(os.path.abspath(Path(env.get("MARKETING_WAREHOUSE", "data/warehouse.duckdb")).expanduser()))
        home = env.get("MARKETING_BI_HOME") or str(warehouse.parent / ".superset" / warehouse.stem)
        port = env.get("BI_PORT", str(DEFAULT_PORT))
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise BiSetupError(f"BI_PORT must be a TCP port number, got {port!r}")
        return cls(
            venv=Path(env.get("MARKETING_BI_VENV", ".venv-bi")).expanduser().absolute(),
            home=Path(home).expanduser().absolute(),
            port=int(port),
            landing_dir=Path(env.get("MARKETING_LANDING_DIR", "data/landing")).expanduser().absolute(),
            extracts_dir=Path(env.get("MARKETING_EXTRACTS_DIR", "data/extracts")).expanduser().absolute(),
            warehouse=warehouse,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bi_database(self) -> Path:
        return self.home / "marketing_bi.duckdb"  # not extracts.duckdb: the catalog would clash with the schema

    @property
    def bundle(self) -> Path:
        return self.home / "dashboards_bundle.zip"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


def dashboard_url(base_url: str, slug: str) -> str:
    return f"{base_url}/superset/dashboard/{slug}/"


# ------------------------------------------------------------------------------------------- the BI venv


def _install_stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes() + CONSTRAINTS.read_bytes()).hexdigest()


def ensure_venv(settings: BiSettings, log=print) -> None:
    """Create the BI venv and install Superset into it, unless it is installed from the same requirement files."""
    stamp = settings.venv / ".installed-bi"
    if stamp.is_file() and stamp.read_text() == _install_stamp() and settings.bin("superset").exists():
        return
    if not settings.bin("python").exists():
        log(f"creating the dashboards' virtual environment {settings.venv}")
        subprocess.run([sys.executable, "-m", "venv", str(settings.venv)], check=True)
    log("installing Superset into it (deploy/superset/requirements.txt, about a minute)")
    pip = [str(settings.bin("python")), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS)], check=True)
    stamp.write_text(_install_stamp())


# ----------------------------------------------------------------------------------------------- secrets


def _secret_file(path: Path, make) -> str:
    """Read a secret kept in the BI home, creating it owner-readable only on first use."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def is_demo(settings: BiSettings) -> bool:
    from marketing_assets.lib.publish import is_demo_landing

    return is_demo_landing(settings.landing_dir)


def demo_password(settings: BiSettings, env: Mapping[str, str] | None = None) -> str:
    """The password of the per-role users: ``MARKETING_BI_DEMO_PASSWORD``; its documented default only on demo data."""
    env = os.environ if env is None else env
    value = env.get("MARKETING_BI_DEMO_PASSWORD")
    if value:
        return value
    if is_demo(settings):
        return DEMO_PASSWORD
    raise BiSetupError(
        "MARKETING_BI_DEMO_PASSWORD is not set: the landing zone holds your own data, so the per-role users "
        "(executive, marketing, analyst) need a password of your choosing. Set it and run `make dashboards` again."
    )


def admin_password(settings: BiSettings, env: Mapping[str, str] | None = None) -> str:
    """``MARKETING_BI_ADMIN_PASSWORD``, else a random one kept in ``<BI home>/admin_password`` (owner-readable)."""
    env = os.environ if env is None else env
    return env.get("MARKETING_BI_ADMIN_PASSWORD") or _secret_file(settings.home / "admin_password", lambda: secrets.token_urlsafe(18))


def superset_env(settings: BiSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        SUPERSET_CONFIG_PATH=str(CONFIG),
        MARKETING_BI_HOME=str(settings.home),
        SUPERSET_SECRET_KEY=os.environ.get("SUPERSET_SECRET_KEY") or _secret_file(settings.home / "secret_key", lambda: secrets.token_urlsafe(42)),
        FLASK_APP="superset",
        SUPERSET_LOG_LEVEL=os.environ.get("SUPERSET_LOG_LEVEL", "warning"),
    )
    return env


def _superset(settings: BiSettings, *args: str, input: str | None = None) -> str:
    result = subprocess.run(
        [str(settings.bin("superset")), *args], env=superset_env(settings), input=input, capture_output=True, text=True
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        shown = [("***" if i and args[i - 1] == "--password" else a) for i, a in enumerate(args)]
        raise BiSetupError(f"`superset {' '.join(shown)}` failed:\n{tail}")
    return result.stdout


# ------------------------------------------------------------------------------------------------- steps


def build_bi_database(settings: BiSettings) -> list[str]:
    """The read-only DuckDB file of views over every published extract (rebuilt atomically)."""
    from marketing_assets.extracts import EXTRACT_COLUMNS
    from marketing_assets.lib.bi_database import build_bi_database as build
    from marketing_assets.lib.publish import extract_files

    return build(settings.bi_database, {name: extract_files(settings.extracts_dir, name)["parquet"] for name in EXTRACT_COLUMNS})


def security_spec(settings: BiSettings, env: Mapping[str, str] | None = None) -> dict:
    """What ``superset_security.py`` applies: per role its dashboards and datasets (by UUID), and the users."""
    from marketing_assets.bi import bundle

    grants = bundle.role_grants()
    password = demo_password(settings, env)
    return {
        "roles": {
            role: {
                "dashboards": [str(bundle.dashboard_uuid(slug)) for slug in grants[role]["dashboards"]],
                "datasets": [str(bundle.dataset_uuid(name)) for name in grants[role]["datasets"]],
                "drill": grants[role]["row_level"],
                "sql_lab": grants[role]["sql_lab"],
            }
            for role in grants
        },
        "users": [{"username": role, "role": role, "password": password} for role in grants],
    }


def prepare(settings: BiSettings, log=print) -> None:
    from marketing_assets.bi import bundle

    settings.home.mkdir(parents=True, exist_ok=True)
    views = build_bi_database(settings)
    if not views:
        raise BiSetupError(f"no published extract in {settings.extracts_dir}: run `make run` first")
    log(f"BI database {settings.bi_database}: {len(views)} views over the extracts in {settings.extracts_dir}")
    bundle.build_bundle(settings.bundle, settings.bi_database)
    spec = security_spec(settings)  # fails early when a password is missing
    _superset(settings, "db", "upgrade")
    _superset(settings, "init")
    admin = admin_password(settings)
    users = _superset(settings, "fab", "list-users")
    if not re.search(rf"^username:{re.escape(ADMIN)}\s*\|", users, re.MULTILINE):
        _superset(settings, "fab", "create-admin", "--username", ADMIN, "--firstname", "Marketing", "--lastname", "Admin",
                  "--email", "admin@localhost", "--password", admin)
    result = subprocess.run(
        [str(settings.bin("python")), str(APPLY_SCRIPT)], env=superset_env(settings),
        input=json.dumps({**spec, "bundle": str(settings.bundle), "owner": ADMIN}),
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise BiSetupError("importing the bundle or applying roles and users failed:\n" + "\n".join(result.stderr.strip().splitlines()[-15:]))
    log("\n".join(line for line in result.stdout.strip().splitlines() if not line.startswith("Loaded your LOCAL configuration")))


def serve_command(settings: BiSettings, workers: int | None = None) -> list[str]:
    """gunicorn on the loopback interface; a dashboard queries all its charts at once, so one worker process per
    core plus one (Python threads share one core per process), 4 threads each."""
    workers = workers or min(8, (os.cpu_count() or 1) + 1)
    return [
        str(settings.bin("gunicorn")), "--bind", f"127.0.0.1:{settings.port}", "--workers", str(workers),
        "--worker-class", "gthread", "--threads", "4", "--timeout", "120", "--limit-request-line", "0",
        "--limit-request-field_size", "0", "--log-level", "warning", "superset.app:create_app()",
    ]


def serve(settings: BiSettings) -> None:
    """Run Superset in the foreground (replaces this process)."""
    cmd = serve_command(settings)
    os.execve(cmd[0], cmd, superset_env(settings))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m marketing_assets.bi", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "serve", "up"], help="setup: install, import, roles; serve: run the server; up: both")
    args = parser.parse_args(argv)
    try:
        settings = BiSettings.from_env()
        if args.command in ("setup", "up"):
            ensure_venv(settings)
            prepare(settings)
            from marketing_assets.bi import bundle

            print("dashboards (users executive, marketing, analyst; password MARKETING_BI_DEMO_PASSWORD, on demo data "
                  f"'{DEMO_PASSWORD}' unless set):")
            for slug in bundle.load_spec()["dashboards"]:
                print(f"  {dashboard_url(settings.url, slug)}")
        if args.command in ("serve", "up"):
            print(f"Superset on {settings.url} (Ctrl-C stops it)", flush=True)
            serve(settings)
    except BiSetupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
