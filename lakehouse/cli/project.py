"""``lakehouse`` commands that shape a project: ``init``, ``source add-database|add-files|add-images|add-labels``,
``sources``.

They write declarations (``sources/<name>.yaml``, ``schemas/``, ``expectations/``) for the user to review
and own; re-running one shows what changed and never overwrites an edited file (:mod:`lakehouse.project.scaffold`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from lakehouse.project import find_project_root, load_project, scaffold
from lakehouse.project.layout import EXPECTATIONS_DIR, SCHEMAS_DIR, SOURCES_DIR

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"source name {name!r}: use lower-case letters, digits and _, starting with a letter")


def _root() -> Path:
    return find_project_root()


def _print_report(report: scaffold.WriteReport, root: Path) -> None:
    for line in report.lines(root):
        print(line)


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir).expanduser().resolve()
    report = scaffold.init_project(target, args.name)
    _print_report(report, target)
    print(f"\nproject {target.name} created in {target}. Next:")
    print(f"  cd {target}")
    print("  lakehouse source add-files logs --path /var/log --format syslog --files 'auth.log*'")
    print(
        "  lakehouse source add-database shop --url jdbc:postgresql://HOST:5432/shop "
        "--user me --password-env SHOP_PASSWORD"
    )
    print("  lakehouse source add-images photos --path /data/photos        # <path>/<label>/<file>")
    print("  write tables/gold/<name>.sql (a SELECT over bronze.* / silver.*), then: lakehouse run --tables")
    return 0


# ---------------------------------------------------------------- add-database


def _password(args: argparse.Namespace, name: str) -> tuple[str | None, str | None]:
    """``(password for this introspection, how the declaration finds it later)``."""
    if args.password_env:
        if args.password_env not in os.environ:
            raise ValueError(f"--password-env {args.password_env}: that variable is not set")
        return os.environ[args.password_env], f"env:{args.password_env}"
    if args.no_password:
        return None, None
    variable = f"{name.upper()}_PASSWORD"
    if sys.stdin.isatty():
        secret = getpass.getpass(f"password for {args.user or 'the database'} (not stored; jobs read ${variable}): ")
        return (secret or None), (f"env:{variable}" if secret else None)
    return None, None


def _keys_option(values: list[str]) -> dict[str, tuple[str, ...]]:
    keys = {}
    for value in values or []:
        table, sep, columns = value.partition("=")
        if not sep or not columns:
            raise ValueError(f"--keys {value!r}: expected TABLE=col1,col2")
        keys[table] = tuple(c.strip() for c in columns.split(",") if c.strip())
    return keys


def cmd_add_database(args: argparse.Namespace) -> int:
    from lakehouse.engine.session import get_spark
    from lakehouse.project.config import load_config
    from lakehouse.sources.jdbc import describe_tables, redact_url

    _check_name(args.name)
    root = _root()
    password, password_from = _password(args, args.name)
    config = load_config(args.conf_file)
    # introspection needs no shared catalog: a session of its own, nothing registered
    config = replace(config, catalog=replace(config.catalog, metastore="in-memory"))
    print(f"reading the catalog of {redact_url(args.url)} ...", flush=True)
    spark = get_spark(config, app_name=f"lakehouse-add-database-{args.name}")
    tables = describe_tables(
        spark, args.url, args.user, password, schema=args.schema, tables=args.table or None, driver=args.driver
    )
    given_keys = _keys_option(args.keys)
    report = scaffold.WriteReport()
    declared, skipped = [], []
    for info in tables:
        keys = given_keys.get(info.name) or info.keys or (info.unique_keys[0] if info.unique_keys else ())
        if not keys:
            skipped.append(info.name)
            continue
        columns = [(c.name, c.type, c.nullable, c.comment or f"{c.source_type} in the source") for c in info.columns]
        body = scaffold.schema_yaml(f"{args.name}.{info.name}", columns, redact_url(args.url))
        scaffold.write_generated(
            root / SCHEMAS_DIR / "bronze" / args.name / f"{info.name}.yaml",
            body,
            f"lakehouse source add-database {args.name}",
            report,
        )
        private = [(p.column, p.silver_name if p.action == "hash" else None, p.kind, p.evidence) for p in info.private]
        declared.append((info.name, keys, info.partition_column, private))
        flags = [f"{info.row_count:,} rows", f"keys {', '.join(keys)}"]
        if info.partition_column:
            flags.append(f"read in parallel on {info.partition_column}")
        if info.private:
            flags.append("private: " + ", ".join(f"{p.column} ({p.kind}, {p.action})" for p in info.private))
        print(f"  {info.name}: {len(info.columns)} columns, " + "; ".join(flags))
    if not declared:
        raise ValueError(
            f"no table to declare ({', '.join(skipped) or 'the schema holds none'}: without primary "
            "keys pass --keys TABLE=col,...)"
        )
    body = scaffold.database_source_yaml(
        args.description or f"the {args.name} database",
        args.url,
        args.user,
        password_from,
        args.schema,
        args.driver,
        declared,
    )
    scaffold.write_generated(
        root / SOURCES_DIR / f"{args.name}.yaml", body, f"lakehouse source add-database {args.name}", report
    )
    print()
    _print_report(report, root)
    for name in skipped:
        print(f"skipped {name}: no primary or unique key (declare one: --keys {name}=col1,col2)")
    _check_loads(root)
    print(
        f"\nreview them, then land them: lakehouse run --select ingest_{args.name}"
        + (f" (with ${password_from[4:]} set)" if password_from else "")
    )
    return 0


def _check_loads(root: Path) -> None:
    """Load the project again so a declaration that does not fit is reported now, not at the next run."""
    load_project(root, reload=True)


# ---------------------------------------------------------------- add-files


def _columns_option(text: str | None) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    pairs = []
    for part in text.split(","):
        name, sep, type_name = part.partition(":")
        if not sep:
            raise ValueError(f"--columns {text!r}: expected name:type,name:type")
        pairs.append((name.strip(), type_name.strip()))
    return tuple(pairs)


def sample_lines(folder: str, glob: str | None, limit: int = 1000) -> list[str]:
    """Up to ``limit`` lines from the first files under a local ``folder`` (decompressed), for inference."""
    from fnmatch import fnmatch

    from lakehouse.sources.file_lines import file_lines
    from lakehouse.sources.formats import DEFAULT_MAX_LINE_BYTES

    base = Path(folder.removeprefix("file:"))
    if "://" in folder or not base.is_dir():
        return []
    lines: list[str] = []
    for path in sorted(p for p in base.rglob("*") if p.is_file() and (glob is None or fnmatch(p.name, glob))):
        for line in file_lines(path.read_bytes(), DEFAULT_MAX_LINE_BYTES):
            if line.text is not None:
                lines.append(line.text)
            if len(lines) >= limit:
                return lines
    return lines


def _private_for_files(fmt: str, columns, samples: list[str]) -> list[tuple[str, str | None, str]]:
    """The private declarations a file source gets by default: its format's, plus declared columns that
    look personal by name or by sampled values."""
    from lakehouse.sources.jdbc import ColumnInfo, guess_private_columns

    private = [(c, s, p) for c, s, p in scaffold.FORMAT_PRIVATE.get(fmt, ())]
    if columns:
        records = []
        for line in samples[:200]:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                records.append(value)
        infos = [ColumnInfo(name, type_name, True, type_name) for name, type_name in columns]
        for guess in guess_private_columns("", infos, records):
            private.append((guess.column, guess.silver_name if guess.action == "hash" else None, guess.kind))
    return private


def cmd_add_files(args: argparse.Namespace) -> int:
    from lakehouse.project.config import load_config
    from lakehouse.project.sources import expand
    from lakehouse.sources.formats import FileFormat, FormatError, infer_columns

    _check_name(args.name)
    root = _root()
    options = {}
    if args.pattern:
        if args.format != "regex":
            raise ValueError(
                "--pattern is the line pattern (named groups) of --format regex; "
                "to choose which files of the folder belong to the source use --files GLOB"
            )
        options["pattern"] = args.pattern
    elif args.format == "regex":
        raise ValueError("--format regex needs --pattern REGEX with named groups, e.g. '(?P<time>\\S+) (?P<msg>.*)'")
    if args.timezone:
        options["timezone"] = args.timezone
    columns = _columns_option(args.columns)
    config = load_config(args.conf_file)
    samples = sample_lines(expand(args.path, config), args.files)
    if not columns and args.format in ("jsonl", "csv"):
        columns = infer_columns(samples, FileFormat(args.format, options=options)) if samples else ()
        if columns:
            print(f"columns inferred from {len(samples)} sampled lines: " + ", ".join(f"{n} {t}" for n, t in columns))
        elif args.format == "csv":
            print("no local files to sample: the csv header will name the columns (declare types with --columns)")
    try:
        FileFormat(args.format, columns=columns, options=options).validate()
    except FormatError as exc:
        raise ValueError(str(exc)) from exc
    private = [] if args.no_private else _private_for_files(args.format, columns, samples)
    report = scaffold.WriteReport()
    body = scaffold.file_source_yaml(
        args.description or f"{args.format} files under {args.path}",
        args.path,
        args.format,
        args.files,
        options,
        columns,
        private,
    )
    command = f"lakehouse source add-files {args.name}"
    scaffold.write_generated(root / SOURCES_DIR / f"{args.name}.yaml", body, command, report)
    scaffold.write_generated(
        root / EXPECTATIONS_DIR / "bronze" / f"{args.name}.yaml",
        scaffold.bronze_expectations_yaml(f"bronze.{args.name}"),
        command,
        report,
    )
    _print_report(report, root)
    _check_loads(root)
    print(f"\nbronze.{args.name} gets every line; land them: lakehouse run --select ingest_{args.name}")
    return 0


# ---------------------------------------------------------------- add-images


def cmd_add_images(args: argparse.Namespace) -> int:
    _check_name(args.name)
    if not args.path and not args.manifest:
        raise ValueError(
            "add-images needs --path (a folder of <label>/<file> images) or --manifest (a folder of manifests)"
        )
    root = _root()
    report = scaffold.WriteReport()
    body = scaffold.image_source_yaml(
        args.description or f"images under {args.path or args.manifest}", args.path, args.manifest
    )
    scaffold.write_generated(
        root / SOURCES_DIR / f"{args.name}.yaml", body, f"lakehouse source add-images {args.name}", report
    )
    _print_report(report, root)
    _check_loads(root)
    print(
        f"\nreferences land in bronze.{args.name}, validated images in silver.{args.name}: "
        f"lakehouse run --select silver.{args.name}"
    )
    return 0


# ---------------------------------------------------------------- add-labels


def cmd_add_labels(args: argparse.Namespace) -> int:
    _check_name(args.name)
    controls = [c.strip() for c in args.controls.split(",") if c.strip()]
    if not controls:
        raise ValueError("--controls names the labelling config's controls, e.g. label or label,box")
    root = _root()
    report = scaffold.WriteReport()
    body = scaffold.labels_source_yaml(
        args.description or f"Label Studio exports under {args.path}", args.path, controls
    )
    scaffold.write_generated(
        root / SOURCES_DIR / f"{args.name}.yaml", body, f"lakehouse source add-labels {args.name}", report
    )
    _print_report(report, root)
    _check_loads(root)
    print(
        f"\nlabels land in bronze.{args.name}; their history in silver.{args.name}, agreement in "
        f"silver.{args.name}_agreement: lakehouse run --select silver.{args.name}"
    )
    return 0


# ---------------------------------------------------------------- samples


def write_samples(target: Path, per_label: int = 10) -> dict[str, Path]:
    """Real data made by others, laid out as a user's own would be, for trying the platform: a database
    (Chinook, SQLite), a folder of server logs (fail2ban's sshd and postfix samples, Logstalgia's access
    log) and a folder of labelled pictures (Fashion-MNIST, ``<label>/<n>.png``)."""
    import shutil

    from lakehouse.install.datasets import FASHION_MNIST_LABELS, fashion_mnist_images, logstalgia_access_log, png_bytes
    from lakehouse.install.sample_databases import chinook_sqlite
    from lakehouse.install.sample_logs import fail2ban_sample

    target.mkdir(parents=True, exist_ok=True)
    database = target / "chinook.sqlite"
    shutil.copy(chinook_sqlite(), database)
    logs = target / "logs"
    logs.mkdir(exist_ok=True)
    shutil.copy(fail2ban_sample("sshd"), logs / "auth.log")
    shutil.copy(fail2ban_sample("postfix"), logs / "mail.log")
    shutil.copy(logstalgia_access_log(), logs / "access.log")
    photos = target / "photos"
    pixels, labels = fashion_mnist_images("t10k")
    written: dict[int, int] = {}
    for index, label in enumerate(labels):
        if written.get(label, 0) >= per_label:
            continue
        folder = photos / FASHION_MNIST_LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:05d}.png").write_bytes(png_bytes(pixels[index]))
        written[label] = written.get(label, 0) + 1
    return {"database": database, "logs": logs, "photos": photos}


def cmd_samples(args: argparse.Namespace) -> int:
    written = write_samples(Path(args.dir).expanduser().resolve(), args.per_label)
    print(f"database (Chinook, 11 tables): {written['database']}")
    print(f"server logs (sshd, postfix, an Apache access log): {written['logs']}")
    print(f"labelled pictures (Fashion-MNIST, <label>/<n>.png): {written['photos']}")
    return 0


# ---------------------------------------------------------------- set-aside


def cmd_set_aside(args: argparse.Namespace) -> int:
    import getpass as accounts

    from lakehouse.engine.files import set_aside
    from lakehouse.engine.session import get_spark
    from lakehouse.project.config import load_config

    config = load_config(args.conf_file)
    source = config.project.source(args.name)
    if source.kind != "files":
        raise ValueError(f"{args.name} is a {source.kind} source: set-aside moves a file of a files source")
    moved = set_aside(get_spark(config), config, source, args.file, args.reason, accounts.getuser())
    print(f"set aside {args.file} -> {moved} (recorded in ops.set_aside); the next run lands the batch without it")
    return 0


# ---------------------------------------------------------------- sources


def last_commit(table_path: str) -> tuple[int, datetime] | None:
    """The latest version of a local Delta table and when it was committed, read off its log (no Spark)."""
    log = Path(table_path.removeprefix("file:")) / "_delta_log"
    if "://" in table_path or not log.is_dir():
        return None
    commits = sorted(log.glob("*.json"))
    if not commits:
        return None
    for line in commits[-1].read_text().splitlines():
        entry = json.loads(line)
        if "commitInfo" in entry:
            stamp = datetime.fromtimestamp(entry["commitInfo"]["timestamp"] / 1000, tz=timezone.utc)
            return int(commits[-1].stem), stamp
    return int(commits[-1].stem), datetime.fromtimestamp(commits[-1].stat().st_mtime, tz=timezone.utc)


def cmd_sources(args: argparse.Namespace) -> int:
    from lakehouse.project.config import load_config

    config = load_config(args.conf_file)
    project = config.project
    if not project.sources:
        print(f"{project.root}: no sources yet (lakehouse source add-database | add-files | add-images | add-labels)")
        return 0
    for source in project.sources.values():
        where = getattr(source, "url", None) or getattr(source, "path", None) or getattr(source, "manifest", None)
        if source.kind == "database":
            from lakehouse.sources.jdbc import redact_url

            where = redact_url(where)
        print(f"{source.name} ({source.kind}{', ' + source.format if source.kind == 'files' else ''}): {where}")
        step = project.step(f"ingest_{source.name}")
        for table in (t for t in step.outputs if not t.endswith("_quarantine")):
            landed = last_commit(config.table_path(table))
            state = f"v{landed[0]}, last commit {landed[1]:%Y-%m-%d %H:%M:%S} UTC" if landed else "not landed yet"
            print(f"  {table}: {state}")
    return 0


def add_commands(commands) -> None:
    """Add these commands to the ``lakehouse`` parser's sub-commands."""
    init = commands.add_parser(
        "init", help="create a project folder: environment, sources/, tables/, schemas/, expectations/"
    )
    init.add_argument("dir", help="the folder (created if missing)")
    init.add_argument("--name", default=None, help="the project's name (default: the folder's)")
    init.set_defaults(func=cmd_init)

    samples = commands.add_parser(
        "samples",
        help="write real sample data made by others (a database, server logs, labelled pictures) to try with",
    )
    samples.add_argument("dir", help="where to write them")
    samples.add_argument("--per-label", type=int, default=10, help="pictures per label (10 labels)")
    samples.set_defaults(func=cmd_samples)

    source = commands.add_parser(
        "source", help="declare a source: add-database, add-files, add-images, add-labels, set-aside"
    )
    kinds = source.add_subparsers(dest="source_command", required=True)

    database = kinds.add_parser(
        "add-database",
        help="read a database's catalog and declare its tables (columns, keys, private columns)",
        description="Reads the database's own catalog over JDBC (PostgreSQL, SQLite, MariaDB/MySQL) and writes "
        "sources/NAME.yaml and schemas/bronze/NAME/<table>.yaml. The password comes from an environment "
        "variable (--password-env) or a prompt, and is never written to a file.",
    )
    database.add_argument("name", help="the source's name: its tables land in bronze.NAME_<table>")
    database.add_argument(
        "--url", required=True, help="JDBC URL, e.g. jdbc:postgresql://HOST:5432/DB or jdbc:sqlite:/path/db.sqlite"
    )
    database.add_argument("--user", default=None)
    database.add_argument(
        "--password-env",
        default=None,
        metavar="VARIABLE",
        help="the environment variable holding the password (the declaration names it, jobs read it)",
    )
    database.add_argument("--no-password", action="store_true", help="the database needs none (do not prompt)")
    database.add_argument("--schema", default=None, help="the database schema (default: the engine's, e.g. public)")
    database.add_argument("--table", action="append", help="only these tables (repeatable; default: all)")
    database.add_argument(
        "--keys", action="append", metavar="TABLE=COL,COL", help="keys of a table without a primary key"
    )
    database.add_argument("--driver", default=None, help="JDBC driver class (default: from the URL)")
    database.add_argument("--description", default=None)
    database.add_argument("--conf-file", default=None)
    database.set_defaults(func=cmd_add_database)

    files = kinds.add_parser(
        "add-files",
        help="declare a folder of log or data files and their format",
        description="Writes sources/NAME.yaml (and a starter expectations/bronze/NAME.yaml). Every line of every "
        "file lands in bronze.NAME, parsed by the format or rescued raw with the reason.",
    )
    files.add_argument("name", help="the source's name: its lines land in bronze.NAME")
    files.add_argument(
        "--path", required=True, help="the folder (any Hadoop URI; ${landing} is the environment's landing folder)"
    )
    files.add_argument("--format", required=True, choices=("text", "jsonl", "csv", "access_log", "syslog", "regex"))
    files.add_argument("--pattern", default=None, help="--format regex: the line pattern, with named groups")
    files.add_argument("--files", default=None, metavar="GLOB", help="which files of the folder, e.g. 'auth.log*'")
    files.add_argument(
        "--columns", default=None, help="jsonl/csv/regex: name:type,... (default: inferred from a sample)"
    )
    files.add_argument(
        "--timezone", default=None, help="syslog/regex: the zone of times written without one (default UTC)"
    )
    files.add_argument("--no-private", action="store_true", help="declare no private columns (default: the format's)")
    files.add_argument("--description", default=None)
    files.add_argument("--conf-file", default=None)
    files.set_defaults(func=cmd_add_files)

    images = kinds.add_parser(
        "add-images", help="declare a folder (or bucket prefix) of images, labelled by sub-folder or by a manifest"
    )
    images.add_argument("name", help="the source's name: bronze.NAME (references), silver.NAME (validated images)")
    images.add_argument("--path", default=None, help="the folder of images: <path>/<label>/<file>")
    images.add_argument("--manifest", default=None, help="a folder of manifests (CSV: uri,label,... or JSON lines)")
    images.add_argument("--description", default=None)
    images.set_defaults(func=cmd_add_images)

    labels = kinds.add_parser(
        "add-labels",
        help="declare a folder of Label Studio exports (JSON, JSON-MIN or CSV)",
        description="Writes sources/NAME.yaml. Every label of every export lands in bronze.NAME; silver.NAME keeps "
        "every version of every label (a re-labelled task keeps both), annotators pseudonymised; "
        "silver.NAME_agreement and silver.NAME_label_agreement say how far the annotators agree. "
        "`lakehouse labels export` writes the tasks to label.",
    )
    labels.add_argument("name", help="the source's name: bronze.NAME, silver.NAME")
    labels.add_argument(
        "--path", required=True, help="the folder of exports (any Hadoop URI; ${landing} is the landing folder)"
    )
    labels.add_argument(
        "--controls",
        default="label",
        help="the labelling config's control names, comma-separated (default: label, what `labels export` sets up)",
    )
    labels.add_argument("--description", default=None)
    labels.set_defaults(func=cmd_add_labels)

    aside = kinds.add_parser(
        "set-aside",
        help="move a file whose batch cannot land out of a files source's folder (recorded in ops.set_aside)",
        description="A batch of new files that keeps failing (a quality rule refused it, ...) is tried again by every "
        "run. Setting one of its files aside moves it to _set_aside/<source>/ beside the folder, records "
        "it in ops.set_aside, and the next run lands the batch without it. The file is kept, not deleted.",
    )
    aside.add_argument("name", help="the files source")
    aside.add_argument("file", help="the file to set aside (as the failing run named it)")
    aside.add_argument("--reason", required=True, help="why (recorded)")
    aside.add_argument("--conf-file", default=None)
    aside.set_defaults(func=cmd_set_aside)

    sources = commands.add_parser("sources", help="every source with its bronze tables and their last landing")
    sources.add_argument("--conf-file", default=None)
    sources.set_defaults(func=cmd_sources)
