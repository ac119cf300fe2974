"""The SQL endpoint: Spark's Thrift JDBC/ODBC server (the HiveServer2 protocol) on 127.0.0.1.

It is one long-running Spark driver over the shared catalog (:mod:`lakehouse.services.metastore`), so it sees
every table a job registers, without a restart. Any HiveServer2 client reaches it: ``beeline``
(shipped with pyspark), PyHive, JDBC tools (``jdbc:hive2://127.0.0.1:10000/default``).

The pyspark wheel has no ``sbin/start-thriftserver.sh``: the server is started the way that script
does it, ``spark-submit --class ...HiveThriftServer2 spark-internal``, detached, with its pid and log
kept beside the warehouse.

Every client authenticates. The server runs HiveServer2's ``CUSTOM`` authentication
(``hive.server2.authentication=CUSTOM``: a SASL PLAIN user name and password on every connection) with
:data:`AUTHENTICATOR_SOURCE`, a small ``PasswdAuthenticationProvider`` compiled with the JDK's ``javac``
against the Thrift server jar pyspark ships (once, into ``.cache/sql-server/auth-<hash>``) and put on the
server's class path. It checks the name and password against the users file (default
``.cache/secrets/sql-server.users``, mode 0600): one ``name:pbkdf2-sha256:iterations:salt:hash`` line per
analyst, written by ``lakehouse sql-server add-user NAME``, which prints a generated password once. The
file is read on every connection, so accounts added or removed apply at once, without a restart. The
metastore's password reaches the server through a private ``hive-site.xml`` (:mod:`lakehouse.services.metastore`),
never its command line, and its environment holds no secret but the s3a keys it reads objects with.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.install.paths import CACHE_DIR
from lakehouse.project.config import LakehouseConfig
from lakehouse.services import daemons

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
DEFAULT_PORT = 10000
HOST = "127.0.0.1"
DEFAULT_USERS_FILE = daemons.SECRETS_DIR / "sql-server.users"
AUTHENTICATOR_CLASS = "lakehouse.auth.PasswordFileAuthenticator"
USERS_FILE_PROPERTY = "lakehouse.sql.users.file"  # a --hiveconf: HiveServer2 makes it a system property
HASH_ITERATIONS = 20_000  # the passwords are generated (144 random bits): the iterations only slow a stolen file
USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")

AUTHENTICATOR_SOURCE = """\
package lakehouse.auth;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/** HiveServer2 CUSTOM authentication against lakehouse's users file (written by lakehouse.services.sql_server). */
public class PasswordFileAuthenticator implements PasswdAuthenticationProvider {
  static final String USERS_FILE = "lakehouse.sql.users.file";

  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    String file = System.getProperty(USERS_FILE);
    if (file == null) {
      throw new AuthenticationException("the server names no users file (" + USERS_FILE + ")");
    }
    if (user == null || password == null || password.isEmpty()) {
      throw new AuthenticationException("a user name and a password are required");
    }
    try {
      for (String line : Files.readAllLines(Paths.get(file), StandardCharsets.UTF_8)) {
        String[] f = line.trim().split(":");
        if (f.length != 5 || !f[0].equals(user) || !f[1].equals("pbkdf2-sha256")) {
          continue;
        }
        byte[] expected = hex(f[4]);
        PBEKeySpec spec = new PBEKeySpec(password.toCharArray(), hex(f[3]), Integer.parseInt(f[2]), \
expected.length * 8);
        byte[] actual = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
        if (MessageDigest.isEqual(expected, actual)) {
          return;
        }
      }
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
      throw new AuthenticationException("cannot check the password: " + e, e);
    }
    throw new AuthenticationException("wrong user name or password for " + user);
  }

  private static byte[] hex(String text) {
    byte[] out = new byte[text.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(text.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }
}
"""


class SqlServerError(RuntimeError):
    """The SQL server could not be started or stopped, or an account could not be changed."""


@dataclass(frozen=True)
class SqlServer:
    """Where one environment's SQL server listens and keeps its pid and log, and whom it lets in."""

    state_dir: Path
    port: int
    host: str = HOST
    users_file: Path = field(default_factory=lambda: DEFAULT_USERS_FILE)

    @property
    def daemon(self) -> daemons.Daemon:
        return daemons.Daemon(self.state_dir, "server", THRIFT_SERVER_CLASS)

    @property
    def port_file(self) -> Path:
        return self.state_dir / "server.port"

    @property
    def log_file(self) -> Path:
        return self.daemon.log_file

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:hive2://{self.host}:{self.port}/default"


def sql_server(
    config: LakehouseConfig, port: int | None = None, users_file: str | os.PathLike | None = None
) -> SqlServer:
    """The SQL server of ``config``'s environment: on ``port``, or the one it was started on; checking
    passwords against ``users_file`` (default ``.cache/secrets/sql-server.users``, or the one it was started with)."""
    warehouse = config.warehouse.removeprefix("file:")
    if "://" in warehouse:  # object storage: keep pid and log on this machine
        state_dir = CACHE_DIR / "sql-server" / hashlib.sha1(warehouse.encode()).hexdigest()[:10]
    else:
        state_dir = Path(warehouse) / "_sql_server"
    if port is None:
        port_file = state_dir / "server.port"
        port = int(port_file.read_text()) if port_file.is_file() else DEFAULT_PORT
    if users_file is None:
        users_record = state_dir / "server.users-file"
        users_file = users_record.read_text().strip() if users_record.is_file() else DEFAULT_USERS_FILE
    return SqlServer(state_dir, port, users_file=Path(users_file).resolve())


# ---------------------------------------------------------------- accounts


def _hash(password: str, salt: bytes, iterations: int = HASH_ITERATIONS) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations).hex()


