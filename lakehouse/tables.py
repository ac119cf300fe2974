"""Every table of the lakehouse, declared once.

A declaration names the table and its layer, its schema file (``schemas/``), its expectations suite
(``expectations/``), its upstream tables, the job that writes it, its keys, partitioning and Delta
properties. Jobs, the writer, the catalog and the tests read these declarations; nothing restates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from pyspark.sql import types as T

from lakehouse.paths import EXPECTATIONS_DIR
from lakehouse.schemas import load_schema
from lakehouse.sources.databases import SNAPSHOT_STAMP_SCHEMA, PrivateColumn, SourceTable, source_databases

LAYERS = ("bronze", "silver", "gold", "quality", "ops")
QUARANTINE_SCHEMA_FILE = "quarantine.yaml"


@dataclass(frozen=True)
class TableDeclaration:
    """What a table is: identity, shape, checks, inputs and storage options."""

    name: str
    description: str
    schema_file: str
    job: str | None  # the job in jobs/ that writes it; None for tables the platform itself keeps
    upstreams: tuple[str, ...] = ()
    expectations_file: str | None = None
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict, hash=False)
    has_quarantine: bool = False
    stamp_schema_file: str | None = None  # columns appended after the schema file's (e.g. snapshot stamps)
    private_columns: tuple[PrivateColumn, ...] = ()  # schema-file columns replaced by pseudonyms or dropped

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def schema(self) -> T.StructType:
        schema = _pseudonymised(load_schema(self.schema_file), self.private_columns)
        if self.stamp_schema_file:
            schema = T.StructType([*schema.fields, *load_schema(self.stamp_schema_file).fields])
        return schema

    @property
    def source_schema(self) -> T.StructType:
        """The columns of the schema file alone, without appended stamp columns."""
        return load_schema(self.schema_file)

    @property
    def expectations_path(self):
        return EXPECTATIONS_DIR / self.expectations_file if self.expectations_file else None

    @property
    def quarantine(self) -> "TableDeclaration":
        """The declaration of this table's quarantine table (``<name>_quarantine``)."""
        if not self.has_quarantine:
            raise ValueError(f"{self.name} declares no quarantine table")
        return TableDeclaration(
            name=f"{self.name}_quarantine",
            description=f"Rows kept out of {self.name}, each with the reason.",
            schema_file=QUARANTINE_SCHEMA_FILE,
            job=self.job,
            upstreams=self.upstreams,
        )


def _pseudonymised(schema: T.StructType, private: tuple[PrivateColumn, ...]) -> T.StructType:
    """``schema`` with each private column renamed to its pseudonym (same type) or dropped."""
    by_name = {column.name: column for column in private}
    fields = []
    for f in schema.fields:
        column = by_name.get(f.name)
        if column is None:
            fields.append(f)
        elif column.silver_name is not None:
            comment = f"keyed hash (pseudonym, purpose '{column.purpose}') of the source's {f.name}"
            fields.append(T.StructField(column.silver_name, f.dataType, f.nullable, {"comment": comment}))
    return T.StructType(fields)


_CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
# Training tables are read file by file by the Arrow loader (lakehouse/loaders/arrow_loader.py), which
# cannot apply deletion vectors: their declarations rule them out (the loader refuses a table that has them).
_LOADER_READABLE = {"delta.enableDeletionVectors": "false"}

