"""A real S3-compatible server on 127.0.0.1 (S3Proxy), to try ``s3a://`` warehouses locally and to test them.

S3Proxy (Apache-2.0, ``org.gaul:s3proxy`` on Maven Central) serves the S3 API over a folder: each bucket
is a sub-folder of ``<data_dir>/buckets`` and each object a file in it, so what Spark wrote can also be
looked at with ``ls``. Its self-contained jar is fetched by ``make setup``
(:func:`lakehouse.install.jars.fetch_s3proxy_jar`)
and runs as a plain ``java -jar`` process that the project starts and stops itself, like its PostgreSQL
(:mod:`lakehouse.services.postgres`): ``<data_dir>/s3proxy.pid``, ``s3proxy.log`` and ``s3proxy.conf`` live beside the
buckets, and :func:`start` returns once the server answers S3 requests.

Credentials. The server knows one access key and secret. Spark reads them from the environment
(``conf/cluster.yaml`` sets s3a's ``EnvironmentVariableCredentialsProvider``): whoever starts the server and
whoever runs jobs against it export the same ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``. When they are
not set, the local server uses the fixed development keys below: they guard a loopback-only server holding
throw-away data and are printed by ``lakehouse s3-server start`` (never use them for a real store). Tests
generate a random secret per server and hand :meth:`S3Server.env` to the Spark processes they start.
The secret is also written, owner-readable only, into ``s3proxy.conf`` (S3Proxy reads it from there).

The few S3 calls the project makes itself (create a bucket, upload landing files, list objects, the
conditional writes of the warehouse lock in :mod:`lakehouse.storage.locks`) are signed here with AWS Signature V4
over :mod:`http.client`: no AWS SDK for Python is needed. :class:`S3Client` reaches the store a
configuration's s3a settings name (endpoint, region, path style; keys from the environment, as s3a's
``EnvironmentVariableCredentialsProvider``); :class:`S3Server` is itself a target for the local server.

S3Proxy's own environment holds no key (it reads its one key pair from ``s3proxy.conf``, mode 0600).

Conditional writes: S3 (since 2024) and S3Proxy 4.1 refuse a ``PUT`` with ``If-None-Match: *`` when the
object exists (``412 Precondition Failed``), and S3Proxy's filesystem store makes that check and the write
one step (a race of 8 writers on one key, 150 times over, always had exactly one winner). S3Proxy's
``If-Match`` on ``PUT``/``DELETE`` is checked but not atomic (the same race had several winners), so the
lock never relies on it to decide who holds a lease: see :mod:`lakehouse.storage.locks`.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import quote, urlparse

from lakehouse.install.paths import CACHE_DIR
from lakehouse.services import daemons

DEV_ACCESS_KEY = "lakehouse-dev"
DEV_SECRET_KEY = "lakehouse-dev-secret"  # loopback development server only: see the module docstring
DEFAULT_PORT = 9000
DEFAULT_BUCKET = "lakehouse"  # conf/cluster.yaml's s3a://lakehouse/warehouse and s3a://lakehouse/landing
REGION = "us-east-1"  # S3Proxy accepts any region in a signature; s3a is told this one (conf/cluster.yaml)


class ObjectStoreError(RuntimeError):
    """The S3 server could not be started, or answered a request with an error."""


@dataclass(frozen=True)
class S3Server:
    """Where a local S3Proxy keeps its files and listens, and the one key pair it accepts."""

    data_dir: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    access_key: str = field(default_factory=lambda: os.environ.get("AWS_ACCESS_KEY_ID") or DEV_ACCESS_KEY)
    secret_key: str = field(
        default_factory=lambda: os.environ.get("AWS_SECRET_ACCESS_KEY") or DEV_SECRET_KEY, repr=False
    )

    @classmethod
    def default(cls, data_dir: str | os.PathLike | None = None, port: int | None = None) -> "S3Server":
        """The server of ``lakehouse s3-server``: ``.cache/s3`` on port 9000 unless told otherwise
        (``LAKEHOUSE_S3_DATA_DIR`` / ``LAKEHOUSE_S3_PORT`` or the arguments)."""
        data = Path(data_dir or os.environ.get("LAKEHOUSE_S3_DATA_DIR") or CACHE_DIR / "s3")
        return cls(data.resolve(), int(port or os.environ.get("LAKEHOUSE_S3_PORT") or DEFAULT_PORT))

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def buckets_dir(self) -> Path:
        return self.data_dir / "buckets"

    @property
    def daemon(self) -> daemons.Daemon:
        """Its pid and log files; its own properties file on the command line tells it from another S3Proxy."""
        return daemons.Daemon(self.data_dir, "s3proxy", marker=str(self.conf_file))

    @property
    def log_file(self) -> Path:
        return self.daemon.log_file

    @property
    def conf_file(self) -> Path:
        return self.data_dir / "s3proxy.conf"

    def env(self) -> dict[str, str]:
        """What a Spark process (``lakehouse run --conf-file conf/cluster.yaml``, ``spark-submit``) needs in
        its environment to use this server: the key pair and ``LAKEHOUSE_S3_ENDPOINT``."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "LAKEHOUSE_S3_ENDPOINT": self.endpoint,
        }


