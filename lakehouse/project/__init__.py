"""A project: a user's pipeline in a folder of its own, read into declarations and steps.

:func:`find_project_root` says which folder (``--project DIR``, ``$LAKEHOUSE_PROJECT``, the folder holding
the environment file, or the nearest folder above the current one that holds ``lakehouse_project.yaml``);
:func:`load_project` reads its sources and definitions (see :mod:`lakehouse.project.layout`) into
:class:`Project`: every table's declaration and every step of the pipeline, in dependency order. Nothing
here touches Spark or data.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import yaml

from lakehouse.project.definitions import DefinitionError, TableDefinition, load_definitions
from lakehouse.project.layout import EXPECTATIONS_DIR, MARKER_FILE, SCHEMAS_DIR
from lakehouse.project.sources import (
    DatabaseSource,
    FileSource,
    ImageSource,
    LabelsSource,
    Source,
    SourceError,
    load_sources,
)
from lakehouse.project.steps import Step, ingest_step_name, order_steps
from lakehouse.project.tables import (
    PLATFORM_TABLES,
    TableDeclaration,
    current_state_declaration,
    history_declaration,
    snapshot_declaration,
)

PROJECT_VARIABLE = "LAKEHOUSE_PROJECT"
BUILTIN_IMAGE_SCHEMAS = ("bronze/image_refs.yaml", "silver/images.yaml", "silver/image_references.yaml")
BUILTIN_LABELS_SCHEMAS = (
    "bronze/label_exports.yaml",
    "silver/labels.yaml",
    "silver/label_agreement.yaml",
    "silver/label_agreement_by_label.yaml",
)


class ProjectError(ValueError):
    """No project, or one whose declarations do not fit together; the message names the file."""


def find_project_root(
    explicit: str | os.PathLike | None = None,
    conf_file: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The project folder: ``explicit``, else ``$LAKEHOUSE_PROJECT``, else the nearest folder holding
    ``lakehouse_project.yaml`` above the environment file ``conf_file``, else above the current folder."""
    environ = os.environ if environ is None else environ
    chosen = explicit or environ.get(PROJECT_VARIABLE)
    if chosen:
        root = Path(chosen).expanduser().resolve()
        if not (root / MARKER_FILE).is_file():
            raise ProjectError(f"{root} is not a project (no {MARKER_FILE}): create one with `lakehouse init {chosen}`")
        return root
    starts = [Path(conf_file).expanduser().resolve().parent] if conf_file else []
    starts.append((cwd or Path.cwd()).resolve())
    for start in starts:
        for folder in (start, *start.parents):
            if (folder / MARKER_FILE).is_file():
                return folder
    raise ProjectError(
        f"no project here: no {MARKER_FILE} in {starts[-1]} or above. Run inside a project, pass "
        f"--project DIR or set {PROJECT_VARIABLE} (`lakehouse init DIR` creates one)"
    )


@dataclass(frozen=True)
class Project:
    """Everything a project declares: sources, definitions, every table and every step."""

    root: Path
    name: str
    description: str
    sources: Mapping[str, Source]
    definitions: Mapping[str, TableDefinition]
    declarations: tuple[TableDeclaration, ...]  # every table but the quarantine ones, upstreams first
    steps: tuple[Step, ...]  # in dependency order
    inputs: Mapping[str, Mapping[str, str]]  # definition -> {its reference (SQL name or parameter) -> table}

    def tables(self, include_quarantine: bool = True) -> list[TableDeclaration]:
        """Every declared table in dependency order, quarantine tables right after their parent."""
        tables = []
        for declaration in self.declarations:
            tables.append(declaration)
            if include_quarantine and declaration.has_quarantine:
                tables.append(declaration.quarantine)
        return tables

    def table(self, name: str) -> TableDeclaration:
        """The declaration of ``name`` (``layer.table``); ``KeyError`` naming close matches otherwise."""
        for declaration in self.tables():
            if declaration.name == name:
                return declaration
        names = [d.name for d in self.tables()]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; declared: {', '.join(names)}"
        raise KeyError(f"no table named {name!r} in the project {self.root}{hint}")

    def step(self, name: str) -> Step:
        """The step called ``name``, or the step that writes the table ``name``."""
        for step in self.steps:
            if step.name == name or name in step.outputs or name.removesuffix("_quarantine") in step.outputs:
                return step
        close = difflib.get_close_matches(name, [s.name for s in self.steps], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see `lakehouse dag`)"
        raise KeyError(f"no step or table {name!r}{hint}")

    def source(self, name: str) -> Source:
        if name not in self.sources:
            known = ", ".join(self.sources) or "none"
            raise KeyError(f"no source {name!r} in {self.root / 'sources'}; sources: {known}")
        return self.sources[name]

    def sources_of_kind(self, kind: str) -> list[Source]:
        return [source for source in self.sources.values() if source.kind == kind]


