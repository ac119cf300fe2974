"""Every service the project runs asks for credentials, and no secret shows on a command line.

- PostgreSQL: scram-sha-256 for every connection, the generated password in a 0600 file; a server made
  with ``--auth=trust`` is migrated; one whose password the project lost is refused with what to do.
- The SQL server (Thrift/HiveServer2): CUSTOM authentication against the hashed accounts of
  ``lakehouse sql-server add-user``; beeline and PyHive without (or with a wrong) password are refused.
(The standalone cluster's ``spark.authenticate``: tests/test_cluster_auth.py.)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import make_config
from lakehouse.services import daemons, postgres, sql_server
from process_secrets import descendants, exposures, free_port

BIN = Path(sys.executable).parent


def _psql(server, passfile, sql="SELECT current_user"):
    """psql with nothing but ``passfile`` to authenticate with (no PGPASSWORD, no ~/.pgpass)."""
    env = {"PATH": os.environ["PATH"], "PGPASSFILE": str(passfile), "HOME": "/nonexistent"}
    return subprocess.run(
        [
            postgres._client("psql"),
            "-X",
            "-w",
            "-At",
            "-h",
            server.host,
            "-p",
            str(server.port),
            "-U",
            server.user,
            "-d",
            "postgres",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        env=env,
    )


def _reachable_folder() -> Path:
    """A temporary folder the server account can enter (as root the server runs as postgres; pytest's
    own temporary folders are private)."""
    root = Path(tempfile.mkdtemp(prefix="lakehouse-test-auth-"))
    root.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL of this module's own (so that its password file and data folder are throw-away)."""
    root = _reachable_folder()
    server = postgres.start(postgres.PostgresServer(root / "data", free_port(), password_file=root / "pg.password"))
    yield server
    postgres.stop(server)
    shutil.rmtree(root, ignore_errors=True)


def test_postgres_refuses_a_client_without_the_password_and_admits_one_with_it(pg, tmp_path):
    assert pg.password_file.stat().st_mode & 0o777 == 0o600
    password = postgres.server_password(pg)
    assert password and len(password) >= 32
    hba = (pg.data_dir / "pg_hba.conf").read_text()
    assert "trust" not in re.sub(r"#.*", "", hba) and "scram-sha-256" in hba

    nothing = _psql(pg, "/dev/null")
    assert nothing.returncode != 0 and "no password supplied" in nothing.stderr
    wrong = tmp_path / "wrong.pgpass"
    daemons.write_private(wrong, f"*:*:*:*:{password}x\n")
    refused = _psql(pg, wrong)
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr
    right = tmp_path / "right.pgpass"
    daemons.write_private(right, f"*:*:*:*:{password}\n")
    admitted = _psql(pg, right)
    assert admitted.returncode == 0 and admitted.stdout.strip() == pg.user
    # The project's own clients get in through their passfile (made and removed per call).
    assert postgres.psql(pg, "postgres", "SELECT 40 + 2").strip() == "42"
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("lakehouse-pgpass-*"))

    # No process of the server holds the password, on its command line or in its environment.
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    assert len(descendants(postmaster)) > 1  # the postmaster and its background processes
    assert not exposures([password], descendants(postmaster))


