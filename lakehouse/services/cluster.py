"""A Spark standalone cluster on this machine: one master and N workers, from pyspark's own classes.

It is the smallest real distributed engine: the driver (``spark-submit --master spark://127.0.0.1:7077``)
schedules tasks on executors that run in the workers' JVMs and Python processes, shuffles go between
processes, and every job must work without sharing memory with the driver. Moving to a real cluster is
then a matter of the master URL and of storage every node can reach (``conf/cluster.yaml``).

The pyspark wheel has no ``sbin/start-master.sh``: the daemons are started the way those scripts do,
``bin/spark-class org.apache.spark.deploy.master.Master ...``, detached, with pids and logs in a state
folder (``.cache/spark-cluster`` by default).

The cluster runs with ``spark.authenticate``: the master, the workers and every application share one
generated secret, and a process without it cannot register with the master (nor a worker, nor an
executor with a driver). For a standalone cluster Spark takes the secret only from the setting
``spark.authenticate.secret`` (the secret-file settings are for Kubernetes), so it lives in a Spark
properties file of mode 0600 (:attr:`StandaloneCluster.secret_file`: ``.cache/secrets/spark-cluster.properties``
for the default cluster) handed to the daemons with ``--properties-file`` and to applications with
``spark-submit --properties-file FILE --load-spark-defaults`` (:meth:`StandaloneCluster.submit_options`):
never on a command line. Executors get it from their worker in the environment variable Spark itself
uses for that (``_SPARK_AUTH_SECRET``). The daemons' environments hold no other secret (the workers
keep the s3a keys their executors read objects with).
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lakehouse.install.paths import CACHE_DIR
from lakehouse.services import daemons

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
HOST = "127.0.0.1"
DEFAULT_STATE_DIR = CACHE_DIR / "spark-cluster"


class ClusterError(RuntimeError):
    """The cluster could not be started, or is not running."""


@dataclass(frozen=True)
class StandaloneCluster:
    """Where one cluster's master listens and where its daemons keep pids, logs and work folders."""

    state_dir: Path = DEFAULT_STATE_DIR
    port: int = 7077
    web_port: int = 8080
    host: str = HOST
    # The shared secret, as a Spark properties file (mode 0600). Default: the secrets folder's
    # spark-cluster.properties for the default cluster; <state_dir>/auth.properties for one of its own.
    secret_file: Path | None = None

    def __post_init__(self):
        if self.secret_file is None:
            default = Path(self.state_dir) == DEFAULT_STATE_DIR
            chosen = (
                daemons.SECRETS_DIR / "spark-cluster.properties"
                if default
                else Path(self.state_dir) / "auth.properties"
            )
            object.__setattr__(self, "secret_file", chosen)

    def submit_options(self) -> list[str]:
        """What ``spark-submit`` needs to run an application here: the master, and the secret from its file
        (``--load-spark-defaults`` keeps the set-up's Delta and interpreter settings)."""
        return ["--master", self.master_url, "--properties-file", str(self.secret_file), "--load-spark-defaults"]

    @property
    def master_url(self) -> str:
        """What ``spark-submit --master`` takes."""
        return f"spark://{self.host}:{self.port}"

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.web_port}"

    @property
    def master(self) -> daemons.Daemon:
        return daemons.Daemon(self.state_dir, "master", MASTER_CLASS)

    def worker(self, index: int) -> daemons.Daemon:
        return daemons.Daemon(self.state_dir, f"worker-{index}", WORKER_CLASS)

    @property
    def ports_file(self) -> Path:
        return self.state_dir / "ports.json"


def cluster(
    state_dir: Path | None = None, port: int | None = None, web_port: int | None = None, secret_file: Path | None = None
) -> StandaloneCluster:
    """The cluster kept in ``state_dir``: on the given ports and secret, or on those it was started with."""
    state_dir = Path(state_dir or DEFAULT_STATE_DIR)
    ports_file = state_dir / "ports.json"
    started = json.loads(ports_file.read_text()) if ports_file.is_file() else {}
    chosen = secret_file or started.get("secret_file")
    return StandaloneCluster(
        state_dir,
        port=port or started.get("port", StandaloneCluster.port),
        web_port=web_port or started.get("web_port", StandaloneCluster.web_port),
        secret_file=Path(chosen) if chosen else None,
    )


def _spark_class(*arguments: str) -> list[str]:
    from lakehouse.install import spark_home

    return [str(spark_home() / "bin" / "spark-class"), *arguments]


def _environment(state_dir: Path, keep: tuple[str, ...] = ()) -> dict[str, str]:
    from lakehouse.install import spark_home

    return daemons.child_environment(
        keep,
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP=HOST,  # do not resolve this machine's name: everything listens on loopback
        SPARK_WORKER_DIR=str(state_dir / "work"),
        SPARK_LOG_DIR=str(state_dir),
    )