DECLARATIONS: tuple[TableDeclaration, ...] = (
    TableDeclaration(
        name="bronze.app_events",
        description="Application event log lines as they arrived, with source file and ingest time.",
        schema_file="bronze/app_events.yaml",
        expectations_file="bronze/app_events.yaml",
        job="ingest_app_events",
    ),
    TableDeclaration(
        name="bronze.access_logs",
        description="Web server access log lines (Apache/Nginx combined format): every line, parsed where it "
        "parses, otherwise kept raw with the reason (rescued).",
        schema_file="bronze/access_logs.yaml",
        expectations_file="bronze/access_logs.yaml",
        job="ingest_access_logs",
    ),
    TableDeclaration(
        name="bronze.image_refs",
        description="Image references from manifests (CSV or JSON lines): object URI, label and metadata, "
        "one row per manifest line; the objects themselves stay in object storage.",
        schema_file="bronze/image_refs.yaml",
        expectations_file="bronze/image_refs.yaml",
        job="ingest_image_manifests",
    ),
    TableDeclaration(
        name="silver.image_references",
        description="Every readable image reference: object URI, the content hash of its bytes, label, metadata.",
        schema_file="silver/image_references.yaml",
        expectations_file="silver/image_references.yaml",
        job="build_silver_images",
        upstreams=("bronze.image_refs",),
        keys=("object_uri",),
    ),
    TableDeclaration(
        name="silver.images",
        description="Validated images, one row per distinct content (sha256): bytes, format, width, height; "
        "unreadable, missing and non-image objects go to the quarantine table with the reason.",
        schema_file="silver/images.yaml",
        expectations_file="silver/images.yaml",
        job="build_silver_images",
        upstreams=("bronze.image_refs",),
        keys=("content_hash",),
        has_quarantine=True,
    ),
    TableDeclaration(
        name="silver.image_predictions",
        description="What the image classifier sees in each image: class, label, confidence and all class "
        "probabilities, one row per image and model version (the hash of the weights); images that do not "
        "decode go to the quarantine table with the reason.",
        schema_file="silver/image_predictions.yaml",
        expectations_file="silver/image_predictions.yaml",
        job="build_image_predictions",
        upstreams=("silver.images",),
        keys=("content_hash", "model_version"),
        has_quarantine=True,
    ),
    TableDeclaration(
        name="silver.events",
        description="Application events, typed and deduplicated on event_id.",
        schema_file="silver/events.yaml",
        expectations_file="silver/events.yaml",
        job="build_silver_events",
        upstreams=("bronze.app_events",),
        keys=("event_id",),
        partition_by=("event_date",),
        properties=_CHANGE_FEED,
        has_quarantine=True,
    ),
    TableDeclaration(
        name="gold.user_activity_daily",
        description="Per user and UTC day: counts of logins, views, likes and uploads.",
        schema_file="gold/user_activity_daily.yaml",
        expectations_file="gold/user_activity_daily.yaml",
        job="build_gold_user_activity",
        upstreams=("silver.events",),
        keys=("user_key", "event_date"),
        properties=_LOADER_READABLE,
    ),
    # build_analyst_marts writes the three marts below; the pipeline runs a job where its first table falls
    # in dependency order, so every upstream of all three must come before that one.
    TableDeclaration(
        name="silver.access_requests",
        description="Web requests from the access logs, typed, one row per request; client addresses and users "
        "are keyed hashes (raw values stay in bronze); unparsed lines go to the quarantine table with the reason.",
        schema_file="silver/access_requests.yaml",
        expectations_file="silver/access_requests.yaml",
        job="build_silver_access_requests",
        upstreams=("bronze.access_logs",),
        keys=("request_id",),
        partition_by=("request_date",),
        has_quarantine=True,
    ),
    TableDeclaration(
        name="gold.flight_delays_monthly",
        description="Per carrier and month: flights, cancellations, mean/median/p90 delays and on-time share.",
        schema_file="gold/flight_delays_monthly.yaml",
        expectations_file="gold/flight_delays_monthly.yaml",
        job="build_analyst_marts",
        upstreams=("silver.flights", "silver.airlines"),
        keys=("carrier", "year", "month"),
    ),
    TableDeclaration(
        name="gold.daily_active_users",
        description="Per UTC day: distinct active users, events, and events of each type.",
        schema_file="gold/daily_active_users.yaml",
        expectations_file="gold/daily_active_users.yaml",
        job="build_analyst_marts",
        upstreams=("silver.events",),
        keys=("event_date",),
    ),
    TableDeclaration(
        name="gold.http_status_daily",
        description="Per UTC day and HTTP status: requests, clients, bytes and the status's share of the day.",
        schema_file="gold/http_status_daily.yaml",
        expectations_file="gold/http_status_daily.yaml",
        job="build_analyst_marts",
        upstreams=("silver.access_requests",),
        keys=("request_date", "status"),
    ),
    TableDeclaration(
        name="gold.photo_popularity_training",
        description="The nightly training table of the photo popularity model: one row per photo with its metadata, "
        "the author's activity as of the upload (point-in-time correct), the classifier's outputs, the image "
        "and the label (likes in the first 24 hours).",
        schema_file="gold/photo_popularity_training.yaml",
        expectations_file="gold/photo_popularity_training.yaml",
        job="build_gold_photo_popularity",
        upstreams=(
            "silver.photos", "silver.users", "silver.follows_history", "silver.events",
            "silver.image_references", "silver.images", "silver.image_predictions",
        ),
        keys=("photo_id",),
        properties=_LOADER_READABLE,
    ),
    TableDeclaration(
        name="quality.results",
        description="Every quality rule's outcome for every validation run (appended by the quality gate).",
        schema_file="quality/results.yaml",
        job=None,
    ),
    TableDeclaration(
        name="ops.tags",
        description="Named versions of tables: a tag points at one version of one table.",
        schema_file="ops/tags.yaml",
        job=None,
        keys=("table_name", "tag"),
    ),
    TableDeclaration(
        name="ops.runs",
        description="Every step of every `lakehouse run`: status, the input and output versions, code and "
        "configuration fingerprints, rows and error; a step whose fingerprint matches its last success is skipped.",
        schema_file="ops/runs.yaml",
        job=None,
    ),
)


