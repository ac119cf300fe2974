"""Read a JDBC database's own catalog: its tables, their columns and Spark types, keys, size and personal columns.

This is what ``lakehouse source add-database`` writes a declaration from. Which database it is comes from
the JDBC URL (:data:`ENGINES`: PostgreSQL, SQLite, MariaDB, MySQL); the driver class and the URL come from
the declaration, never from code.

How each fact is obtained
-------------------------
- **Types**: asked of Spark itself. ``spark.read.format("jdbc").option("dbtable", t).load().schema`` runs
  only the dialect's schema query (``SELECT * FROM t WHERE 1=0``), so the declared type of every column is
  exactly what the snapshot reader gets for it (:func:`spark_type_name` writes it as a type name
  :mod:`lakehouse.project.schemas` parses). SQLite is the exception, below.
- **Keys, nullability, comments, table lists**: ``java.sql.DatabaseMetaData`` (``getTables``,
  ``getColumns``, ``getPrimaryKeys``, ``getIndexInfo``) on a connection opened through py4j. The driver
  class is loaded by Spark's own class loader (the one holding ``spark.jars``) and asked for a connection
  directly, bypassing ``java.sql.DriverManager``: no driver needs to be on the JVM's class path, and the
  Spark reader itself loads it the same way (its ``driver`` option).
- **Row count**: ``SELECT count(*)`` (exact; on a very large table this is a full scan, once).
- **Samples** for personal-data detection: the first ``sample_rows`` rows of the text columns whose names
  say nothing, on the same connection (``Statement.setMaxRows``: the database stops there; no Spark job).

A table without a primary key has ``keys == ()``: the caller must refuse it or ask for the keys
(:attr:`TableInfo.unique_keys` lists unique indexes that could serve).

Spark type per engine (Spark 4.1 dialects, checked by ``tests/test_jdbc_introspection.py``)
------------------------------------------------------------------------------------------
PostgreSQL (``PostgresDialect``): int2 -> smallint, int4/serial -> int, int8/bigserial -> bigint,
float4 -> float, float8 -> double, numeric(p,s) -> decimal(p,s), numeric without precision ->
decimal(38,18) (a value with more than 20 integer digits does not fit), bool -> boolean,
date -> date, timestamp and timestamptz -> timestamp (timestamp_ntz only with ``preferTimestampNTZ``),
time -> timestamp (on 1970-01-01), bytea -> binary, text/varchar/char(n)/inet/cidr/uuid/json/jsonb/
interval/money/enums -> string, arrays -> array<element>.
MariaDB/MySQL through MariaDB's driver with a ``jdbc:mysql://host/db?permitMysqlScheme`` URL and
``driver: org.mariadb.jdbc.Driver`` (``MySQLDialect``, checked against MariaDB 10.11): int -> int, INT
UNSIGNED -> bigint, BIGINT UNSIGNED -> decimal(20,0), TINYINT -> tinyint, SMALLINT -> smallint,
TINYINT(1)/BOOLEAN -> boolean, BIT(n>1) -> binary, FLOAT -> float, DOUBLE -> double, DECIMAL(p,s) ->
decimal(p,s), DATE -> date, DATETIME/TIMESTAMP/TIME -> timestamp, YEAR -> date, BLOB -> binary,
TEXT/VARCHAR/JSON/ENUM -> string. Spark has no dialect for ``jdbc:mariadb:`` URLs: it quotes column names
with double quotes, which MariaDB takes for string literals, so :func:`read_options` turns ANSI_QUOTES on
for them (``sessionInitStatement``), and the generic mapping applies (SMALLINT/TINYINT -> int, FLOAT ->
double, BIT(n) -> boolean: lossy for n > 1). Prefer the ``jdbc:mysql:`` form.

SQLite: declared types, not Spark's
-----------------------------------
Spark has no SQLite dialect; its generic mapping of what sqlite-jdbc reports from the declared column
types is wrong for SQLite's dynamic typing: INTEGER -> int (a value past 2^31 wraps around silently, a
text value reads as 0), BIGINT -> decimal(20,0), SMALLINT/TINYINT -> int, NUMERIC/DECIMAL/untyped/unknown
names -> decimal(38,18) (a text value fails the read), DATETIME/DATE -> timestamp/date (text in another
format than ``yyyy-MM-dd HH:mm:ss[.SSS]`` fails the read), BOOLEAN -> boolean ('yes' reads as false).
So for SQLite the reader reads every column as text (:func:`custom_schema`: Spark's ``customSchema``
option; BLOB columns as binary, a rowid partition column as bigint), which is lossless (sqlite-jdbc
renders REAL values with Java's shortest round-trip form), and the declared types below are applied by
the snapshot's casts, which quarantine a value that does not fit instead of corrupting it. Declared type
per column (:func:`sqlite_type`) from SQLite's affinity rules on the declared type name, checked against
the storage classes the table's values actually have (one scan, ``typeof()``):

- INTEGER affinity (name contains INT) -> bigint (SQLite integers are 64-bit, whatever the name says);
- TEXT affinity (CHAR, CLOB, TEXT) -> string; REAL affinity (REAL, FLOA, DOUB) -> double;
- BOOL* -> boolean; DATETIME/TIMESTAMP -> timestamp; DATE -> date (dates are text in SQLite: declared
  so only when every text value parses as an ISO-8601 date/time; all-integer -> bigint (epoch numbers));
- DECIMAL(p,s)/NUMERIC(p,s) -> decimal(p,s);
- NUMERIC, DECIMAL, untyped and unknown names -> by the values: all integers -> bigint, numbers -> double,
  all BLOBs -> binary, else string;
- a column whose values do not fit its declared type (text in an INTEGER column, ...) -> string (or
  double when integers and reals mix), so the first snapshot quarantines nothing.

Personal columns (:func:`guess_private_columns`)
------------------------------------------------
By name (text columns; phone and IP also integer ones), on the name split into words (``FirstName``,
``first_name`` and ``firstname`` alike): e-mail (email, e_mail, mail, email_address, ...), phone (phone,
telephone, tel, mobile, cell, fax, msisdn, ...), IP address (ip, ipv4, ipv6, ip_address, remote_addr,
client_ip, ...), person name (first/last/middle/given/family/full/display/contact/maiden/nick/user name,
surname, ``<person>_name`` such as customer_name, and a plain ``name`` only in a person-like table: users,
customers, employees, people, contacts, authors, members, staff, ...). By values (text columns, at least
:data:`MIN_SAMPLED_VALUES` non-empty sampled values, at least :data:`VALUE_MATCH_SHARE` of them
matching): e-mail addresses, IPv4/IPv6 addresses (with an optional /prefix), phone numbers (E.164 or
international ``+``/``00`` forms with 7-15 digits, national forms with separators and 10-15 digits).
Default action: keyed hash (``<column>_hash``) for e-mail, phone and IP (they join), drop for person names
(a hash of a name is guessable), hash for any key column. NOT detected: person names by their values,
postal addresses, postcodes, dates of birth, national identifiers, payment card and bank numbers,
free text mentioning persons, ids of persons (user_id, customer_id: declare them with a purpose by hand),
7-digit local phone numbers; false positives are possible (a ``tel_prefix`` text column, ISBN-like values).

Passwords never appear in an exception message: every error raised here is a :class:`JdbcCatalogError`
whose text has the password and the URL's credentials replaced (:func:`redact_url`).
"""

