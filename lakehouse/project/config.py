"""Load an environment's YAML (``conf/<environment>.yaml`` of a project) into one typed, read-only object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from lakehouse.project import find_project_root, load_project
from lakehouse.project.layout import default_conf_file

# Environment variables that override single values of the YAML (no secret ever lives in conf/).
ENV_OVERRIDES = {
    "LAKEHOUSE_WAREHOUSE": ("paths", "warehouse"),
    "LAKEHOUSE_LANDING": ("paths", "landing"),
    "LAKEHOUSE_CHECKPOINTS": ("paths", "checkpoints"),
    "LAKEHOUSE_LOADER_CACHE": ("paths", "loader_cache"),
    "LAKEHOUSE_SPARK_MASTER": ("spark", "master"),
    "LAKEHOUSE_QUALITY_ENABLED": ("quality", "enabled"),
    "MLFLOW_TRACKING_URI": ("mlflow", "tracking_uri"),
    "LAKEHOUSE_PG_HOST": ("postgres", "host"),
    "LAKEHOUSE_PG_PORT": ("postgres", "port"),
    "LAKEHOUSE_PG_DATA_DIR": ("postgres", "data_dir"),
    "LAKEHOUSE_SCALE": ("scenario", "scale"),
    "LAKEHOUSE_METASTORE": ("catalog", "metastore"),
}
# Environment variables that set one Spark setting (``spark.conf``), winning over the YAML's value.
SPARK_CONF_OVERRIDES = {
    "LAKEHOUSE_S3_ENDPOINT": "spark.hadoop.fs.s3a.endpoint",  # e.g. the local `lakehouse s3-server`
}


class ConfigError(ValueError):
    """A configuration file is missing, malformed or incomplete."""


@dataclass(frozen=True)
class ScenarioConfig:
    """Knobs of the generated photo-sharing scenario."""

    seed: int = 42
    scale: float = 1.0
    bad_line_rate: float = 0.01
    duplicate_rate: float = 0.02


@dataclass(frozen=True)
class PostgresConfig:
    """Where the application database server is. With ``data_dir`` set, the project starts and stops
    that server itself on 127.0.0.1 (``lakehouse db start``); without it, the server is someone else's."""

    host: str = "127.0.0.1"
    port: int = 54329
    user: str = "lakehouse"
    data_dir: str | None = None
    # The role's password, one line in a file of mode 0600 (generated there for a managed server, default
    # .cache/secrets/postgres.password); without one, LAKEHOUSE_PG_PASSWORD
    # (lakehouse.services.postgres.server_password).
    password_file: str | None = None

    def jdbc_url(self, database: str) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{database}"


@dataclass(frozen=True)
class CatalogConfig:
    """Where table names live: ``postgres`` (a Hive metastore in ``database`` on the ``postgres:`` server,
    shared by every process) or ``in-memory`` (one process's own catalog)."""

    metastore: str = "postgres"
    database: str = "lakehouse_metastore"


@dataclass(frozen=True)
class PrivacyConfig:
    """Where the pseudonymisation key comes from when ``LAKEHOUSE_PSEUDONYM_KEY`` is not set: a local
    file generated once (``None``: the variable is required)."""

    key_file: str | None = None


@dataclass(frozen=True)
class QualityConfig:
    """How quality gates run (they always run in production; switching them off is for benchmarks)."""

    enabled: bool = True
    data_docs: bool = True
    # Render the site after each validation; a job (lakehouse.engine.job.run_job) turns this off and renders once,
    # and a pipeline run (lakehouse.engine.orchestration.run_pipeline) turns both off and renders once at its end:
    # the site is re-rendered from every stored result each time, about 2 s however little changed.
    docs_per_validation: bool = True
    docs_per_job: bool = True


@dataclass(frozen=True)
class RetentionConfig:
    """VACUUM policy: hours that removed files stay on disk for time travel, per layer.

    Tagged versions are always kept readable, whatever these say; ``log_days`` is how long the
    transaction log (needed to time-travel at all) is kept.
    """

    hours_by_layer: Mapping[str, float] = field(default_factory=lambda: {"default": 168.0})
    log_days: int = 3650

    def hours_for(self, layer: str) -> float:
        return float(self.hours_by_layer.get(layer, self.hours_by_layer.get("default", 168.0)))


