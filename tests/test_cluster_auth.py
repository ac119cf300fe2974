"""The standalone cluster runs with ``spark.authenticate``: an application without the cluster's secret
(or with a wrong one) is refused by the master, one given the secret file runs; the secret is on no
process's command line, and in no environment but the executor's (which authenticates with it)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakehouse.services import cluster
from process_secrets import descendants, exposures, free_port

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
APP = """
import os, sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName(sys.argv[1]).getOrCreate()
# A Python task: reports whether its Python worker sees the cluster's secret in its environment.
seen = spark.sparkContext.parallelize([0], 1).map(lambda _: os.environ.get("_SPARK_AUTH_SECRET") or "").collect()
print("ANSWER", spark.range(10).count(), "SECRET_IN_PYTHON_WORKER" if seen[0] else \
"NO_SECRET_IN_PYTHON_WORKER", flush=True)
while not os.path.exists(sys.argv[0] + ".done"):  # held open while the test looks at the processes
    time.sleep(0.2)
"""


def submit(target, app, log, *options):
    """spark-submit ``app`` to ``target`` (its output into ``log``); the application's name is the log's."""
    with open(log, "w") as output:
        return subprocess.Popen(
            [str(BIN / "spark-submit"), "--master", target.master_url, *options, str(app), log.stem],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"),
        )


def wait_for(process, log, wanted, timeout_s=180):
    """The log once it holds ``wanted`` (or the process ended, or time ran out)."""
    deadline = time.monotonic() + timeout_s
    while wanted not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    return log.read_text()


def test_an_application_without_the_cluster_secret_is_refused(tmp_path):
    target = cluster.StandaloneCluster(tmp_path / "state", port=free_port(), web_port=free_port())
    cluster.start(target, workers=1, cores=1, memory="1g")  # the worker registered: it had the secret
    app = tmp_path / "app.py"
    app.write_text(APP)
    wrong = tmp_path / "wrong.properties"
    wrong.write_text("spark.authenticate=true\nspark.authenticate.secret=not-the-secret\n")
    wrong.chmod(0o600)
    try:
        secret = cluster.cluster_secret(target)
        assert target.secret_file.stat().st_mode & 0o777 == 0o600
        daemons_pids = [int(p.read_text()) for p in target.state_dir.glob("*.pid")]
        assert len(daemons_pids) == 2 and not exposures([secret], descendants(*daemons_pids))

        logs = {"no secret": tmp_path / "no-secret.log", "wrong secret": tmp_path / "wrong-secret.log"}
        refused = {
            "no secret": submit(target, app, logs["no secret"]),
            "wrong secret": submit(
                target, app, logs["wrong secret"], "--properties-file", str(wrong), "--load-spark-defaults"
            ),
        }
        outputs = {}
        try:
            for case, process in refused.items():
                outputs[case] = wait_for(
                    process,
                    logs[case],
                    "does not have SASL enabled" if case == "no secret" else "Exception while bootstrapping client",
                )
        finally:
            for process in refused.values():
                process.kill()
                process.wait()
        assert "Failed to connect to master" in outputs["no secret"], outputs["no secret"][-3000:]
        assert "does not have SASL enabled" in outputs["no secret"], outputs["no secret"][-3000:]
        assert "Exception while bootstrapping client" in outputs["wrong secret"], outputs["wrong secret"][-3000:]
        assert "ANSWER" not in "".join(outputs.values())
        assert not cluster.master_state(target)["activeapps"]

        log = tmp_path / "with-secret.log"
        accepted = submit(target, app, log, *target.submit_options()[2:])
        try:
            answered = wait_for(accepted, log, "ANSWER")
            assert "ANSWER 10 NO_SECRET_IN_PYTHON_WORKER" in answered, answered[-3000:]
            # Only the executor (a child of the worker) holds the secret, in its environment.
            everything = descendants(*daemons_pids, accepted.pid)
            found = exposures([secret], everything)
            assert len(found) == 1 and found[0].endswith(": environ"), found
            executor = int(found[0].split()[0])
            assert b"CoarseGrainedExecutorBackend" in Path(f"/proc/{executor}/cmdline").read_bytes()
            Path(f"{app}.done").touch()
            assert accepted.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            if accepted.poll() is None:
                accepted.kill()
        assert [app["name"] for app in cluster.master_state(target)["completedapps"]] == ["with-secret"]
    finally:
        cluster.stop(target)
