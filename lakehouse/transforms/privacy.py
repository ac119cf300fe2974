"""Pseudonymisation: private values (user ids, e-mails, client IPs) become keyed hashes before silver.

The hash is HMAC-SHA256 computed by Spark itself (two ``sha2`` over the key's inner and outer pads),
so it runs in the JVM on any cluster and equals Python's ``hmac.new(key, value, sha256)``. Without the
key nobody can recompute a pseudonym from a guessed e-mail or id; with it, the same value always maps
to the same pseudonym, so joins across tables and runs still work. Raw values stay only in bronze.

The key comes from the environment (``LAKEHOUSE_PSEUDONYM_KEY``), never from a committed file. Where
it is not set and the configuration names a local ``privacy.key_file`` (conf/local.yaml), a random
key is generated there once (mode 0600, under the git-ignored ``.cache/``): losing that file changes
every pseudonym, so a shared deployment sets the variable from its secret store.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Iterable, Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.sources import PrivateColumn

KEY_VARIABLE = "LAKEHOUSE_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 16
_BLOCK = 64  # SHA-256 block size in bytes
ID_HEX_DIGITS = 15  # 60 bits: an integer pseudonym fits a positive bigint; collisions ~ n^2 / 2^61
MASK = "<masked>"
# What may identify a person in free text: e-mail addresses, IPv4 addresses, and IPv6 addresses (eight
# groups, or any form with "::"; a time such as 13:55:36 has neither).
# Each starts only where a token starts (a lookbehind) and never backtracks into a run it consumed
# (possessive quantifiers), so a hostile megabyte-long line costs linear time.
EMAIL_PATTERN = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@(?:[A-Za-z0-9-]++\.)++[A-Za-z]{2,}+"
IPV4_PATTERN = r"(?<![0-9])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9])"
IPV6_PATTERN = (
    r"(?i)(?<![0-9a-f:])(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){7}"
    r"|(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*+)?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*+)?)(?![0-9a-f:])"
)


class PseudonymKeyError(RuntimeError):
    """No usable pseudonymisation key."""


def pseudonym_key(config: LakehouseConfig, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key: ``LAKEHOUSE_PSEUDONYM_KEY`` if set, else the configured local key file (created once)."""
    environ = os.environ if environ is None else environ
    value = environ.get(KEY_VARIABLE)
    if value:
        key = value.encode()
    elif config.privacy.key_file:
        key = _local_key(Path(config.privacy.key_file))
    else:
        raise PseudonymKeyError(
            f"no pseudonymisation key: set {KEY_VARIABLE} in the job's environment "
            f"(the {config.environment} configuration names no local key file)"
        )
    if len(key) < MIN_KEY_LENGTH:
        raise PseudonymKeyError(f"{KEY_VARIABLE} must be at least {MIN_KEY_LENGTH} characters")
    return key


def _local_key(path: Path) -> bytes:
    if not path.is_file():
        # Written aside, then linked into place: of two processes starting at once on a fresh checkout,
        # the first link wins and both read that one complete key (never an empty or a second one).
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip().encode()


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_hex(value: Column, key: bytes, purpose: str) -> Column:
    """HMAC-SHA256 (hex) of ``purpose:value`` as a Spark column; null stays null.

    ``purpose`` separates kinds of value (``user``, ``email``, ``ip``): the same text in two roles
    gets two unrelated pseudonyms.
    """
    inner_pad, outer_pad = _pads(key)
    message = F.concat(F.lit(f"{purpose}:"), value.cast("string")).cast("binary")
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), message), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)


def pseudonym_id(value: Column, key: bytes, purpose: str) -> Column:
    """A positive bigint pseudonym (the HMAC's first 60 bits) for an integer identifier."""
    return F.conv(F.substring(hmac_hex(value, key, purpose), 1, ID_HEX_DIGITS), 16, 10).cast("bigint")


def pseudonym_text(value: Column, key: bytes, purpose: str) -> Column:
    """A hex pseudonym (the full HMAC) for text such as an e-mail address or an IP address."""
    return hmac_hex(value, key, purpose)


def python_pseudonym_id(value: object, key: bytes, purpose: str) -> int:
    """The same pseudonym as :func:`pseudonym_id`, computed in Python (for tests and lookups)."""
    digest = hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
    return int(digest[:ID_HEX_DIGITS], 16)


def python_pseudonym_text(value: object, key: bytes, purpose: str) -> str:
    """The same pseudonym as :func:`pseudonym_text`, computed in Python."""
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def mask_text(value: Column) -> Column:
    """``value`` with everything that looks like an e-mail, IPv4 or IPv6 address replaced by ``<masked>``."""
    masked = F.regexp_replace(value, EMAIL_PATTERN, MASK)
    masked = F.regexp_replace(masked, IPV4_PATTERN, MASK)
    return F.regexp_replace(masked, IPV6_PATTERN, MASK)


def pseudonymise(df: DataFrame, private: Iterable[PrivateColumn], key: bytes) -> DataFrame:
    """Replace each private column of ``df`` by its keyed hash (renamed), its masked text, or drop it, in place.

    Integer columns get an integer pseudonym (:func:`pseudonym_id`: joins and tensors keep working),
    text columns a hex one (:func:`pseudonym_text`).
    """
    by_name = {column.name: column for column in private}
    missing = sorted(set(by_name) - set(df.columns))
    if missing:
        raise ValueError(f"private columns not in the rows: {missing}")
    columns = []
    for field in df.schema.fields:
        column = by_name.get(field.name)
        if column is None:
            columns.append(F.col(field.name))
        elif column.action == "mask":
            columns.append(mask_text(F.col(field.name).cast("string")).alias(column.silver_name or field.name))
        elif column.silver_name is not None:
            hashed = pseudonym_id if isinstance(field.dataType, T.IntegralType) else pseudonym_text
            columns.append(hashed(F.col(field.name), key, column.purpose).alias(column.silver_name))
    return df.select(*columns)