@dataclass(frozen=True)
class S3Client:
    """An S3 endpoint and the keys to sign requests to it with."""

    host: str
    port: int
    access_key: str
    secret_key: str = field(repr=False)
    secure: bool = True
    region: str = REGION
    path_style: bool = True
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config, environ: Mapping[str, str] | None = None) -> "S3Client":
        """The store ``config``'s s3a settings point at (``spark.hadoop.fs.s3a.*``, ``LAKEHOUSE_S3_ENDPOINT``
        applied), signed with the keys s3a reads from the environment."""
        environ = os.environ if environ is None else environ
        conf = config.spark_conf
        endpoint = conf.get("spark.hadoop.fs.s3a.endpoint") or f"https://s3.{REGION}.amazonaws.com"
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        access = environ.get("AWS_ACCESS_KEY_ID") or conf.get("spark.hadoop.fs.s3a.access.key")
        secret = environ.get("AWS_SECRET_ACCESS_KEY") or conf.get("spark.hadoop.fs.s3a.secret.key")
        if not access or not secret:
            raise ObjectStoreError(
                f"no S3 keys for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (what s3a signs with, "
                "conf/cluster.yaml's EnvironmentVariableCredentialsProvider)"
            )
        secure = parsed.scheme == "https"
        return cls(
            parsed.hostname or "localhost",
            parsed.port or (443 if secure else 80),
            access,
            secret,
            secure,
            conf.get("spark.hadoop.fs.s3a.endpoint.region") or REGION,
            str(conf.get("spark.hadoop.fs.s3a.path.style.access", "true")).lower() != "false",
            environ.get("AWS_SESSION_TOKEN") or None,
        )


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    found = (
        str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    )
    if not found:
        raise ObjectStoreError(
            "java not found (S3Proxy runs on the JDK 17 Spark uses): apt-get install openjdk-17-jdk-headless"
        )
    return found


def running_pid(server: S3Server) -> int | None:
    """The pid of this server's S3Proxy when it is running, else None (a stale pid file is ignored)."""
    return daemons.running_pid(server.daemon)