@dataclass(frozen=True)
class LakehouseConfig:
    """One environment: how to start Spark and where every folder is."""

    environment: str
    spark_master: str | None
    app_name: str
    spark_conf: Mapping[str, str]
    warehouse: str
    landing: str
    checkpoints: str
    loader_cache: str
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    mlflow_tracking_uri: str | None = None
    postgres: PostgresConfig = field(default_factory=PostgresConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    source_file: str | None = None
    project_root: str = ""  # the project this environment belongs to (relative paths resolve against it)

    @property
    def project(self):
        """The project's declarations (:class:`lakehouse.project.Project`), read once per process."""
        return load_project(self.project_root)

    def table(self, name: str):
        """The declaration of the table ``name`` (``layer.table``) in this project."""
        return self.project.table(name)

    def tables(self, include_quarantine: bool = True) -> list:
        """Every table the project declares, upstreams first."""
        return self.project.tables(include_quarantine)

    def table_path(self, table_name: str) -> str:
        """Storage location of a table named ``layer.table``: ``<warehouse>/<layer>/<table>``."""
        layer, _, short_name = table_name.partition(".")
        if not short_name:
            raise ValueError(f"table names are 'layer.table', got {table_name!r}")
        return _join(self.warehouse, layer, short_name)

    def checkpoint_path(self, job_name: str) -> str:
        """Streaming checkpoint folder of one job."""
        return _join(self.checkpoints, job_name)

    def landing_path(self, source: str) -> str:
        """Folder where raw files of one source arrive."""
        return _join(self.landing, source)


def load_config(
    conf_file: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    project: str | os.PathLike | None = None,
) -> LakehouseConfig:
    """Read an environment of a project, apply ``LAKEHOUSE_*`` overrides, resolve paths.

    The project is ``project``, else ``$LAKEHOUSE_PROJECT``, else the one holding ``conf_file``, else the one
    around the current folder (:func:`lakehouse.project.find_project_root`). The environment is
    ``conf_file``, else ``$LAKEHOUSE_CONF``, else the project's ``conf/local.yaml``. Relative local paths are
    resolved against the project root, so jobs behave the same whatever the current directory is. URIs
    with a scheme (``s3a://``, ``file:``) are kept as they are.
    """
    environ = os.environ if environ is None else environ
    chosen = conf_file or environ.get("LAKEHOUSE_CONF")
    try:
        root = find_project_root(project, chosen, environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    path = Path(chosen) if chosen else default_conf_file(root)
    if chosen and not path.is_absolute() and not path.is_file() and (root / path).is_file():
        path = root / path  # `--conf-file conf/local.yaml` given from outside the project folder
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")

    for variable, (section, key) in ENV_OVERRIDES.items():
        if environ.get(variable):
            value = environ[variable]
            if section == "quality":
                value = value.lower() not in ("0", "false", "no", "off")
            raw[section] = {**(raw.get(section) or {}), key: value}  # `mlflow:` with only comments is None

    spark = raw.get("spark") or {}
    paths = raw.get("paths") or {}
    if "warehouse" not in paths:
        raise ConfigError(f"{path}: paths.warehouse is required")

    def _resolve(location: str) -> str:
        return _resolved(location, root)

    warehouse = _resolve(paths["warehouse"])
    return LakehouseConfig(
        environment=str(raw.get("environment", path.stem)),
        spark_master=spark.get("master"),
        app_name=str(spark.get("app_name", "lakehouse")),
        spark_conf={
            **{str(k): str(v) for k, v in (spark.get("conf") or {}).items()},
            **{key: environ[variable] for variable, key in SPARK_CONF_OVERRIDES.items() if environ.get(variable)},
        },
        warehouse=warehouse,
        landing=_resolve(paths.get("landing", "data/landing")),
        checkpoints=_resolve(paths.get("checkpoints") or _join(warehouse, "_checkpoints")),
        loader_cache=_resolve(paths.get("loader_cache") or _join(warehouse, "_cache", "petastorm")),
        scenario=_scenario(raw.get("scenario") or {}, path),
        quality=_quality(raw.get("quality") or {}, path),
        retention=_retention(raw.get("retention") or {}, path),
        mlflow_tracking_uri=(raw.get("mlflow") or {}).get("tracking_uri")
        or f"sqlite:///{warehouse.removeprefix('file:')}/_mlflow/mlflow.db",
        postgres=_postgres(raw.get("postgres") or {}, path, root),
        privacy=_privacy(raw.get("privacy") or {}, path, root),
        catalog=_catalog(raw.get("catalog") or {}, path),
        source_file=str(path.resolve()),
        project_root=str(root),
    )


def _scenario(raw: Mapping[str, Any], path: Path) -> ScenarioConfig:
    unknown = set(raw) - set(ScenarioConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{path}: unknown scenario keys: {sorted(unknown)}")
    defaults = ScenarioConfig()
    return ScenarioConfig(
        seed=int(raw.get("seed", defaults.seed)),
        scale=float(raw.get("scale", defaults.scale)),
        bad_line_rate=float(raw.get("bad_line_rate", defaults.bad_line_rate)),
        duplicate_rate=float(raw.get("duplicate_rate", defaults.duplicate_rate)),
    )


def _quality(raw: Mapping[str, Any], path: Path) -> QualityConfig:
    unknown = set(raw) - set(QualityConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{path}: unknown quality keys: {sorted(unknown)}")
    return QualityConfig(enabled=bool(raw.get("enabled", True)), data_docs=bool(raw.get("data_docs", True)))


DEFAULT_PG_PASSWORD_FILE = ".cache/secrets/postgres.password"  # of a managed server (postgres.data_dir set)


def _postgres(raw: Mapping[str, Any], path: Path, root: Path) -> PostgresConfig:
    unknown = set(raw) - set(PostgresConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{path}: unknown postgres keys: {sorted(unknown)}")
    defaults = PostgresConfig()
    try:
        port = int(raw.get("port", defaults.port))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: postgres.port must be a number: {exc}") from exc
    return PostgresConfig(
        host=str(raw.get("host", defaults.host)),
        port=port,
        user=str(raw.get("user", defaults.user)),
        data_dir=_resolved(raw["data_dir"], root) if raw.get("data_dir") else None,
        password_file=_resolved(raw["password_file"], root)
        if raw.get("password_file")
        else _resolved(DEFAULT_PG_PASSWORD_FILE, root)
        if raw.get("data_dir")
        else None,
    )


def _privacy(raw: Mapping[str, Any], path: Path, root: Path) -> PrivacyConfig:
    unknown = set(raw) - set(PrivacyConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{path}: unknown privacy keys: {sorted(unknown)}")
    return PrivacyConfig(key_file=_resolved(raw["key_file"], root) if raw.get("key_file") else None)


def _catalog(raw: Mapping[str, Any], path: Path) -> CatalogConfig:
    unknown = set(raw) - set(CatalogConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{path}: unknown catalog keys: {sorted(unknown)}")
    defaults = CatalogConfig()
    metastore = str(raw.get("metastore", defaults.metastore))
    if metastore not in ("postgres", "in-memory"):
        raise ConfigError(f"{path}: catalog.metastore must be 'postgres' or 'in-memory', got {metastore!r}")
    return CatalogConfig(metastore=metastore, database=str(raw.get("database", defaults.database)))


def _retention(raw: Mapping[str, Any], path: Path) -> RetentionConfig:
    raw = dict(raw)
    log_days = int(raw.pop("log_days", 3650))
    try:
        hours = {str(layer): float(value) for layer, value in raw.items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: retention values are hours per layer: {exc}") from exc
    return RetentionConfig(hours_by_layer=hours or {"default": 168.0}, log_days=log_days)


def _has_scheme(location: str) -> bool:
    return "://" in location or location.startswith("file:")


def _resolved(location: str, root: Path) -> str:
    location = str(location)
    if _has_scheme(location):
        return location.rstrip("/")
    return str((root / os.path.expanduser(location)).resolve())


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])
