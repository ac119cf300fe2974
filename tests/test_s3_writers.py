"""Two writers on one s3a:// warehouse never lose a commit (a real S3 server, S3Proxy on 127.0.0.1).

Delta 4.4's log store for s3a (S3SingleDriverLogStore) is safe within one JVM only: two processes that
commit the same table version both "succeed" and the later overwrites the earlier. The warehouse lock
of :mod:`lakehouse.storage.locks` (one lease object per s3a warehouse, taken with a conditional PUT) serialises
the processes' steps: here two Spark processes race to append to the same two tables, each commit under
:func:`~lakehouse.storage.locks.job_lock`, and every commit is there at the end. The lock's own behaviour
(exclusion, timeout with a clear message, a dead holder's lease taken over) is tested without Spark.
"""

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from lakehouse.services import object_store
from lakehouse.storage import locks
from process_secrets import free_port

pytestmark = pytest.mark.e2e

BUCKET = "lakehouse-writers"
WAREHOUSE = f"s3a://{BUCKET}/warehouse"
ROUNDS = 2
TABLES = ("events", "ops_runs")  # ops.runs-like: a table every writer appends to

WRITER = """
import json, sys
from types import SimpleNamespace
from pyspark.sql import SparkSession

sys.path.insert(0, sys.argv[2])
from test_s3_writers import write_rounds

args = json.loads(sys.argv[1])
builder = SparkSession.builder.master("local[1]").appName("writer-" + args["name"])
for key, value in args["settings"].items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
config = SimpleNamespace(warehouse=args["warehouse"], spark_conf=args["settings"])
print("RESULT " + json.dumps(write_rounds(spark, config, args["name"], args["barrier"])))
"""