def _answers(server: S3Server) -> bool:
    """True once an S3 server answers on the port (S3Proxy refuses an anonymous request with an S3 error)."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=2)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        return response.getheader("x-amz-request-id") is not None
    except OSError:
        return False
    finally:
        connection.close()


def start(server: S3Server, buckets: Iterable[str] = (DEFAULT_BUCKET,), timeout: float = 60.0) -> S3Server:
    """Start S3Proxy for ``server`` (unless it already runs), wait until it answers, create ``buckets``."""
    from lakehouse.install.jars import fetch_s3proxy_jar

    if running_pid(server) is None:
        if daemons.port_open(server.host, server.port):
            raise ObjectStoreError(f"{server.host}:{server.port} is already in use: choose another port (--port)")
        jar = fetch_s3proxy_jar()
        server.buckets_dir.mkdir(parents=True, exist_ok=True)
        properties = {
            "s3proxy.endpoint": server.endpoint,
            "s3proxy.authorization": "aws-v2-or-v4",
            "s3proxy.identity": server.access_key,
            "s3proxy.credential": server.secret_key,
            "jclouds.provider": "filesystem-nio2",
            "jclouds.filesystem.basedir": str(server.buckets_dir),
        }
        server.conf_file.touch(mode=0o600)
        server.conf_file.chmod(0o600)
        server.conf_file.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        # S3Proxy's logback configuration reads its levels from these variables; its keys are in its conf file.
        env = daemons.child_environment(
            LOG_LEVEL=os.environ.get("LAKEHOUSE_S3_LOG_LEVEL", "warn"), JETTY_LOG_LEVEL="warn"
        )
        process = daemons.spawn(
            server.daemon, [_java(), "-Xmx256m", "-jar", str(jar), "--properties", str(server.conf_file)], env
        )
        try:
            daemons.wait_until(
                lambda: _answers(server), server.daemon, process, timeout, f"S3Proxy on {server.endpoint}"
            )
        except daemons.DaemonError as exc:
            raise ObjectStoreError(str(exc)) from None
    for bucket in buckets:
        create_bucket(server, bucket)
    return server


def stop(server: S3Server, timeout: float = 20.0) -> bool:
    """Stop the server (SIGTERM, then SIGKILL); False when it was not running."""
    return daemons.stop(server.daemon, timeout)


# --- the S3 REST API, signed with AWS Signature V4 ---------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def request(
    server,
    method: str,
    bucket: str,
    key: str = "",
    query: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One signed S3 request (path-style: ``/<bucket>/<key>``); returns the status and the body."""
    status, _, answer = request_with_headers(server, method, bucket, key, query, body)
    return status, answer