@lru_cache(maxsize=None)
def _load(root: str) -> Project:
    return build_project(Path(root))


def load_project(root: str | os.PathLike, reload: bool = False) -> Project:
    """The project at ``root``, read once per process (``reload`` reads it again): a long-lived process (a
    notebook, the SQL server) sees the declarations as they were when it first read them."""
    location = str(Path(root).resolve())
    if reload:
        _load.cache_clear()
    return _load(location)


def forget_loaded_projects() -> None:
    """Read every project again when next asked (each ``lakehouse`` command starts this way)."""
    _load.cache_clear()


def build_project(root: Path) -> Project:
    """Read the project at ``root``: its marker, sources and definitions; check that they fit together."""
    marker = root / MARKER_FILE
    if not marker.is_file():
        raise ProjectError(f"{root} is not a project (no {MARKER_FILE}): create one with `lakehouse init {root}`")
    try:
        about = yaml.safe_load(marker.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProjectError(f"{marker}: not valid YAML: {exc}") from exc
    try:
        sources = load_sources(root)
        definitions = load_definitions(root)
    except (SourceError, DefinitionError) as exc:
        raise ProjectError(str(exc)) from exc
    builder = _Builder(root)
    for source in sources.values():
        builder.add_source(source)
    inputs = builder.add_definitions(definitions)
    try:
        steps = builder.linked_steps()
    except ValueError as exc:
        raise ProjectError(f"{root}: {exc}") from exc
    order = {table: n for n, step in enumerate(steps) for table in step.outputs}
    declared = sorted(builder.declarations, key=lambda d: order.get(d.name, len(order)))
    return Project(
        root=root,
        name=str(about.get("name") or root.name),
        description=str(about.get("description") or ""),
        sources=sources,
        definitions=definitions,
        declarations=tuple(declared) + PLATFORM_TABLES,
        steps=tuple(steps),
        inputs=inputs,
    )


class _Builder:
    """Collects declarations and steps, checking that every table has one writer."""

    def __init__(self, root: Path):
        self.root = root
        self.declarations: list[TableDeclaration] = []
        self.steps: list[Step] = []
        self.writer: dict[str, str] = {declaration.name: "the platform" for declaration in PLATFORM_TABLES}

    def expectations_for(self, table: str) -> Path | None:
        layer, _, short = table.partition(".")
        path = self.root / EXPECTATIONS_DIR / layer / f"{short}.yaml"
        return path if path.is_file() else None

    def schema_for(self, table: str) -> Path | None:
        layer, _, short = table.partition(".")
        path = self.root / SCHEMAS_DIR / layer / f"{short}.yaml"
        return path if path.is_file() else None

    def declare(self, declaration: TableDeclaration, where: Path) -> None:
        names = [declaration.name] + ([declaration.quarantine.name] if declaration.has_quarantine else [])
        for name in names:
            if name in self.writer:
                raise ProjectError(f"{where}: {name} is already written by {self.writer[name]}")
            self.writer[name] = str(where)
        self.declarations.append(declaration)

    def add_step(self, step: Step) -> None:
        self.steps.append(step)

    def linked_steps(self) -> list[Step]:
        """The steps with the steps writing their inputs filled in, in dependency order."""
        writers = {name: step.name for step in self.steps for name in step.outputs}
        linked = [
            replace(
                step,
                upstream_steps=tuple(
                    dict.fromkeys(
                        writers[name] for name in step.inputs if name in writers and writers[name] != step.name
                    )
                ),
            )
            for step in self.steps
        ]
        return order_steps(linked)

    def _files(self, *paths: Path | None) -> tuple[Path, ...]:
        return tuple(p for p in paths if p is not None)

    # ------------------------------------------------------------ sources

    def add_source(self, source: Source) -> None:
        adders = {
            "database": self._database,
            "files": self._files_source,
            "images": self._images,
            "labels": self._labels,
        }
        adders[source.kind](source)

    def _database(self, source: DatabaseSource) -> None:
        ingest = ingest_step_name(source.name)
        bronze = []
        for table in source.tables:
            if not table.columns_file.is_file():
                raise ProjectError(
                    f"{source.file}: table {table.name} has no column file {table.columns_file} "
                    f"(`lakehouse source add-database {source.name} --url ...` writes it)"
                )
            declaration = snapshot_declaration(table, ingest, source.file, self.expectations_for(table.bronze_name))
            self.declare(declaration, source.file)
            bronze.append(declaration)
        self.add_step(
            Step(
                name=ingest,
                kind="ingest_database",
                source=source.name,
                outputs=tuple(n for d in bronze for n in (d.name, d.quarantine.name)),
                inputs=(),
                upstream_steps=(),
                files=self._files(
                    source.file, *(t.columns_file for t in source.tables), *(d.expectations_file for d in bronze)
                ),
                description=f"snapshots of {source.name}'s tables into bronze ({source.url.split('?')[0]})",
            )
        )
        for table in source.tables:
            current = current_state_declaration(
                table, table.silver_name, source.file, self.expectations_for(table.silver_name)
            )
            history = history_declaration(
                table, table.silver_name, source.file, self.expectations_for(table.history_name)
            )
            self.declare(current, source.file)
            self.declare(history, source.file)
            self.add_step(
                Step(
                    name=table.silver_name,
                    kind="snapshot_silver",
                    source=source.name,
                    outputs=(current.name, current.quarantine.name, history.name),
                    inputs=(table.bronze_name,),
                    upstream_steps=(),
                    files=self._files(
                        source.file, table.columns_file, current.expectations_file, history.expectations_file
                    ),
                    description=f"current state and history of {source.name}.{table.name} from its snapshots (MERGE)",
                )
            )

    def _files_source(self, source: FileSource) -> None:
        from lakehouse.sources.formats import FormatError, bronze_schema

        fmt = file_format(source)
        try:
            fmt.validate()
        except FormatError as exc:
            raise ProjectError(f"{source.file}: {exc}") from exc
        ingest = ingest_step_name(source.name)
        declaration = TableDeclaration(
            name=source.bronze_name,
            description=source.description
            or f"Lines of the {source.format} files under {source.path}: every line, "
            "parsed where it parses, otherwise kept raw with the reason (rescued).",
            step=ingest,
            format_schema=bronze_schema(fmt),
            expectations_file=self.expectations_for(source.bronze_name),
            private_columns=source.private,
            defined_in=source.file,
        )
        self.declare(declaration, source.file)
        self.add_step(
            Step(
                name=ingest,
                kind="ingest_files",
                source=source.name,
                outputs=(declaration.name,),
                inputs=(),
                upstream_steps=(),
                files=self._files(source.file, declaration.expectations_file),
                description=f"new {source.format} files under {source.path} into {declaration.name}",
            )
        )

    def _images(self, source: ImageSource) -> None:
        from lakehouse.project.layout import BUILTIN_SCHEMAS

        refs_schema, images_schema, references_schema = (BUILTIN_SCHEMAS / p for p in BUILTIN_IMAGE_SCHEMAS)
        ingest = ingest_step_name(source.name)
        where = source.manifest or source.path
        refs = TableDeclaration(
            name=source.bronze_name,
            description=source.description
            or f"Image references under {where}: object URI, label and metadata, "
            "one row per object (or manifest line); the objects themselves stay where they are.",
            step=ingest,
            schema_file=refs_schema,
            expectations_file=self.expectations_for(source.bronze_name),
            defined_in=source.file,
        )
        images = TableDeclaration(
            name=source.silver_name,
            description=f"Validated images of {source.name}, one row per distinct content (sha256): bytes, format, "
            "width, height; unreadable, missing and non-image objects go to the quarantine table with the reason.",
            step=source.silver_name,
            schema_file=images_schema,
            upstreams=(refs.name,),
            expectations_file=self.expectations_for(source.silver_name),
            keys=("content_hash",),
            has_quarantine=True,
            defined_in=source.file,
        )
        references = TableDeclaration(
            name=source.references_name,
            description=f"Every readable image reference of {source.name}: object URI, the content hash of its "
            "bytes, label, metadata.",
            step=source.silver_name,
            schema_file=references_schema,
            upstreams=(refs.name,),
            expectations_file=self.expectations_for(source.references_name),
            keys=("object_uri",),
            defined_in=source.file,
        )
        for declaration in (refs, images, references):
            self.declare(declaration, source.file)
        self.add_step(
            Step(
                name=ingest,
                kind="ingest_images",
                source=source.name,
                outputs=(refs.name,),
                inputs=(),
                upstream_steps=(),
                files=self._files(source.file, refs.expectations_file),
                description=f"image references under {where} into {refs.name}",
            )
        )
        self.add_step(
            Step(
                name=images.name,
                kind="images_silver",
                source=source.name,
                outputs=(images.name, images.quarantine.name, references.name),
                inputs=(refs.name,),
                upstream_steps=(),
                files=self._files(source.file, images.expectations_file, references.expectations_file),
                description=f"fetch, decode, hash and deduplicate {source.name}'s images",
            )
        )

    def _labels(self, source: LabelsSource) -> None:
        from lakehouse.project.layout import BUILTIN_SCHEMAS
        from lakehouse.project.sources import PrivateColumn

        bronze_schema, labels_schema, task_schema, label_schema = (BUILTIN_SCHEMAS / p for p in BUILTIN_LABELS_SCHEMAS)
        ingest = ingest_step_name(source.name)
        bronze = TableDeclaration(
            name=source.bronze_name,
            description=source.description
            or f"Every label of the Label Studio exports under {source.path}, one row per label an annotator gave "
            "a task; a file that is not a readable export is kept as one row with the reason (rescued).",
            step=ingest,
            schema_file=bronze_schema,
            expectations_file=self.expectations_for(source.bronze_name),
            private_columns=(PrivateColumn("annotator", "annotator_id", "label_annotator"),),
            defined_in=source.file,
        )
        labels = TableDeclaration(
            name=source.silver_name,
            description=f"Every version of every label of {source.name} (type 2: a re-labelled task keeps both), "
            "annotators pseudonymised; export files that could not be read go to the quarantine table.",
            step=source.silver_name,
            schema_file=labels_schema,
            upstreams=(bronze.name,),
            expectations_file=self.expectations_for(source.silver_name),
            has_quarantine=True,
            defined_in=source.file,
        )
        per_task = TableDeclaration(
            name=source.agreement_name,
            description=f"Per task of {source.name}: the annotators' current choices, majority label and the share "
            "of annotator pairs that agree.",
            step=source.silver_name,
            schema_file=task_schema,
            upstreams=(bronze.name,),
            expectations_file=self.expectations_for(source.agreement_name),
            defined_in=source.file,
        )
        per_label = TableDeclaration(
            name=source.label_agreement_name,
            description=f"Krippendorff's alpha of {source.name}'s annotators, over all labels and per label.",
            step=source.silver_name,
            schema_file=label_schema,
            upstreams=(bronze.name,),
            expectations_file=self.expectations_for(source.label_agreement_name),
            defined_in=source.file,
        )
        for declaration in (bronze, labels, per_task, per_label):
            self.declare(declaration, source.file)
        self.add_step(
            Step(
                name=ingest,
                kind="ingest_labels",
                source=source.name,
                outputs=(bronze.name,),
                inputs=(),
                upstream_steps=(),
                files=self._files(source.file, bronze.expectations_file),
                description=f"new Label Studio exports under {source.path} into {bronze.name}",
            )
        )
        self.add_step(
            Step(
                name=labels.name,
                kind="labels_silver",
                source=source.name,
                outputs=(labels.name, labels.quarantine.name, per_task.name, per_label.name),
                inputs=(bronze.name,),
                upstream_steps=(),
                files=self._files(
                    source.file, labels.expectations_file, per_task.expectations_file, per_label.expectations_file
                ),
                description=f"history and agreement of {source.name}'s labels",
            )
        )

    # ------------------------------------------------------------ definitions

    def add_definitions(self, definitions: Mapping[str, TableDefinition]) -> dict[str, dict[str, str]]:
        for definition in definitions.values():  # declared first: definitions may read each other in any order
            for name in (definition.name, f"{definition.name}_quarantine" if definition.settings.quarantine else None):
                if name and name in self.writer:
                    raise ProjectError(f"{definition.file}: {name} is already written by {self.writer[name]}")
        known = set(self.writer) | set(definitions)
        known |= {f"{d.name}_quarantine" for d in definitions.values() if d.settings.quarantine}
        resolved = {name: self._resolve_inputs(d, known, definitions) for name, d in definitions.items()}
        for name, definition in definitions.items():
            settings = definition.settings
            schema = (self.root / settings.schema) if settings.schema else self.schema_for(name)
            expectations = (self.root / settings.expectations) if settings.expectations else self.expectations_for(name)
            for path, what in ((schema, "schema"), (expectations, "expectations")):
                if path is not None and not path.is_file():
                    raise ProjectError(f"{definition.file}: {what} file {path} does not exist")
            upstreams = tuple(dict.fromkeys(resolved[name].values()))
            declaration = TableDeclaration(
                name=name,
                description=settings.description
                or summary_line(definition.function.__doc__ if definition.function else None),
                step=name,
                schema_file=schema,
                upstreams=upstreams,
                expectations_file=expectations,
                keys=settings.keys,
                partition_by=settings.partition_by,
                properties=settings.properties,
                has_quarantine=settings.quarantine,
                defined_in=definition.file,
            )
            self.declare(declaration, definition.file)
            outputs = (name, declaration.quarantine.name) if settings.quarantine else (name,)
            self.add_step(
                Step(
                    name=name,
                    kind="definition",
                    outputs=outputs,
                    inputs=upstreams,
                    upstream_steps=(),
                    files=self._files(definition.file, schema, expectations),
                    description=declaration.description,
                )
            )
        return resolved

    def _resolve_inputs(
        self, definition: TableDefinition, known: set[str], definitions: Mapping[str, TableDefinition]
    ) -> dict[str, str]:
        """Each reference of a definition -> the table it means."""
        result = {}
        for reference in definition.references:
            if definition.language == "sql" or "." in reference:
                table = reference
            else:
                table = definition.settings.inputs.get(reference) or self._by_short_name(reference, known, definition)
            if table not in known:
                close = difflib.get_close_matches(table, sorted(known), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ProjectError(f"{definition.file}: reads {table!r}, which no source or definition declares{hint}")
            if table == definition.name:
                raise ProjectError(
                    f"{definition.file}: a table cannot read itself (use mode insert_new or incremental)"
                )
            result[reference] = table
        return result

    def _by_short_name(self, parameter: str, known: set[str], definition: TableDefinition) -> str:
        matches = sorted(name for name in known if name.split(".", 1)[1] == parameter)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            close = difflib.get_close_matches(parameter, sorted(n.split(".", 1)[1] for n in known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ProjectError(
                f"{definition.file}: parameter {parameter!r} names no table{hint} "
                f"(or map it: @table(inputs={{{parameter!r}: 'layer.name'}}))"
            )
        raise ProjectError(
            f"{definition.file}: parameter {parameter!r} could be {' or '.join(matches)}: "
            f"say which with @table(inputs={{{parameter!r}: '{matches[0]}'}})"
        )


def summary_line(text: str | None) -> str:
    """A docstring's summary: its first paragraph on one line (a wrapped first sentence stays whole)."""
    return " ".join((text or "").strip().split("\n\n")[0].split())


def file_format(source: FileSource):
    """The :class:`~lakehouse.sources.formats.FileFormat` a file source declares."""
    from lakehouse.sources.formats import DEFAULT_MAX_LINE_BYTES, FileFormat

    return FileFormat(
        name=source.format,
        columns=source.columns,
        options=dict(source.options),
        max_line_bytes=source.max_line_bytes or DEFAULT_MAX_LINE_BYTES,
    )