def _accounts(users_file: Path) -> list[str]:
    return [line for line in users_file.read_text().splitlines() if line.strip()] if users_file.is_file() else []


def add_user(users_file: Path, name: str) -> str:
    """Give ``name`` a new generated password (replacing any it had); return it (it is stored only hashed)."""
    if not USER_NAME.match(name):
        raise SqlServerError(f"user names are letters, digits and _ . @ - (at most 64), not {name!r}")
    password = secrets.token_urlsafe(18)
    salt = os.urandom(16)
    line = f"{name}:pbkdf2-sha256:{HASH_ITERATIONS}:{salt.hex()}:{_hash(password, salt)}"
    others = [entry for entry in _accounts(users_file) if entry.split(":", 1)[0] != name]
    daemons.write_private(users_file, "\n".join([*others, line]) + "\n")
    return password


def remove_user(users_file: Path, name: str) -> bool:
    """Remove ``name``'s account; False when there was none."""
    accounts = _accounts(users_file)
    kept = [entry for entry in accounts if entry.split(":", 1)[0] != name]
    if len(kept) == len(accounts):
        return False
    daemons.write_private(users_file, "".join(entry + "\n" for entry in kept))
    return True


def user_names(users_file: Path) -> list[str]:
    return [entry.split(":", 1)[0] for entry in _accounts(users_file)]


def check_password(users_file: Path, name: str, password: str) -> bool:
    """What the server's authenticator decides, in Python (for tests and tools)."""
    for entry in _accounts(users_file):
        fields = entry.split(":")
        if len(fields) == 5 and fields[0] == name and fields[1] == "pbkdf2-sha256":
            return secrets.compare_digest(_hash(password, bytes.fromhex(fields[3]), int(fields[2])), fields[4])
    return False


def _javac() -> str:
    home = os.environ.get("JAVA_HOME")
    found = (
        str(Path(home) / "bin" / "javac") if home and (Path(home) / "bin" / "javac").exists() else shutil.which("javac")
    )
    if not found:
        raise SqlServerError(
            "javac not found: the SQL server's password check is a Java class compiled at set-up "
            "(apt-get install openjdk-17-jdk-headless)"
        )
    return found