def write_rounds(spark, config, name, barrier, writers=2):
    """Once every writer's session is up, ROUNDS times: under the job lock, append (name, n) to each table.
    Returns the seconds waited for the lock each round and each commit's duration."""
    from lakehouse.storage.locks import job_lock

    barrier = Path(barrier)
    (barrier / name).touch()
    while len([p for p in barrier.iterdir() if not p.name.endswith(".done")]) < writers:
        time.sleep(0.1)  # both sessions up: the race starts together
    waits, commits = [], []
    for n in range(ROUNDS):
        with job_lock(config, f"writer-{name}", waiting=lambda message: None) as waited:
            waits.append(waited)
            for table in TABLES:
                started = time.monotonic()
                spark.createDataFrame([(name, n)], "writer string, n int").write.format("delta").mode("append").save(
                    f"{config.warehouse}/{table}"
                )
                commits.append(time.monotonic() - started)
    (barrier / f"{name}.done").touch()
    return {"waits": waits, "commits": commits}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A real S3Proxy on a free port with a random secret."""
    server = object_store.S3Server(
        tmp_path_factory.mktemp("s3"), port=free_port(), access_key="lakehouse-test", secret_key=secrets.token_hex(16)
    )
    object_store.start(server, buckets=[BUCKET])
    yield server
    object_store.stop(server)


def _lock(s3, what, ttl_s=locks.DEFAULT_TTL_S):
    return locks.ObjectLock(s3, BUCKET, "warehouse/_locks/warehouse.lock", what, ttl_s=ttl_s, poll_s=0.2)


def test_the_object_lock_excludes_times_out_clearly_and_takes_over_a_dead_holders_lease(s3):
    first, second = _lock(s3, "job-a"), _lock(s3, "job-b")
    assert first.acquire(print) < 1
    with pytest.raises(locks.LockTimeout, match=r"held by .*job-a.* one writer at a time on an s3a warehouse"):
        second.acquire(lambda message: None, timeout_s=1)
    releaser = threading.Timer(1.0, first.release)
    releaser.start()
    messages = []
    waited = second.acquire(messages.append)
    assert waited >= 0.9 and messages and "job-a" in messages[0] and "waiting" in messages[0]
    second.release()
    assert object_store.head_object(s3, BUCKET, first.key) is None  # released: the object is gone

    # A holder that dies stops renewing its lease: after ttl_s another process takes the lock over.
    dead, heir = _lock(s3, "job-dead", ttl_s=2), _lock(s3, "job-heir", ttl_s=2)
    dead.acquire(print)
    dead._stop.set()  # its heartbeat stops, as if the process had been killed
    dead._heartbeat.join()
    waited = heir.acquire(lambda message: None, timeout_s=30)
    assert 2 <= waited < 30
    heir.release()
    assert object_store.list_objects(s3, BUCKET, "warehouse/_locks/") == []


def test_the_local_and_the_object_lock_are_one_interface(s3, tmp_path):
    local = SimpleNamespace(warehouse=str(tmp_path / "warehouse"), spark_conf={})
    remote = SimpleNamespace(warehouse=WAREHOUSE, spark_conf={"spark.hadoop.fs.s3a.endpoint": s3.endpoint})
    os.environ.update({"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key})
    try:
        assert isinstance(locks.lock_for(local, "job"), locks.FileLock)
        assert isinstance(locks.lock_for(remote, "job"), locks.ObjectLock)
        for config in (local, remote):
            with locks.job_lock(config, "job") as waited:
                assert waited < 1
                with locks.job_lock(config, "job") as again:  # re-entrant in one process
                    assert again == 0.0
        with locks.job_lock(remote, "one job"):  # on s3a, one lock for the warehouse, whichever the job
            key = "warehouse/_locks/warehouse.lock"
            assert b"one job" in object_store.get_object(s3, BUCKET, key)
            with locks.job_lock(remote, "another job") as nested:
                assert nested == 0.0
    finally:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.pop(name, None)


def test_two_processes_appending_to_the_same_s3a_tables_lose_no_commit(spark, s3, tmp_path):
    """This process (the suite's session, given the server's keys for this bucket only) and another Spark
    process append to the same two tables at the same time."""
    from lakehouse.install.jars import local_jars
    from lakehouse.install.paths import INSTALL_ROOT
    from lakehouse.services.spark_conf import jvm_settings

    cluster_conf = yaml.safe_load((INSTALL_ROOT / "conf" / "cluster.yaml").read_text())["spark"]["conf"]
    s3a = {key: str(value) for key, value in cluster_conf.items() if key.startswith("spark.hadoop.fs.s3a.")}
    settings = {
        **jvm_settings(local_jars()),
        **s3a,
        "spark.hadoop.fs.s3a.endpoint": s3.endpoint,
        "spark.sql.shuffle.partitions": "1",
        "spark.databricks.delta.snapshotPartitions": "1",
        "spark.ui.enabled": "false",
        "spark.driver.memory": "1g",
    }
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    per_bucket = f"fs.s3a.bucket.{BUCKET}."  # s3a's per-bucket settings: the suite's other buckets are untouched
    for key, value in {
        **{k.removeprefix("spark.hadoop.fs.s3a."): v for k, v in s3a.items()},
        "endpoint": s3.endpoint,
        "access.key": s3.access_key,
        "secret.key": s3.secret_key,
        "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    }.items():
        hadoop.set(per_bucket + key, value)
    config = SimpleNamespace(warehouse=WAREHOUSE, spark_conf={"spark.hadoop.fs.s3a.endpoint": s3.endpoint})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            json.dumps({"name": "b", "settings": settings, "warehouse": WAREHOUSE, "barrier": str(barrier)}),
            str(Path(__file__).parent),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **s3.env()},
        cwd=tmp_path,
    )
    saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update({"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key})  # the lock's
    try:
        results = {"a": write_rounds(spark, config, "a", barrier)}
        out, err = other.communicate(timeout=900)
        assert other.returncode == 0, err[-4000:]
        results["b"] = json.loads(out.split("RESULT ", 1)[1])

        # Every commit of both writers is in both tables, each its own version: none was overwritten.
        expected = sorted((name, n) for name in results for n in range(ROUNDS))
        for table in TABLES:
            path = f"{WAREHOUSE}/{table}"
            assert sorted(tuple(row) for row in spark.read.format("delta").load(path).collect()) == expected, table
            assert spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count() == 2 * ROUNDS, table
        # They did race: at some point one of them waited for the other's lock.
        assert max(max(result["waits"]) for result in results.values()) > 0.5

        lock = locks.lock_for(config, "measure")
        started = time.monotonic()
        for _ in range(10):  # the lock's own cost, uncontended: one conditional PUT and one DELETE
            lock.acquire(lambda message: None)
            lock.release()
        lock_s = (time.monotonic() - started) / 10
    finally:
        if other.poll() is None:
            other.kill()
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.update({name: value})
    commits = sorted(s for result in results.values() for s in result["commits"])
    commit_s = commits[len(commits) // 2]
    print(
        f"\ns3a lock: {lock_s * 1000:.0f} ms per acquire+release ({lock.requests / 10:.0f} requests), "
        f"a Delta commit on s3a {commit_s * 1000:.0f} ms (median)"
    )
    assert lock_s < commit_s