from __future__ import annotations

import ipaddress
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence
from urllib.parse import parse_qsl

from lakehouse.install.jars import JDBC_DRIVERS, MARIADB_JDBC, POSTGRESQL_JDBC, SQLITE_JDBC

# ---------------------------------------------------------------- engines


@dataclass(frozen=True)
class JdbcEngine:
    """A kind of database reachable over JDBC: how its URLs start, its driver class and Maven coordinates.

    ``identifier_quote`` quotes table and column names; ``default_schema`` is the schema used when none is
    given (None: the database the URL names); ``schema_is_catalog``: the driver calls a schema a catalog
    (MariaDB/MySQL databases).
    """

    name: str
    url_prefix: str
    driver_class: str
    maven: str
    identifier_quote: str = '"'
    default_schema: str | None = None
    schema_is_catalog: bool = False

    @property
    def fetched_by_setup(self) -> bool:
        """True when ``lakehouse setup`` fetches this driver (see :mod:`lakehouse.install.jars`)."""
        return self.maven in JDBC_DRIVERS

    def quote(self, identifier: str) -> str:
        """``identifier`` quoted for this database's SQL."""
        q = self.identifier_quote
        return q + identifier.replace(q, q + q) + q


POSTGRESQL = JdbcEngine(
    "postgresql", "jdbc:postgresql:", "org.postgresql.Driver", POSTGRESQL_JDBC, default_schema="public"
)
SQLITE = JdbcEngine("sqlite", "jdbc:sqlite:", "org.sqlite.JDBC", SQLITE_JDBC, default_schema="main")
MARIADB = JdbcEngine(
    "mariadb", "jdbc:mariadb:", "org.mariadb.jdbc.Driver", MARIADB_JDBC, identifier_quote="`", schema_is_catalog=True
)
# MySQL's own Connector/J is GPL and not fetched: use MariaDB's driver (driver: org.mariadb.jdbc.Driver) with
# a jdbc:mysql://...?permitMysqlScheme URL, which also gives Spark's MySQL dialect.
MYSQL = JdbcEngine(
    "mysql",
    "jdbc:mysql:",
    "com.mysql.cj.jdbc.Driver",
    "com.mysql:mysql-connector-j:9.5.0",
    identifier_quote="`",
    schema_is_catalog=True,
)
ENGINES: tuple[JdbcEngine, ...] = (POSTGRESQL, SQLITE, MARIADB, MYSQL)
MARIADB_ANSI_QUOTES = "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')"


def engine_for(url: str) -> JdbcEngine:
    """The engine whose URL prefix ``url`` starts with; ``ValueError`` naming the supported prefixes."""
    lowered = url.strip().lower()
    for engine in ENGINES:
        if lowered.startswith(engine.url_prefix):
            return engine
    prefixes = ", ".join(engine.url_prefix for engine in ENGINES)
    raise ValueError(f"unsupported JDBC URL {redact_url(url)!r}: the URL must start with one of {prefixes}")