def test_a_trust_server_is_migrated_and_a_lost_password_is_refused_with_advice():
    tmp_path = _reachable_folder()
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    postgres._hand_to_server_user(data)
    postgres._run(
        postgres._as_server_user(
            [
                str(postgres._bin_dir() / "initdb"),
                "-D",
                str(data),
                "-U",
                "lakehouse",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        ),
        "initdb",
    )  # the old way
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(f"\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{data}'\n")
    server = postgres.PostgresServer(data, free_port(), password_file=tmp_path / "secrets" / "pg.password")
    try:
        postgres.start(server)  # started, found trusting, migrated
        assert not postgres._trusted_lines(data)
        assert _psql(server, "/dev/null").returncode != 0
        assert (
            postgres.psql(
                server,
                "postgres",
                "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'lakehouse'",
            ).strip()
            == "t"
        )
        lost = postgres.PostgresServer(data, server.port, password_file=tmp_path / "elsewhere" / "pg.password")
        with pytest.raises(postgres.PostgresError, match="asks for a password.*missing: restore that file"):
            postgres.start(lost)
    finally:
        postgres.stop(server)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_no_password_reaches_a_spark_command_line(tmp_path, monkeypatch):
    """What pyspark passes to a new JVM as --conf (every builder setting) holds no metastore password;
    the password goes to a private hive-site.xml instead, which HIVE_CONF_DIR names."""
    from dataclasses import replace

    from pyspark import SparkContext

    from lakehouse.services import metastore
    from lakehouse.services.spark_conf import spark_settings

    monkeypatch.setattr(daemons, "SECRETS_DIR", tmp_path / "secrets")
    monkeypatch.setenv("HIVE_CONF_DIR", "")  # restored (removed) after the test
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(SparkContext, "_gateway", None)  # as before a process's first session: no JVM yet
    config = make_config(tmp_path)
    password_file = tmp_path / "pg.password"
    config = replace(
        config,
        postgres=replace(config.postgres, password_file=str(password_file)),
        catalog=replace(config.catalog, metastore="postgres"),
    )
    password = daemons.create_secret(password_file)
    settings = spark_settings(config)
    assert settings["spark.sql.catalogImplementation"] == "hive"
    assert not [key for key, value in settings.items() if metastore.PASSWORD_KEY in key or password in value]
    folder = metastore.hive_conf_dir(config)
    site = folder / "hive-site.xml"
    assert folder.stat().st_mode & 0o777 == 0o700 and site.stat().st_mode & 0o777 == 0o600
    assert f"<name>{metastore.PASSWORD_KEY}</name><value>{password}</value>" in site.read_text()
    metastore._give_password_to_this_process(config)  # what prepare_metastore does before a session starts
    assert os.environ["HIVE_CONF_DIR"] == str(folder)


# ---------------------------------------------------------------- the SQL server


@pytest.fixture(scope="module")
def thrift(tmp_path_factory):
    """The Thrift server on a free port over an empty warehouse and a catalog of its own, with accounts
    made by the CLI: alice's password printed, bob's written to a file."""
    root = tmp_path_factory.mktemp("sql")
    config = make_config(root)  # an in-memory catalog: the shared one is the SQL-server test's of the e2e file
    users = root / "users"

    def accounts(*args):
        done = subprocess.run(
            [str(BIN / "lakehouse"), "sql-server", *args, "--users-file", str(users)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    printed = accounts("add-user", "alice")
    alice = re.match(r"alice: (\S+)\n", printed).group(1)
    bob_file = root / "bob.password"
    accounts("add-user", "bob", "--password-file", str(bob_file))
    assert bob_file.stat().st_mode & 0o777 == 0o600 and users.stat().st_mode & 0o777 == 0o600
    assert alice not in users.read_text() and sql_server.check_password(users, "alice", alice)
    server = sql_server.start(config, port=free_port(), driver_memory="1g", users_file=users)
    yield {"server": server, "alice": alice, "bob_file": bob_file, "users": users, "accounts": accounts, "root": root}
    sql_server.stop(config)


def _beeline(server, user, password_file, sql):
    from lakehouse.install import spark_home

    return subprocess.run(
        [
            str(spark_home() / "bin" / "beeline"),
            "-u",
            server.jdbc_url,
            "-n",
            user,
            "-w",
            str(password_file),
            "--outputformat=csv2",
            "--silent=true",
            "-e",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"),
    )


@pytest.mark.e2e
def test_the_sql_server_refuses_clients_without_valid_credentials(thrift):
    from pyhive import hive

    server = thrift["server"]
    for credentials in (
        {"username": "alice"},  # no password (PyHive's NONE mode)
        {"username": "alice", "password": thrift["alice"] + "x", "auth": "CUSTOM"},
        {"username": "mallory", "password": thrift["alice"], "auth": "CUSTOM"},
    ):
        with pytest.raises(Exception, match="(?i)sasl|auth|login|closed|reset"):
            hive.connect(host=server.host, port=server.port, **credentials).cursor().execute("SELECT 1")
    cursor = hive.connect(
        host=server.host, port=server.port, username="alice", password=thrift["alice"], auth="CUSTOM"
    ).cursor()
    cursor.execute("SELECT 40 + 2 AS answer")
    assert cursor.fetchall() == [(42,)]

    wrong = thrift["root"] / "wrong.password"
    daemons.write_private(wrong, "not-bobs-password\n")
    refused = _beeline(server, "bob", wrong, "SELECT 1")
    assert "42" not in refused.stdout and re.search(
        r"(?i)peer indicated failure|authentication|could not open", refused.stderr + refused.stdout
    ), refused.stderr[-2000:]
    answered = _beeline(server, "bob", thrift["bob_file"], "SELECT 40 + 2 AS answer")
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert re.search(r"answer\n42\n", answered.stdout), answered.stdout

    # Removing an account takes effect at the next connection, without a restart.
    thrift["accounts"]("remove-user", "bob")
    bob = thrift["bob_file"].read_text().strip()
    with pytest.raises(Exception):
        hive.connect(host=server.host, port=server.port, username="bob", password=bob, auth="CUSTOM")

    # Neither password (nor the stored hashes) is on the server's command lines or in their environments.
    pid = sql_server.running_pid(server)
    hashes = [line.split(":")[-1] for line in thrift["users"].read_text().splitlines()]
    assert not exposures([thrift["alice"], bob, *hashes], descendants(pid))
    assert b"hive.server2.authentication=CUSTOM" in Path(f"/proc/{pid}/cmdline").read_bytes()