def request_with_headers(
    server,
    method: str,
    bucket: str,
    key: str = "",
    query: Mapping[str, str] | None = None,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request signed with AWS Signature V4 to ``server`` (an :class:`S3Server` or :class:`S3Client`),
    with extra (signed) ``headers`` such as ``If-None-Match``; returns the status, the response's headers
    (lower-case names) and its body."""
    query = dict(query or {})
    path_style = getattr(server, "path_style", True)
    host = server.host if path_style else f"{bucket}.{server.host}"
    path = ("/" + quote(bucket, safe="") if path_style else "") + ("/" + quote(key, safe="/-_.~") if key else "")
    path = path or "/"
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    region = getattr(server, "region", REGION)
    secure = getattr(server, "secure", False)
    default_port = 443 if secure else 80
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = {
        "host": host if server.port == default_port else f"{host}:{server.port}",
        "x-amz-content-sha256": payload_hash,
        "x-amz-date": amz_date,
        **{name.lower(): value for name, value in (headers or {}).items()},
    }
    if getattr(server, "session_token", None):
        signed["x-amz-security-token"] = server.session_token
    signed_headers = ";".join(sorted(signed))
    canonical_request = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{name}:{signed[name]}\n" for name in sorted(signed)),
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signing_key = _hmac(_hmac(_hmac(_hmac(("AWS4" + server.secret_key).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    sent = dict(signed)
    sent["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={server.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    sent["content-length"] = str(len(body))
    connection_class = http.client.HTTPSConnection if secure else http.client.HTTPConnection
    connection = connection_class(host, server.port, timeout=60)
    try:
        connection.request(method, path + ("?" + canonical_query if canonical_query else ""), body=body, headers=sent)
        response = connection.getresponse()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
    finally:
        connection.close()


def _check(status: int, body: bytes, what: str) -> None:
    if status >= 300:
        raise ObjectStoreError(f"{what}: HTTP {status}: {body[:500].decode(errors='replace')}")


def create_bucket(server: S3Server, bucket: str) -> None:
    """Create ``bucket`` unless this account already has it."""
    status, body = request(server, "PUT", bucket)
    if status == 409 and b"BucketAlreadyOwnedByYou" in body:
        return
    _check(status, body, f"create bucket {bucket}")


def put_object(server: S3Server, bucket: str, key: str, data: bytes) -> None:
    status, body = request(server, "PUT", bucket, key, body=data)
    _check(status, body, f"put s3://{bucket}/{key}")


def get_object(server: S3Server, bucket: str, key: str) -> bytes:
    status, body = request(server, "GET", bucket, key)
    _check(status, body, f"get s3://{bucket}/{key}")
    return body


def list_objects(server: S3Server, bucket: str, prefix: str = "") -> list[str]:
    """Every key under ``prefix`` (ListObjectsV2, page after page)."""
    keys: list[str] = []
    query = {"list-type": "2", "prefix": prefix}
    while True:
        status, body = request(server, "GET", bucket, query=query)
        _check(status, body, f"list s3://{bucket}/{prefix}")
        root = ET.fromstring(body)
        ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
        keys += [element.text or "" for element in root.iter(f"{ns}Key")]
        token = root.findtext(f"{ns}NextContinuationToken")
        if root.findtext(f"{ns}IsTruncated") != "true" or not token:
            return keys
        query = {**query, "continuation-token": token}


# --- conditional writes (the warehouse lock) ------------------------------------------------------------


def put_if_absent(server, bucket: str, key: str, data: bytes) -> str | None:
    """Create the object only if no object has that key (``If-None-Match: *``): its ETag, or None when
    one exists already (412; AWS answers 409 to two such writes racing, which loses the same way)."""
    status, headers, body = request_with_headers(server, "PUT", bucket, key, body=data, headers={"If-None-Match": "*"})
    if status in (409, 412):
        return None
    _check(status, body, f"conditional put s3://{bucket}/{key}")
    return headers.get("etag", "")


def put_if_match(server, bucket: str, key: str, data: bytes, etag: str) -> str | None:
    """Replace the object only if its ETag is still ``etag`` (``If-Match``): the new ETag, or None."""
    status, headers, body = request_with_headers(server, "PUT", bucket, key, body=data, headers={"If-Match": etag})
    if status in (404, 409, 412):
        return None
    _check(status, body, f"conditional replace s3://{bucket}/{key}")
    return headers.get("etag", "")


def head_object(server, bucket: str, key: str) -> dict[str, str] | None:
    """The object's headers (``etag``, ``last-modified``; ``date`` is the server's clock), None when absent."""
    status, headers, body = request_with_headers(server, "HEAD", bucket, key)
    if status == 404:
        return None
    _check(status, body, f"head s3://{bucket}/{key}")
    return headers


def delete_object(server, bucket: str, key: str, if_match: str | None = None) -> bool:
    """Delete the object (only while its ETag is ``if_match``, when given); False when that did not hold."""
    status, _, body = request_with_headers(
        server, "DELETE", bucket, key, headers={"If-Match": if_match} if if_match else None
    )
    if status == 412:
        return False
    _check(status, body, f"delete s3://{bucket}/{key}")
    return True


def split_uri(uri: str) -> tuple[str, str]:
    """``s3a://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3a", "s3") or not parsed.netloc:
        raise ValueError(f"expected s3a://bucket/prefix, got {uri!r}")
    return parsed.netloc, parsed.path.strip("/")


def upload_folder(server: S3Server, folder: str | os.PathLike, uri: str) -> list[str]:
    """Copy every file under ``folder`` to ``uri`` (``s3a://bucket/prefix``), keeping relative paths; returns
    the keys written. How landing files reach an ``s3a://`` landing when a generator writes local files."""
    bucket, prefix = split_uri(uri)
    root = Path(folder)
    written = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = "/".join(filter(None, [prefix, path.relative_to(root).as_posix()]))
        put_object(server, bucket, key, path.read_bytes())
        written.append(key)
    return written