def read_options(
    url: str, user: str | None = None, password: str | None = None, driver: str | None = None
) -> dict[str, str]:
    """Options for ``spark.read.format("jdbc")`` (add ``dbtable`` or ``query``; for SQLite also
    :func:`custom_schema`). ``driver`` overrides the engine's driver class."""
    engine = engine_for(url)
    options = {"url": url, "driver": driver or engine.driver_class}
    if engine is not SQLITE:
        options["fetchsize"] = "10000"  # stream rows instead of holding the whole table (PostgreSQL, MariaDB)
    if engine is MARIADB:
        # Spark has no dialect for jdbc:mariadb: URLs and quotes column names with double quotes, which
        # MariaDB reads as string literals unless ANSI_QUOTES is on (every row would hold the column names).
        options["sessionInitStatement"] = MARIADB_ANSI_QUOTES
    if user:
        options["user"] = user
    if password:
        options["password"] = password
    return options


def qualified_name(url: str, table: str, schema: str | None = None) -> str:
    """``schema.table`` quoted for the engine of ``url`` (the engine's default schema when ``schema`` is
    None; the bare table when there is none): what ``dbtable`` takes."""
    engine = engine_for(url)
    schema = schema if schema is not None else engine.default_schema
    return f"{engine.quote(schema)}.{engine.quote(table)}" if schema else engine.quote(table)


# ---------------------------------------------------------------- secrets


class JdbcCatalogError(RuntimeError):
    """The database's catalog could not be read; the message never holds a password."""