def compile_authenticator() -> Path:
    """The folder of the compiled :data:`AUTHENTICATOR_CLASS` (compiled the first time, ~2 s)."""
    from lakehouse.install import spark_home

    thrift_jars = sorted((spark_home() / "jars").glob("spark-hive-thriftserver_*.jar"))
    if not thrift_jars:
        raise SqlServerError(f"no spark-hive-thriftserver jar in {spark_home() / 'jars'}")
    tag = hashlib.sha256((AUTHENTICATOR_SOURCE + thrift_jars[0].name).encode()).hexdigest()[:12]
    classes = CACHE_DIR / "sql-server" / f"auth-{tag}"
    if (classes / Path(*AUTHENTICATOR_CLASS.split("."))).with_suffix(".class").is_file():
        return classes
    classes.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=classes.parent) as work:
        source = Path(work) / "PasswordFileAuthenticator.java"
        source.write_text(AUTHENTICATOR_SOURCE)
        built = Path(work) / "classes"
        done = subprocess.run(
            [_javac(), "-nowarn", "--release", "17", "-d", str(built), "-cp", str(thrift_jars[0]), str(source)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SqlServerError(f"compiling the SQL server's authenticator failed:\n{done.stderr[-3000:]}")
        try:
            built.rename(classes)
        except OSError:  # another process compiled it meanwhile
            pass
    return classes


# ---------------------------------------------------------------- the server


def server_command(config: LakehouseConfig, server: SqlServer, driver_memory: str | None = None) -> list[str]:
    """The ``spark-submit`` command line that runs the Thrift server with this environment's settings.
    It holds no secret (the metastore's password is in a private hive-site.xml, the accounts' hashes in
    the users file)."""
    from lakehouse.install import spark_home
    from lakehouse.services.spark_conf import spark_settings

    settings = spark_settings(config)
    # Client sessions are opened on threads whose class loader does not see spark.jars' class loader
    # (ClassNotFoundException: DeltaCatalog): Delta's own jars go on the server's class path too. Only
    # those: their dependencies (an older Jackson) would shadow Spark's own there. The authenticator too.
    on_class_path = [
        jar
        for jar in settings["spark.jars"].split(",")
        if Path(jar).name.startswith(("io.delta_delta-spark", "io.delta_delta-storage", "org.postgresql"))
    ]
    settings["spark.driver.extraClassPath"] = os.pathsep.join([*on_class_path, str(compile_authenticator())])
    from lakehouse.services.metastore import PASSWORD_KEY

    assert not [key for key in settings if key.endswith(PASSWORD_KEY)], "a password on the command line"
    memory = driver_memory or settings.pop("spark.driver.memory", "2g")
    settings.pop("spark.driver.memory", None)
    command = [
        str(spark_home() / "bin" / "spark-submit"),
        "--class",
        THRIFT_SERVER_CLASS,
        "--name",
        f"lakehouse-sql-server-{config.environment}",
        "--master",
        config.spark_master or "local[*]",
        "--driver-memory",
        memory,
    ]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    return command + [
        "spark-internal",
        "--hiveconf",
        f"hive.server2.thrift.bind.host={server.host}",
        "--hiveconf",
        f"hive.server2.thrift.port={server.port}",
        "--hiveconf",
        "hive.server2.authentication=CUSTOM",
        "--hiveconf",
        f"hive.server2.custom.authentication.class={AUTHENTICATOR_CLASS}",
        "--hiveconf",
        f"{USERS_FILE_PROPERTY}={server.users_file}",
    ]


def running_pid(server: SqlServer) -> int | None:
    """The pid of the server started from ``server.state_dir`` when it is still alive."""
    return daemons.running_pid(server.daemon)


def start(
    config: LakehouseConfig,
    port: int = DEFAULT_PORT,
    driver_memory: str | None = None,
    timeout_s: float = 300,
    users_file: str | os.PathLike | None = None,
) -> SqlServer:
    """Start the server detached and wait until it accepts connections; no-op when it already runs.
    It lets in the accounts of ``users_file`` (default ``.cache/secrets/sql-server.users``; see :func:`add_user`)."""
    from lakehouse.services.metastore import hive_conf_dir

    already = sql_server(config)  # the port it was started on, if it runs
    if running_pid(already) is not None:
        return already
    server = sql_server(config, port, users_file or DEFAULT_USERS_FILE)
    if daemons.port_open(server.host, server.port):
        raise SqlServerError(f"port {server.port} on {server.host} is taken by another program: pass --port")
    if not server.users_file.is_file():
        daemons.write_private(server.users_file, "")  # nobody yet: `lakehouse sql-server add-user NAME`
    command = server_command(config, server, driver_memory)
    env = daemons.child_environment(keep=daemons.S3_VARIABLES, PYSPARK_PYTHON=sys.executable)
    site = hive_conf_dir(config)
    if site is not None:
        env["HIVE_CONF_DIR"] = str(site)
    process = daemons.spawn(server.daemon, command, env=env)
    server.port_file.write_text(str(server.port))
    (server.state_dir / "server.users-file").write_text(str(server.users_file))
    try:
        daemons.wait_until(
            lambda: daemons.port_open(server.host, server.port), server.daemon, process, timeout_s, "the SQL server"
        )
    except daemons.DaemonError as exc:
        raise SqlServerError(str(exc)) from None
    return server


def stop(config: LakehouseConfig, timeout_s: float = 60) -> bool:
    """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout_s``); False when none ran."""
    return daemons.stop(sql_server(config).daemon, timeout_s)