def cluster_secret(target: StandaloneCluster) -> str:
    """The cluster's shared secret, generated into :attr:`StandaloneCluster.secret_file` the first time."""

    def properties() -> str:
        import secrets

        # spark.ui.killEnabled=false: the master's web UI (unauthenticated) cannot kill applications.
        # An executor gets the secret in _SPARK_AUTH_SECRET from its worker (it needs it); the empty
        # executorEnv value keeps it out of the Python workers the executor starts (they do not).
        return daemons.spark_properties(
            {
                "spark.authenticate": "true",
                "spark.authenticate.secret": secrets.token_hex(32),
                "spark.ui.killEnabled": "false",
                "spark.executorEnv._SPARK_AUTH_SECRET": "",
            }
        ).strip()

    daemons.create_secret(target.secret_file, properties)
    for line in daemons.read_secret(target.secret_file).splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "spark.authenticate.secret":
            return value.strip()
    raise ClusterError(f"{target.secret_file} holds no spark.authenticate.secret: remove it to generate a new one")


def master_state(target: StandaloneCluster, timeout_s: float = 5) -> dict:
    """The master's own view (its web UI's ``/json``): status, workers with cores and memory, applications."""
    with urllib.request.urlopen(f"{target.web_url}/json/", timeout=timeout_s) as response:
        return json.load(response)


def alive_workers(target: StandaloneCluster) -> list[dict]:
    """The workers the master counts as ALIVE ([] when the master does not answer)."""
    try:
        state = master_state(target)
    except OSError:
        return []
    return [worker for worker in state.get("workers", []) if worker.get("state") == "ALIVE"]


def running_workers(target: StandaloneCluster) -> list[int]:
    """Indexes of this cluster's worker daemons that are alive."""
    indexes = sorted(int(p.stem.split("-")[1]) for p in target.state_dir.glob("worker-*.pid"))
    return [i for i in indexes if daemons.running_pid(target.worker(i)) is not None]


def start(
    target: StandaloneCluster, workers: int = 2, cores: int = 1, memory: str = "2g", timeout_s: float = 120
) -> StandaloneCluster:
    """Start the master and ``workers`` workers (``cores`` and ``memory`` each), detached, and wait until
    the master counts them all ALIVE. No-op when this cluster already runs."""
    if daemons.running_pid(target.master) is not None:
        return target
    for port in (target.port, target.web_port):
        if daemons.port_open(target.host, port):
            raise ClusterError(f"port {port} on {target.host} is taken by another program: pass other ports")
    cluster_secret(target)  # generated once; the daemons read it from the file
    secret = ["--properties-file", str(target.secret_file)]
    master = daemons.spawn(
        target.master,
        _spark_class(
            MASTER_CLASS,
            "--host",
            target.host,
            "--port",
            str(target.port),
            "--webui-port",
            str(target.web_port),
            *secret,
        ),
        _environment(target.state_dir),
    )
    worker_environment = _environment(target.state_dir, keep=daemons.S3_VARIABLES)  # executors read s3a with them
    target.ports_file.write_text(
        json.dumps({"port": target.port, "web_port": target.web_port, "secret_file": str(target.secret_file)})
    )
    try:
        daemons.wait_until(
            lambda: daemons.port_open(target.host, target.port), target.master, master, timeout_s, "the Spark master"
        )
        spawned = [
            (
                index,
                daemons.spawn(
                    target.worker(index),
                    _spark_class(
                        WORKER_CLASS,
                        target.master_url,
                        "--host",
                        target.host,
                        "--cores",
                        str(cores),
                        "--memory",
                        memory,
                        "--webui-port",
                        "0",
                        "--work-dir",
                        str(target.state_dir / "work" / f"worker-{index}"),
                        *secret,
                    ),
                    worker_environment,
                ),
            )
            for index in range(workers)
        ]
        for index, process in spawned:
            daemons.wait_until(
                lambda: len(alive_workers(target)) >= workers,
                target.worker(index),
                process,
                timeout_s,
                f"Spark worker {index}",
            )
    except daemons.DaemonError as exc:
        stop(target)
        raise ClusterError(str(exc)) from None
    return target


def stop(target: StandaloneCluster) -> list[str]:
    """Stop the workers, then the master; the names of the daemons that were running."""
    stopped = [f"worker-{index}" for index in running_workers(target) if daemons.stop(target.worker(index))]
    if daemons.stop(target.master):
        stopped.append("master")
    for pid_file in target.state_dir.glob("worker-*.pid"):
        pid_file.unlink()
    return stopped


def describe(target: StandaloneCluster) -> list[str]:
    """Lines saying what runs: the master URL, each worker's cores and memory, the applications."""
    if daemons.running_pid(target.master) is None:
        return [f"no Spark master runs from {target.state_dir}"]
    try:
        state = master_state(target)
    except OSError as exc:
        return [f"master pid {daemons.running_pid(target.master)} does not answer on {target.web_url}: {exc}"]
    lines = [f"master {state.get('url', target.master_url)} ({state.get('status')}), web UI {target.web_url}"]
    for worker in state.get("workers", []):
        lines.append(
            f"  worker {worker['id']}: {worker['state']}, {worker['cores']} cores ({worker['coresused']} used), "
            f"{worker['memory']} MB ({worker['memoryused']} used)"
        )
    for app in state.get("activeapps", []):
        lines.append(f"  running application {app['name']} ({app['id']}), {app.get('cores', '?')} cores")
    return lines