_URL_USERINFO = re.compile(r"(//)([^/@?;]*?):([^/@?;]*)@")
_URL_SECRET_PARAMS = re.compile(r"((?:password|passwd|pwd|secret|token)\s*=\s*)([^&;]*)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with credentials inside it (``//user:secret@``, ``password=...``) replaced by ``***``."""
    redacted = _URL_USERINFO.sub(r"\1\2:***@", url)
    return _URL_SECRET_PARAMS.sub(r"\1***", redacted)


def _secrets(url: str, password: str | None) -> list[str]:
    found = [password] if password else []
    if match := _URL_USERINFO.search(url):
        found.append(match.group(3))
    found += [m.group(2) for m in _URL_SECRET_PARAMS.finditer(url)]
    for part in re.split(r"[?&;]", url)[1:]:
        for key, value in parse_qsl(part):
            if key.lower() in ("password", "passwd", "pwd") and value:
                found.append(value)
    return sorted({s for s in found if s}, key=len, reverse=True)


def _scrub(text: str, url: str, password: str | None) -> str:
    text = text.replace(url, redact_url(url))
    for secret in _secrets(url, password):
        text = text.replace(secret, "***")
    return text


def _error(what: str, exc: BaseException, url: str, password: str | None) -> JdbcCatalogError:
    detail = None
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            detail = f"{java.getClass().getName()}: {java.getMessage()}"
        except Exception:  # the gateway may be gone
            detail = None
    if not detail:
        text = str(exc).strip()
        detail = text.splitlines()[0] if text else type(exc).__name__
    return JdbcCatalogError(_scrub(f"{what} ({redact_url(url)}): {detail}", url, password))


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class ColumnInfo:
    """One column: its Spark type name (as :mod:`lakehouse.project.schemas` parses it), whether the database
    allows NULL in it, the database's own type name, and its comment there."""

    name: str
    type: str
    nullable: bool
    source_type: str
    comment: str | None = None


@dataclass(frozen=True)
class PrivateColumnGuess:
    """A column that looks personal: ``kind`` (email, phone, ip, person_name), why (``evidence``: "name",
    or "values: 97% of 100 sampled match"), and the default ``action``: "hash" into ``silver_name`` or
    "drop" (``silver_name`` None)."""

    column: str
    kind: str
    evidence: str
    action: str
    silver_name: str | None


@dataclass(frozen=True)
class TableInfo:
    """One table as its database describes it. ``keys`` is the primary key in key order (empty: the
    table has none); ``partition_column`` a key column to split parallel reads on (large tables only);
    ``unique_keys`` the columns of its other unique indexes (candidates when there is no primary key)."""

    name: str
    columns: tuple[ColumnInfo, ...]
    keys: tuple[str, ...]
    row_count: int
    partition_column: str | None
    private: tuple[PrivateColumnGuess, ...]
    unique_keys: tuple[tuple[str, ...], ...] = ()


# ---------------------------------------------------------------- JVM side


def _jvm(spark):
    return spark.sparkContext._jvm, spark.sparkContext._gateway


@contextmanager
def _connection(spark, url: str, user: str | None, password: str | None, driver: str | None) -> Iterator:
    """A ``java.sql.Connection`` from the driver class loaded by Spark's class loader (no DriverManager)."""
    engine = engine_for(url)
    driver_class = driver or engine.driver_class
    jvm, gateway = _jvm(spark)
    try:
        loader = jvm.org.apache.spark.util.Utils.getContextOrSparkClassLoader()
        cls = jvm.java.lang.Class.forName(driver_class, True, loader)
    except Exception:
        fetched = (
            ""
            if engine.fetched_by_setup
            else (
                " (not fetched by `lakehouse setup`: add it to lakehouse/install/jars.py"
                + (
                    f", or use driver {MARIADB.driver_class} with a ...?permitMysqlScheme URL)"
                    if engine is MYSQL
                    else ")"
                )
            )
        )
        raise JdbcCatalogError(
            f"JDBC driver class {driver_class} is not on Spark's class path: run `lakehouse setup`, which fetches "
            f"{engine.maven}{fetched}"
        ) from None  # a py4j error's text may hold the connection properties
    properties = jvm.java.util.Properties()
    if user:
        properties.setProperty("user", user)
    if password:
        properties.setProperty("password", password)
    try:
        instance = cls.getDeclaredConstructor(gateway.new_array(jvm.java.lang.Class, 0)).newInstance(
            gateway.new_array(jvm.java.lang.Object, 0)
        )
        connection = instance.connect(url, properties)
    except Exception as exc:
        raise _error("cannot connect", exc, url, password) from None
    if connection is None:
        hint = ""
        if driver_class == MARIADB.driver_class and engine is MYSQL:
            hint = " (MariaDB's driver takes jdbc:mysql: URLs with the permitMysqlScheme option: ...?permitMysqlScheme)"
        raise JdbcCatalogError(f"driver {driver_class} does not accept the URL {redact_url(url)}{hint}")
    try:
        yield connection
    finally:
        try:
            connection.close()
        except Exception:
            pass


def _rows(result_set, *columns: str) -> list[tuple]:
    """Every row of a JDBC ResultSet as tuples of the named columns (read as strings), then closed."""
    rows = []
    try:
        while result_set.next():
            rows.append(tuple(result_set.getString(column) for column in columns))
    finally:
        result_set.close()
    return rows


def _query(connection, sql: str) -> list[tuple]:
    """Every row of ``sql`` (values as strings; NULL as None)."""
    statement = connection.createStatement()
    try:
        result = statement.executeQuery(sql)
        width = result.getMetaData().getColumnCount()
        rows = []
        while result.next():
            rows.append(tuple(result.getString(i) for i in range(1, width + 1)))
        result.close()
        return rows
    finally:
        statement.close()


def _catalog_and_schema(
    engine: JdbcEngine, connection, schema: str | None
) -> tuple[str | None, str | None, str | None]:
    """(catalog, schemaPattern) for DatabaseMetaData calls, and the schema to qualify table names with."""
    if engine is SQLITE:
        return None, None, schema or engine.default_schema
    if engine.schema_is_catalog:
        database = schema or connection.getCatalog()
        return database, None, database
    schema = schema or engine.default_schema
    return None, schema, schema


_TABLE_TYPES = ("TABLE", "BASE TABLE", "PARTITIONED TABLE")


def _list_tables(spark, connection, engine: JdbcEngine, catalog, schema_pattern) -> list[str]:
    jvm, gateway = _jvm(spark)
    types = gateway.new_array(jvm.java.lang.String, len(_TABLE_TYPES))
    for i, kind in enumerate(_TABLE_TYPES):
        types[i] = kind
    rows = _rows(connection.getMetaData().getTables(catalog, schema_pattern, "%", types), "TABLE_NAME", "TABLE_TYPE")
    names = {name for name, kind in rows if kind in _TABLE_TYPES}
    if engine is SQLITE:
        names = {name for name in names if not name.lower().startswith("sqlite_")}
    return sorted(names)


def list_tables(
    spark, url: str, user: str | None, password: str | None, schema: str | None = None, driver: str | None = None
) -> list[str]:
    """Names of the base tables of ``schema`` (the engine's default schema, or the URL's database), sorted;
    views, indexes, sequences and SQLite's own tables are left out."""
    engine = engine_for(url)
    with _connection(spark, url, user, password, driver) as connection:
        try:
            catalog, pattern, _ = _catalog_and_schema(engine, connection, schema)
            return _list_tables(spark, connection, engine, catalog, pattern)
        except JdbcCatalogError:
            raise
        except Exception as exc:
            raise _error("cannot list tables", exc, url, password) from None


# ---------------------------------------------------------------- types


def spark_type_name(data_type) -> str:
    """A Spark ``DataType`` as the type name a schema file holds (``int``, ``decimal(10,2)``,
    ``array<string>``, ``timestamp_ntz``, ...)."""
    return data_type.simpleString()


_INTEGRAL = {"tinyint", "smallint", "int", "bigint"}
_PARTITIONABLE = _INTEGRAL | {"date", "timestamp", "timestamp_ntz"}
_DECIMAL_NAME = re.compile(r"(?:decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", re.IGNORECASE)


def sqlite_affinity(declared: str) -> str:
    """SQLite's column affinity for a declared type name (sqlite.org/datatype3.html, section 3.1):
    INTEGER, TEXT, BLOB, REAL or NUMERIC."""
    name = declared.upper()
    if "INT" in name:
        return "INTEGER"
    if any(part in name for part in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in name or not name.strip():
        return "BLOB"
    if any(part in name for part in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


@dataclass(frozen=True)
class StorageProfile:
    """How many non-NULL values of a SQLite column have each storage class, and how many text values do
    not parse as a date/time (``bad_datetimes``) or a boolean (``bad_booleans``)."""

    integer: int = 0
    real: int = 0
    text: int = 0
    blob: int = 0
    bad_datetimes: int = 0
    bad_booleans: int = 0


def _by_values(profile: StorageProfile) -> str:
    if profile.text == 0 and profile.blob == 0:
        return "double" if profile.real else "bigint"
    if profile.blob and not (profile.integer or profile.real or profile.text):
        return "binary"
    return "string"


def sqlite_type(declared: str, profile: StorageProfile = StorageProfile()) -> str:
    """The Spark type to declare for a SQLite column of declared type ``declared`` whose values have the
    storage classes in ``profile`` (rules in the module's docstring)."""
    affinity = sqlite_affinity(declared)
    name = declared.upper()
    others = profile.text + profile.blob
    if affinity == "INTEGER":
        if others:
            return "string"
        return "double" if profile.real else "bigint"
    if affinity == "TEXT":
        return "string"
    if affinity == "REAL":
        return "string" if others else "double"
    if affinity == "BLOB":
        if "BLOB" in name:
            return "binary"  # any storage class reads as bytes
        return _by_values(profile) if (profile.integer or profile.real or profile.text or profile.blob) else "string"
    # NUMERIC affinity
    if "BOOL" in name:
        return "boolean" if profile.real == 0 and profile.blob == 0 and profile.bad_booleans == 0 else "string"
    if "DATE" in name or "TIMESTAMP" in name:
        if profile.real or profile.blob or (profile.integer and profile.text):
            return "string"
        if profile.integer:
            return "bigint"  # epoch numbers: convert in silver
        if profile.bad_datetimes:
            return "string"
        return "timestamp" if ("TIME" in name) else "date"
    if match := _DECIMAL_NAME.search(declared):
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if 0 < precision <= 38 and scale <= precision and not others:
            return f"decimal({precision},{scale})"
    return _by_values(profile)


def custom_schema(url: str, columns: Iterable, partition_column: str | None = None) -> str | None:
    """The ``customSchema`` read option the snapshot reader must pass for this engine, or None (Spark's own
    mapping is the declared type). SQLite: every column as text (binary ones as binary; the partition
    column, a rowid, as bigint), then cast to the declared types. ``columns``: :class:`ColumnInfo` or
    (name, type) pairs, as a declaration lists them."""
    if engine_for(url) is not SQLITE:
        return None
    parts = []
    for column in columns:
        name, type_name = (column.name, column.type) if isinstance(column, ColumnInfo) else column
        read_as = "BINARY" if type_name == "binary" else "BIGINT" if name == partition_column else "STRING"
        parts.append(f"`{name.replace('`', '``')}` {read_as}")
    return ", ".join(parts)


# ---------------------------------------------------------------- describing


def describe_tables(
    spark,
    url: str,
    user: str | None,
    password: str | None,
    schema: str | None = None,
    tables: Sequence[str] | None = None,
    driver: str | None = None,
    sample_rows: int = 200,
    large_table_rows: int = 100_000,
) -> list[TableInfo]:
    """Describe ``tables`` (default: every base table of the schema) for a declaration.

    A table over ``large_table_rows`` rows gets a partition column: its first primary-key column of an
    integral, date or timestamp type (for SQLite: only a rowid primary key). Personal columns are guessed
    from names and from the first ``sample_rows`` rows (:func:`guess_private_columns`).
    """
    engine = engine_for(url)
    options = read_options(url, user, password, driver)
    described = []
    with _connection(spark, url, user, password, driver) as connection:
        try:
            catalog, pattern, qualifier = _catalog_and_schema(engine, connection, schema)
            available = _list_tables(spark, connection, engine, catalog, pattern)
            wanted = _resolve_tables(tables, available, qualifier)
            for table in wanted:
                qualified = f"{engine.quote(qualifier)}.{engine.quote(table)}" if qualifier else engine.quote(table)
                try:
                    described.append(
                        _describe_table(
                            spark,
                            connection,
                            engine,
                            options,
                            catalog,
                            pattern,
                            table,
                            qualified,
                            qualifier,
                            sample_rows,
                            large_table_rows,
                        )
                    )
                except JdbcCatalogError:
                    raise
                except Exception as exc:
                    raise _error(f"cannot describe table {qualified}", exc, url, password) from None
        except JdbcCatalogError:
            raise
        except Exception as exc:
            raise _error("cannot list tables", exc, url, password) from None
    return described


def _describe_table(
    spark,
    connection,
    engine: JdbcEngine,
    options: dict,
    catalog,
    pattern,
    table: str,
    qualified: str,
    qualifier: str | None,
    sample_rows: int,
    large_table_rows: int,
) -> TableInfo:
    if engine is SQLITE:
        columns, keys, unique_keys, row_count, rowid = _describe_sqlite(connection, table, qualified, qualifier)
    else:
        columns, keys, unique_keys, row_count, rowid = _describe_generic(
            spark, connection, options, catalog, pattern, table, qualified
        )
    partition = _partition_column(
        columns, keys, row_count, large_table_rows, sqlite=engine is SQLITE, sqlite_rowid=rowid
    )
    samples = _samples(connection, engine, table, qualified, columns, sample_rows)
    private = guess_private_columns(table, columns, samples, keys=keys)
    return TableInfo(table, columns, keys, row_count, partition, private, unique_keys)


def _resolve_tables(tables: Sequence[str] | None, available: list[str], schema: str | None) -> list[str]:
    if tables is None:
        return available
    resolved = []
    for table in tables:
        if table in available:
            resolved.append(table)
            continue
        folded = [name for name in available if name.lower() == table.lower()]
        if len(folded) != 1:
            where = f"schema {schema!r}" if schema else "the database"
            raise JdbcCatalogError(f"no table {table!r} in {where}; it has: {', '.join(available) or 'none'}")
        resolved.append(folded[0])
    return resolved


def _describe_generic(spark, connection, options: dict, catalog, pattern, table: str, qualified: str):
    """Types from Spark's reader; nullability, comments and keys from DatabaseMetaData."""
    schema = spark.read.format("jdbc").options(**options).option("dbtable", qualified).load().schema
    metadata = connection.getMetaData()
    catalog_columns = {
        name: (_source_type(type_name, size, digits), nullable, remarks)
        for name, type_name, size, digits, nullable, remarks in _rows(
            metadata.getColumns(catalog, pattern, table, "%"),
            "COLUMN_NAME",
            "TYPE_NAME",
            "COLUMN_SIZE",
            "DECIMAL_DIGITS",
            "NULLABLE",
            "REMARKS",
        )
    }
    columns = []
    for field in schema.fields:
        type_name, nullable, remarks = catalog_columns.get(field.name, (None, None, None))
        columns.append(
            ColumnInfo(
                name=field.name,
                type=spark_type_name(field.dataType),
                nullable=nullable != "0",  # DatabaseMetaData.columnNoNulls
                source_type=type_name or field.metadata.get("jdbcClientType", ""),
                comment=remarks or None,
            )
        )
    key_rows = _rows(metadata.getPrimaryKeys(catalog, pattern, table), "COLUMN_NAME", "KEY_SEQ")
    keys = tuple(name for name, _ in sorted(key_rows, key=lambda row: int(row[1])))
    unique = {}
    for index, column, position in _rows(
        metadata.getIndexInfo(catalog, pattern, table, True, False), "INDEX_NAME", "COLUMN_NAME", "ORDINAL_POSITION"
    ):
        if index and column:
            unique.setdefault(index, []).append((int(position or 0), column))
    unique_keys = _unique_keys(unique, keys)
    row_count = int(_query(connection, f"SELECT count(*) FROM {qualified}")[0][0])
    return tuple(columns), keys, unique_keys, row_count, None


_SIZED_TYPES = {
    "varchar",
    "bpchar",
    "char",
    "character",
    "character varying",
    "nvarchar",
    "nchar",
    "varbinary",
    "binary",
    "bit",
}
_SCALED_TYPES = {"numeric", "decimal"}


def _source_type(type_name: str | None, size: str | None, digits: str | None) -> str | None:
    """The database's type name with its length or precision where it has one (``varchar(30)``,
    ``numeric(10,2)``)."""
    if not type_name:
        return type_name
    lowered = type_name.lower()
    size_value = int(size) if size and size.lstrip("-").isdigit() else 0
    if lowered in _SCALED_TYPES and 0 < size_value <= 1000:
        return f"{type_name}({size_value},{int(digits or 0)})"
    if lowered in _SIZED_TYPES and 0 < size_value < 2_147_483_647:
        return f"{type_name}({size_value})"
    return type_name


def _unique_keys(unique: dict, keys: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    found = []
    for index in sorted(unique):
        columns = tuple(column for _, column in sorted(unique[index]))
        if columns != keys and columns not in found:
            found.append(columns)
    return tuple(found)


_WITHOUT_ROWID = re.compile(r"\)\s*(?:STRICT\s*,\s*)?WITHOUT\s+ROWID\s*(?:,\s*STRICT\s*)?;?\s*$", re.IGNORECASE)


def _describe_sqlite(connection, table: str, qualified: str, schema: str | None):
    """Declared types, NOT NULL and primary key from ``PRAGMA table_info``; storage classes from one scan."""
    prefix = f'"{schema}".' if schema else ""
    quoted_table = '"' + table.replace('"', '""') + '"'
    info = _query(connection, f"PRAGMA {prefix}table_info({quoted_table})")  # cid, name, type, notnull, dflt, pk
    master = f'"{schema}".sqlite_master' if schema else "sqlite_master"
    sql_rows = _query(
        connection, f"SELECT sql FROM {master} WHERE type = 'table' AND name = '{table.replace(chr(39), chr(39) * 2)}'"
    )
    without_rowid = bool(sql_rows and sql_rows[0][0] and _WITHOUT_ROWID.search(sql_rows[0][0]))
    keys = tuple(row[1] for row in sorted((r for r in info if int(r[5]) > 0), key=lambda r: int(r[5])))
    rowid = None
    if len(keys) == 1 and not without_rowid:
        declared = next(r[2] for r in info if r[1] == keys[0])
        if (declared or "").strip().upper() == "INTEGER":
            rowid = keys[0]  # an alias of the rowid: always a 64-bit integer, never NULL

    aggregates = ["count(*)"]
    for _, name, declared, *_ in info:
        column = '"' + name.replace('"', '""') + '"'
        aggregates += [f"sum(typeof({column}) = '{kind}')" for kind in ("integer", "real", "text", "blob")]
        aggregates.append(f"sum(typeof({column}) = 'text' AND julianday({column}) IS NULL)")
        aggregates.append(
            f"sum(typeof({column}) = 'text' AND lower(trim({column})) NOT IN "
            "('0','1','t','f','true','false','y','n','yes','no'))"
            f" + sum(typeof({column}) = 'integer' AND {column} NOT IN (0, 1))"
        )
    counts = _query(connection, f"SELECT {', '.join(aggregates)} FROM {qualified}")[0]
    row_count = int(counts[0])
    columns = []
    for position, (_, name, declared, notnull, _default, _pk) in enumerate(info):
        values = [int(value or 0) for value in counts[1 + 6 * position : 7 + 6 * position]]
        profile = StorageProfile(*values)
        columns.append(
            ColumnInfo(
                name=name,
                type=sqlite_type(declared or "", profile),
                nullable=not (int(notnull) or name == rowid or (without_rowid and name in keys)),
                source_type=declared or "",
            )
        )
    unique = {}
    for _, index, is_unique, origin, _partial in _query(connection, f"PRAGMA {prefix}index_list({quoted_table})"):
        if int(is_unique) and origin != "pk":
            quoted_index = '"' + index.replace('"', '""') + '"'
            members = _query(connection, f"PRAGMA {prefix}index_info({quoted_index})")  # seqno, cid, name
            unique[index] = [(int(seq), name) for seq, _, name in members if name]
    return tuple(columns), keys, _unique_keys(unique, keys), row_count, rowid


def _partition_column(
    columns: tuple[ColumnInfo, ...],
    keys: tuple[str, ...],
    row_count: int,
    large_table_rows: int,
    sqlite: bool = False,
    sqlite_rowid: str | None = None,
) -> str | None:
    """The first integral/date/timestamp key column of a table over ``large_table_rows`` rows (SQLite: its
    rowid key, the only column it reads typed); None otherwise."""
    if row_count <= large_table_rows or not keys:
        return None
    if sqlite:
        return sqlite_rowid
    types = {column.name: column.type for column in columns}
    for key in keys:
        type_name = types.get(key, "")
        if type_name in _PARTITIONABLE or (type_name.startswith("decimal(") and type_name.endswith(",0)")):
            return key
    return None


def _samples(
    connection, engine: JdbcEngine, table: str, qualified: str, columns: tuple[ColumnInfo, ...], sample_rows: int
) -> list[dict]:
    """The first ``sample_rows`` rows of the text columns whose names say nothing (the only ones judged by
    their values), read on the catalog connection (``Statement.setMaxRows``: the database stops there)."""
    names = [c.name for c in columns if c.type == "string" and _name_kind(table, c.name) is None]
    if not names or sample_rows <= 0:
        return []
    statement = connection.createStatement()
    try:
        statement.setMaxRows(sample_rows)
        result = statement.executeQuery(f"SELECT {', '.join(engine.quote(n) for n in names)} FROM {qualified}")
        rows = []
        while result.next():
            rows.append({name: result.getString(i) for i, name in enumerate(names, start=1)})
        result.close()
        return rows
    finally:
        statement.close()


# ---------------------------------------------------------------- personal columns

KINDS = ("email", "phone", "ip", "person_name")
VALUE_MATCH_SHARE = 0.8  # share of sampled non-empty values that must match a kind's pattern
MIN_SAMPLED_VALUES = 5  # fewer non-empty sampled values: no guess from values
DEFAULT_ACTIONS = {"email": "hash", "phone": "hash", "ip": "hash", "person_name": "drop"}

PERSON_TABLES = frozenset(
    {
        "user",
        "users",
        "customer",
        "customers",
        "client",
        "clients",
        "employee",
        "employees",
        "person",
        "persons",
        "people",
        "contact",
        "contacts",
        "author",
        "authors",
        "member",
        "members",
        "staff",
        "staffs",
        "student",
        "students",
        "patient",
        "patients",
        "subscriber",
        "subscribers",
        "account_holder",
        "account_holders",
        "guest",
        "guests",
        "passenger",
        "passengers",
        "applicant",
        "applicants",
        "candidate",
        "candidates",
        "volunteer",
        "volunteers",
        "donor",
        "donors",
        "teacher",
        "teachers",
        "worker",
        "workers",
        "driver",
        "drivers",
        "owner",
        "owners",
        "buyer",
        "buyers",
        "seller",
        "sellers",
        "recipient",
        "recipients",
        "reviewer",
        "reviewers",
        "visitor",
        "visitors",
        "player",
        "players",
        "profile",
        "profiles",
    }
)
_PERSON_WORDS = frozenset(name for name in PERSON_TABLES if "_" not in name)
_NAME_PARTS = (
    "first",
    "last",
    "middle",
    "given",
    "family",
    "full",
    "display",
    "contact",
    "maiden",
    "nick",
    "user",
    "sur",
    "person",
    "real",
    "legal",
    "birth",
)
_JOINED_NAMES = frozenset(f"{part}name" for part in _NAME_PARTS)  # firstname, lastname, surname, username, ...
_EMAIL_NAMES = frozenset({"email", "emails", "mail", "emailaddress", "mailaddress", "e_mail"})
_PHONE_WORDS = frozenset(
    {
        "phone",
        "phones",
        "telephone",
        "tel",
        "telefon",
        "telefono",
        "msisdn",
        "fax",
        "phonenumber",
        "cellphone",
        "mobilephone",
        "mobilenumber",
        "faxnumber",
    }
)
_PHONE_NAMES = frozenset({"mobile", "cell", "mobile_number", "mobile_no", "cell_number", "mobile_phone", "cell_phone"})
_IP_WORDS = frozenset({"ip", "ipv4", "ipv6", "ipaddr", "ipaddress", "ip4", "ip6"})
_IP_NAMES = frozenset({"remote_addr", "remote_address", "client_addr", "client_address", "remote_host", "peer_addr"})

_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_PHONE = re.compile(r"(?:\+|00)?\(?\d[\d ()./-]{5,24}?(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?", re.IGNORECASE)
_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d{1,6}$", re.IGNORECASE)
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:\D|$)|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}$")


def _words(name: str) -> list[str]:
    """``FirstName``, ``first_name``, ``first-name`` -> ["first", "name"]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


def _name_kind(table: str, column: str) -> str | None:
    words = _words(column)
    if not words:
        return None
    joined = "_".join(words)
    compact = "".join(words)
    if (
        joined in _EMAIL_NAMES
        or "email" in words
        or compact in _EMAIL_NAMES
        or "e_mail" in joined
        or words[-1] == "mail"
        or compact.endswith("emailaddress")
    ):
        return "email"
    if (
        any(word in _PHONE_WORDS for word in words)
        or joined in _PHONE_NAMES
        or words[-1] in ("mobile", "cell")
        or compact.endswith("phonenumber")
    ):
        return "phone"
    if (
        words[-1] in _IP_WORDS
        or joined in _IP_NAMES
        or joined.endswith(("ip_address", "ip_addr"))
        or (len(words) >= 2 and words[-2] in _IP_WORDS and words[-1] in ("address", "addr"))
    ):
        return "ip"
    if (
        words[-1] in _JOINED_NAMES
        or compact in _JOINED_NAMES
        or (len(words) >= 2 and words[-1] == "name" and (words[-2] in _NAME_PARTS or words[-2] in _PERSON_WORDS))
    ):
        return "person_name"
    if joined == "name" and _is_person_table(table):
        return "person_name"
    return None


def _is_person_table(table: str) -> bool:
    words = _words(table)
    return bool(words) and ("_".join(words) in PERSON_TABLES or words[-1] in PERSON_TABLES)


def looks_like_email(value: str) -> bool:
    """An e-mail address (local part @ a dotted domain)."""
    return bool(_EMAIL.fullmatch(value))


def looks_like_ip(value: str) -> bool:
    """An IPv4 or IPv6 address, optionally with a /prefix (PostgreSQL ``inet``/``cidr`` text)."""
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return False
    return True


def looks_like_phone(value: str) -> bool:
    """A phone number: ``+``/``00`` international form with 7-15 digits, or a national form with
    separators (space, dot, dash, parentheses, slash) or a leading 0 and 10-15 digits."""
    if not _PHONE.fullmatch(value) or _DATE_LIKE.match(value):
        return False
    number = _PHONE_EXTENSION.sub("", value)
    digits = sum(ch.isdigit() for ch in number)
    if number.startswith(("+", "00")):
        return 7 <= digits <= 15
    separated = any(ch in number for ch in " ()./-")
    return (separated or number.startswith("0")) and 10 <= digits <= 15 and number.count(".") != 3


_VALUE_TESTS = (("email", looks_like_email), ("ip", looks_like_ip), ("phone", looks_like_phone))


def _value_kind(values: list[str]) -> tuple[str, int] | None:
    """The kind most sampled values match, and how many match, when at least the threshold share does."""
    if len(values) < MIN_SAMPLED_VALUES:
        return None
    counts = {kind: 0 for kind, _ in _VALUE_TESTS}
    for value in values:
        for kind, test in _VALUE_TESTS:
            if test(value):
                counts[kind] += 1
                break
    kind, matched = max(counts.items(), key=lambda item: item[1])
    return (kind, matched) if matched >= VALUE_MATCH_SHARE * len(values) else None


def guess_private_columns(
    table: str, columns, samples: list[dict], keys: Sequence[str] = ()
) -> tuple[PrivateColumnGuess, ...]:
    """The columns of ``table`` that look personal, in column order (rules in the module's docstring).

    ``columns``: :class:`ColumnInfo` (only text columns are judged, and integer ones for phone and IP
    names) or plain names (judged as text); ``samples``: rows as dicts; ``keys``: key columns, always
    hashed (a key cannot be dropped).
    """
    guesses = []
    for column in columns:
        name, type_name = (column.name, column.type) if isinstance(column, ColumnInfo) else (str(column), "string")
        kind, evidence = _name_kind(table, name), "name"
        if kind is not None and type_name != "string" and not (kind in ("phone", "ip") and type_name in _INTEGRAL):
            kind = None
        if kind is None and type_name == "string":
            values = [str(row[name]).strip() for row in samples if row.get(name) is not None and str(row[name]).strip()]
            if found := _value_kind(values):
                kind, matched = found
                evidence = f"values: {matched * 100 // len(values)}% of {len(values)} sampled match"
        if kind is None:
            continue
        action = "hash" if name in keys else DEFAULT_ACTIONS[kind]
        guesses.append(PrivateColumnGuess(name, kind, evidence, action, f"{name}_hash" if action == "hash" else None))
    return tuple(guesses)