def snapshot_declaration(table: SourceTable) -> TableDeclaration:
    """``bronze.<database>_<table>``: every snapshot of a source table, stamped (``conf/databases.yaml``)."""
    return TableDeclaration(
        name=table.bronze_name,
        description=f"Snapshots of {table.database}.{table.name} as they were read (JDBC, pg_dump or CSV), "
        "each stamped with its snapshot id, time and source.",
        schema_file=table.columns_file,
        stamp_schema_file=SNAPSHOT_STAMP_SCHEMA,
        expectations_file="bronze/snapshot.yaml",
        job="ingest_database",
        keys=table.keys,
        has_quarantine=True,
    )


def current_state_declaration(table: SourceTable) -> TableDeclaration:
    """``silver.<table>``: one row per key as of the latest snapshot (type 1), private columns pseudonymised."""
    return TableDeclaration(
        name=table.silver_name,
        description=f"Current state of {table.database}.{table.name}: one row per key as of the latest snapshot "
        "(updated and deleted by MERGE), personal columns replaced by keyed hashes.",
        schema_file=table.columns_file,
        stamp_schema_file=CURRENT_STATE_STAMP_SCHEMA,
        private_columns=table.private,
        expectations_file="silver/snapshot_current.yaml",
        job="build_silver_snapshots",
        upstreams=(table.bronze_name,),
        keys=table.silver_keys,
        has_quarantine=True,
    )


def history_declaration(table: SourceTable) -> TableDeclaration:
    """``silver.<table>_history``: every version of every key with its validity interval (type 2)."""
    return TableDeclaration(
        name=table.history_name,
        description=f"History of {table.database}.{table.name}: each version of each key valid from one snapshot "
        "to the next that changed or deleted it (valid_to null while current), personal columns pseudonymised.",
        schema_file=table.columns_file,
        stamp_schema_file=HISTORY_STAMP_SCHEMA,
        private_columns=table.private,
        job="build_silver_snapshots",
        upstreams=(table.bronze_name,),
        keys=(*table.silver_keys, "valid_from"),
    )


CURRENT_STATE_STAMP_SCHEMA = "silver/_current_state.yaml"
HISTORY_STAMP_SCHEMA = "silver/_history.yaml"
_SOURCE_TABLES = [table for database in source_databases().values() for table in database.tables]
SNAPSHOT_DECLARATIONS: tuple[TableDeclaration, ...] = tuple(snapshot_declaration(table) for table in _SOURCE_TABLES)
SILVER_SNAPSHOT_DECLARATIONS: tuple[TableDeclaration, ...] = tuple(
    declaration
    for table in _SOURCE_TABLES
    for declaration in (current_state_declaration(table), history_declaration(table))
)
DECLARATIONS = SNAPSHOT_DECLARATIONS + SILVER_SNAPSHOT_DECLARATIONS + DECLARATIONS


def all_tables(include_quarantine: bool = True) -> list[TableDeclaration]:
    """Every declared table in declaration order, quarantine tables right after their parent."""
    tables = []
    for declaration in DECLARATIONS:
        tables.append(declaration)
        if include_quarantine and declaration.has_quarantine:
            tables.append(declaration.quarantine)
    return tables


def get_table(name: str) -> TableDeclaration:
    """The declaration of ``name`` (``layer.table``); ``KeyError`` listing the known names otherwise."""
    for declaration in all_tables():
        if declaration.name == name:
            return declaration
    known = ", ".join(d.name for d in all_tables())
    raise KeyError(f"no table named {name!r}; declared tables: {known}")
