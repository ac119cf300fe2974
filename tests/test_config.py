from pathlib import Path

import pytest

from helpers import DEMO_CONF_FILE, DEMO_PROJECT
from lakehouse.project.config import ConfigError, load_config


def test_local_paths_resolve_against_project_root_not_cwd(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    config = load_config(DEMO_CONF_FILE, environ={})
    assert config.warehouse == str(DEMO_PROJECT / "warehouse")
    assert config.checkpoints == str(DEMO_PROJECT / "warehouse" / "_checkpoints")
    assert config.table_path("silver.events") == str(DEMO_PROJECT / "warehouse" / "silver" / "events")
    assert config.spark_master == "local[*]"


def test_environment_overrides_and_uri_warehouse():
    config = load_config(DEMO_CONF_FILE, environ={"LAKEHOUSE_WAREHOUSE": "s3a://bucket/wh/"})
    assert config.warehouse == "s3a://bucket/wh"
    assert config.table_path("gold.x") == "s3a://bucket/wh/gold/x"
    assert config.loader_cache == "s3a://bucket/wh/_cache/petastorm"
    # conf/local.yaml's `mlflow:` section holds only comments (None in YAML): overriding into it works
    overridden = load_config(
        DEMO_CONF_FILE, environ={"MLFLOW_TRACKING_URI": "sqlite:///x.db", "LAKEHOUSE_PG_PORT": "6543"}
    )
    assert overridden.mlflow_tracking_uri == "sqlite:///x.db"
    assert overridden.postgres.port == 6543 and overridden.postgres.jdbc_url("appdb").endswith(":6543/appdb")


def test_missing_file_and_bad_keys_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("paths: {warehouse: w}\nscenario: {seeed: 1}\n")
    with pytest.raises(ConfigError, match="seeed"):
        load_config(bad, environ={})
    no_warehouse = tmp_path / "nowh.yaml"
    no_warehouse.write_text("paths: {}\n")
    with pytest.raises(ConfigError, match="warehouse"):
        load_config(no_warehouse, environ={})


def test_table_names_must_have_a_layer():
    config = load_config(DEMO_CONF_FILE, environ={})
    with pytest.raises(ValueError, match="layer.table"):
        config.table_path("events")


def test_cluster_conf_loads():
    config = load_config(Path(DEMO_PROJECT / "conf" / "cluster.yaml"), environ={})
    assert config.spark_master is None
    assert config.warehouse.startswith("s3a://")


def test_spark_jvms_start_with_the_compile_thresholds_and_leave_extra_java_options_to_the_user(spark):
    from lakehouse.install import spark_home
    from lakehouse.services.spark_conf import JIT_OPTIONS

    started_with = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    thresholds = [arg for arg in started_with if arg.startswith("-XX:Tier4")]
    assert thresholds == JIT_OPTIONS.split()
    user_slot = spark.conf.get("spark.driver.extraJavaOptions")  # holds only the project's Derby folder
    assert "-Dderby.system.home=" in user_slot and "-XX:" not in user_slot
    # a plain spark-submit and the executors of a cluster get them from the set-up's spark-defaults.conf
    defaults = (spark_home() / "conf" / "spark-defaults.conf").read_text().splitlines()
    for role in ("driver", "executor"):
        assert f"spark.{role}.defaultJavaOptions {JIT_OPTIONS}" in defaults


def test_sessions_map_the_class_archive_set_up_wrote_unless_a_conf_folder_of_the_users_rules_it_out(spark, monkeypatch):
    import os

    from lakehouse.services import class_archive

    archive = class_archive.archive_for_sessions()
    assert archive is not None, "make setup writes the class archive (lakehouse.services.class_archive)"
    # The JVM validated it against its class path and JDK and mapped it: a mismatch would leave it unmapped.
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    assert str(archive) in Path(f"/proc/{pid}/maps").read_text()
    assert "SPARK_CONF_DIR" not in os.environ  # set only while the JVM starts
    assert not any(class_archive.session_conf_dir().iterdir())  # a non-empty folder on the class path: no archive
    monkeypatch.setenv("SPARK_CONF_DIR", "/etc/spark/conf")
    assert class_archive.archive_for_sessions() is None


def test_a_class_archive_that_cannot_be_written_leaves_the_last_one_and_says_why(monkeypatch):
    from lakehouse.services import class_archive

    before = sorted(class_archive.archive_dir().iterdir())
    monkeypatch.setattr(class_archive.sys, "executable", "/bin/false")  # the child dies at once
    archive, outcome = class_archive.build_archive(force=True)
    assert archive is None and outcome.startswith("not written (sessions start without it)")
    assert sorted(class_archive.archive_dir().iterdir()) == before  # no partial file left, the last archive kept


def test_catalog_defaults_to_the_shared_metastore_and_checks_its_keys(tmp_path):
    from lakehouse.services.metastore import metastore_settings

    config = load_config(DEMO_CONF_FILE, environ={"LAKEHOUSE_PG_PORT": "6543"})
    assert (config.catalog.metastore, config.catalog.database) == ("postgres", "lakehouse_metastore")
    settings = metastore_settings(config)
    assert settings["spark.sql.catalogImplementation"] == "hive"
    assert (
        settings["spark.hadoop.javax.jdo.option.ConnectionURL"]
        == "jdbc:postgresql://127.0.0.1:6543/lakehouse_metastore"
    )
    in_memory = load_config(DEMO_CONF_FILE, environ={"LAKEHOUSE_METASTORE": "in-memory"})
    assert metastore_settings(in_memory) == {"spark.sql.catalogImplementation": "in-memory"}
    for text, complaint in (
        ("catalog: {metastore: derby}\n", "must be 'postgres' or 'in-memory'"),
        ("catalog: {databse: x}\n", "databse"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text("paths: {warehouse: w}\n" + text)
        with pytest.raises(ConfigError, match=complaint):
            load_config(bad, environ={})


def test_the_project_is_the_one_named_or_the_one_holding_the_environment_file(tmp_path, monkeypatch):
    from lakehouse.project.scaffold import init_project

    init_project(tmp_path / "shop")
    by_variable = load_config(environ={"LAKEHOUSE_PROJECT": str(tmp_path / "shop")})
    assert by_variable.project_root == str(tmp_path / "shop")
    assert by_variable.warehouse == str(tmp_path / "shop" / "warehouse")  # relative paths: against the project
    by_file = load_config(tmp_path / "shop" / "conf" / "local.yaml", environ={})
    assert by_file.project_root == str(tmp_path / "shop")
    by_argument = load_config(environ={}, project=tmp_path / "shop")
    assert by_argument.project.steps == ()
    monkeypatch.chdir(tmp_path / "shop" / "conf")  # inside a project: found from the current folder
    assert load_config(environ={}).project_root == str(tmp_path / "shop")
    with pytest.raises(ConfigError, match="not a project .*lakehouse init"):
        load_config(environ={"LAKEHOUSE_PROJECT": str(tmp_path)})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no project here"):
        load_config(environ={})
