"""The warehouse and the landing on a real S3-compatible server (S3Proxy on 127.0.0.1) through s3a://.

The pipeline runs in processes of its own (their own Spark JVMs, with the s3a settings of conf/cluster.yaml
and the server's keys in their environment), so the suite's shared session is left alone.
"""

import json
import os
import secrets
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from conftest import _free_port, make_config
from helpers import DEMO_PROJECT, write_conf_file
from lakehouse.project import PROJECT_VARIABLE
from lakehouse.project.config import ENV_OVERRIDES
from lakehouse.scenario.app_db import BAD_OBJECT_KINDS, write_app_database
from lakehouse.scenario.app_events import write_app_event_logs
from lakehouse.services import object_store
from lakehouse.transforms.privacy import KEY_VARIABLE

pytestmark = pytest.mark.e2e

BUCKET = "lakehouse-test"
# Events to gold, photos to silver, and the labels source, whose exports folder has no object yet: on S3 there is no
# folder before its first object, and that is nothing to land yet, not an error.
SELECTED = ["gold.user_activity_daily", "silver.images", "silver.image_labels"]

# Run in a process of its own after `lakehouse run` and a new day: the same steps `lakehouse run` takes (one
# JVM start less than a second `lakehouse run`), a third run with no new data, then what the tables say, as
# JSON on the last line.
CHECK_SCRIPT = """
import json, sys
from lakehouse.storage.catalog import read_table
from lakehouse.project.config import load_config
from lakehouse.engine.orchestration import failures, run_pipeline
from lakehouse.engine.session import get_spark

config = load_config(sys.argv[1])
spark = get_spark(config, app_name="s3a-check")
def history(table):
    rows = spark.sql(f"DESCRIBE HISTORY delta.`{config.table_path(table)}`").orderBy("version").collect()
    return [[row.version, row.operation] for row in rows]
tables = ("bronze.app_events", "silver.events", "silver.events_quarantine", "gold.user_activity_daily",
          "bronze.image_refs", "silver.images", "silver.image_references", "silver.images_quarantine",
          "bronze.image_labels")
selected = sys.argv[2:]
second = run_pipeline(spark, config, selected=selected, progress=lambda line: None)
assert {o.status for o in second} <= {"succeeded", "skipped"}, failures(second)
before = {table: history(table) for table in tables}
rerun = run_pipeline(spark, config, selected=selected, progress=lambda line: None)
events = read_table(spark, config, "silver.events")
runs = read_table(spark, config, "ops.runs").where("step = 'silver.events' AND status = 'succeeded'")
silver_versions = [json.loads(row.outputs)["silver.events"] for row in runs.orderBy("ended_at").collect()]
path = config.table_path("silver.events")
print(json.dumps({
    "history_before_rerun": before,
    "history": {table: history(table) for table in tables},
    "second": {o.step.name: o.status for o in second},
    "rerun": {o.step.name: [o.status, o.rows_written] for o in rerun},
    "counts": {table: read_table(spark, config, table).count() for table in tables},
    "distinct_event_ids": events.select("event_id").distinct().count(),
    "silver_versions": silver_versions,
    "silver_count_at": {v: spark.read.format("delta").option("versionAsOf", v).load(path).count() \
for v in silver_versions},
    "gold_count_at_v1": spark.sql(f"SELECT count(*) FROM delta.`{config.table_path('gold.user_activity_daily')}` \
VERSION AS OF 1").first()[0],
    "gold_count": read_table(spark, config, "gold.user_activity_daily").count(),
    "image_rejects": {row[0]: row[1] for row in read_table(spark, config, "silver.images_quarantine")
                      .selectExpr("split(reason, ':')[0] AS kind").groupBy("kind").count().collect()},
}))
"""


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A real S3Proxy on a free port with a random secret, its objects in a temporary folder."""
    server = object_store.S3Server(
        tmp_path_factory.mktemp("s3"), port=_free_port(), access_key="lakehouse-test", secret_key=secrets.token_hex(16)
    )
    object_store.start(server, buckets=[BUCKET])
    yield server
    object_store.stop(server)


def test_the_jars_match_the_hadoop_that_pyspark_ships():
    import pyspark

    from lakehouse.install.jars import HADOOP_VERSION, local_jars

    shipped = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    assert [p.name for p in shipped] == [f"hadoop-client-api-{HADOOP_VERSION}.jar"]
    names = [Path(jar).name for jar in local_jars()]
    assert f"org.apache.hadoop_hadoop-aws-{HADOOP_VERSION}.jar" in names
    assert not [name for name in names if "awssdk_bundle" in name or name.startswith("io.netty")]


def test_cluster_conf_takes_the_endpoint_from_the_environment_and_no_secret_from_files():
    from lakehouse.project.config import load_config

    cluster = DEMO_PROJECT / "conf" / "cluster.yaml"
    config = load_config(cluster, environ={"LAKEHOUSE_S3_ENDPOINT": "http://127.0.0.1:9999"})
    assert config.spark_conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9999"
    assert config.spark_conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert "EnvironmentVariableCredentialsProvider" in config.spark_conf["spark.hadoop.fs.s3a.aws.credentials.provider"]
    assert not [key for key in config.spark_conf if "secret" in key or "access.key" in key]
    assert load_config(cluster, environ={}).spark_conf["spark.hadoop.fs.s3a.endpoint"].startswith("https://")
    # Great Expectations' file stores cannot write to s3a: its folder stays on this machine.
    from lakehouse.install.paths import CACHE_DIR
    from lakehouse.storage.publish import quality_root

    assert Path(quality_root(config)).parent == CACHE_DIR / "quality"


def test_pipeline_on_s3_history_time_travel_reconciliation_and_idempotent_rerun(s3, tmp_path):
    local = make_config(tmp_path)  # local folders for what stays local (the pseudonym key file, the PostgreSQL port)
    warehouse, landing = f"s3a://{BUCKET}/warehouse", f"s3a://{BUCKET}/landing"
    cluster = yaml.safe_load((DEMO_PROJECT / "conf" / "cluster.yaml").read_text())
    s3a_conf = {k: v for k, v in cluster["spark"]["conf"].items() if k.startswith("spark.hadoop.fs.s3a.")}
    spark_section = yaml.safe_load((DEMO_PROJECT / "conf" / "local.yaml").read_text())["spark"]
    spark_section["conf"] = {**spark_section["conf"], **s3a_conf}  # local[*] sizing + conf/cluster.yaml's s3a settings
    conf = write_conf_file(
        local,
        tmp_path / "s3.yaml",
        paths={"warehouse": warehouse, "landing": landing},
        spark=spark_section,
        # Quality gates off to keep this test short (tests/test_quality_gate.py covers them).
        quality={"enabled": False, "data_docs": False},
    )
    inherited = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}  # the conf file says where things are
    env = {
        **inherited,
        **s3.env(),
        KEY_VARIABLE: "test-pseudonym-key-0123456789",  # endpoint + keys, never in files
        PROJECT_VARIABLE: str(DEMO_PROJECT),
    }  # the conf file lives outside the project
    work = tmp_path / "cwd"
    work.mkdir()

    def land(first_day, days):
        folder = tmp_path / f"generated-{first_day}"
        logs = write_app_event_logs(
            folder, seed=5, scale=0.02, days=days, first_day=first_day, bad_line_rate=0.05, duplicate_rate=0.05
        )
        assert object_store.upload_folder(s3, folder, f"{landing}/app_events")
        return logs

    def lakehouse_run():
        done = subprocess.run(
            [str(Path(sys.executable).parent / "lakehouse"), "run", "--select", *SELECTED, "--conf-file", str(conf)],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    # Photos: PNG objects (some missing, some broken on purpose) and a manifest naming them by s3a:// URI.
    photos = tmp_path / "photos"
    uploads = [(photo_id, 1 + photo_id % 7, datetime(2026, 11, 1, tzinfo=timezone.utc)) for photo_id in range(1, 41)]
    db = write_app_database(
        uploads,
        7,
        photos / "objects" / "photos",
        photos / "image_manifests",
        seed=9,
        bad_object_rate=0.15,
        reuse_rate=0.1,
    )
    assert db.bad_objects["missing"] > 0
    assert "../objects/" in (photos / "image_manifests" / "photos.csv").read_text()  # relative to the manifest
    object_store.upload_folder(s3, photos, landing)

    first = land(0, 2)
    lakehouse_run()
    second = land(2, 1)  # a third day arrives: the check script runs the pipeline again, then once more

    done = subprocess.run(
        [sys.executable, "-c", CHECK_SCRIPT, str(conf), *SELECTED],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    # The tables are objects in the S3 server: listed through the S3 API and present in its folder.
    keys = object_store.list_objects(s3, BUCKET, "warehouse/")
    for table in (
        "bronze/app_events",
        "silver/events",
        "silver/events_quarantine",
        "gold/user_activity_daily",
        "bronze/image_refs",
        "silver/images",
    ):
        assert f"warehouse/{table}/_delta_log/00000000000000000000.json" in keys, table
        assert any(key.startswith(f"warehouse/{table}/") and key.endswith(".parquet") for key in keys), table
    assert (s3.buckets_dir / BUCKET / "warehouse" / "silver" / "events" / "_delta_log").is_dir()
    assert not any(key.startswith("landing/") for key in keys)

    # Nothing lost and nothing twice: every line in bronze, every bronze row in silver or in quarantine.
    lines = first.lines + second.lines
    counts = seen["counts"]
    assert counts["bronze.app_events"] == lines
    assert counts["silver.events"] + counts["silver.events_quarantine"] == lines
    assert counts["silver.events"] == first.valid_events + second.valid_events == seen["distinct_event_ids"]

    # History on S3: one silver version per run that brought data, and time travel to the first one.
    silver_history = seen["history"]["silver.events"]
    assert len(seen["silver_versions"]) == 2, seen["silver_versions"]
    v1, v2 = seen["silver_versions"]
    assert v1 < v2 == silver_history[-1][0]
    assert seen["silver_count_at"][str(v1)] == first.valid_events
    assert seen["silver_count_at"][str(v2)] == counts["silver.events"]
    assert len(seen["history"]["gold.user_activity_daily"]) >= 2
    assert 0 < seen["gold_count_at_v1"] < seen["gold_count"] == counts["gold.user_activity_daily"]

    # Image objects read through s3a: every reference validated or quarantined, missing objects found missing.
    assert counts["bronze.image_refs"] == len(uploads)
    assert counts["silver.image_references"] + counts["silver.images_quarantine"] == len(uploads)
    assert 0 < counts["silver.images"] <= counts["silver.image_references"]
    assert seen["image_rejects"] == {BAD_OBJECT_KINDS[kind]: n for kind, n in db.bad_objects.items() if n}

    # The new day went through; the photos, unchanged, were not processed again.
    assert seen["second"] == {
        "ingest_app_events": "succeeded",
        "silver.events": "succeeded",
        "gold.user_activity_daily": "succeeded",
        "ingest_photos": "succeeded",
        "silver.images": "skipped",
        "ingest_image_labels": "succeeded",  # no export yet: it asked, and there was nothing
        "silver.image_labels": "skipped",
    }, seen["second"]
    assert counts["bronze.image_labels"] == 0

    # A third run with no new data writes nothing: the same versions, the same rows.
    assert seen["history"] == seen["history_before_rerun"]
    rerun = seen["rerun"]
    assert {rerun[job][0] for job in ("silver.events", "gold.user_activity_daily", "silver.images")} == {"skipped"}, (
        rerun
    )
    assert rerun["ingest_app_events"][1] in (0, None) and rerun["ingest_photos"][1] in (0, None), rerun
