"""``lakehouse labels export``: images to label, as Label Studio tasks with the classifier's pre-annotations."""

from __future__ import annotations

import argparse
import sys


def cmd_labels_export(args: argparse.Namespace) -> int:
    from lakehouse.engine.session import get_spark
    from lakehouse.labels.export import export_tasks
    from lakehouse.project.config import load_config

    config = load_config(args.conf_file)
    least_confident = None if args.all else args.least_confident
    try:
        exported = export_tasks(
            get_spark(config, app_name="lakehouse-labels-export"),
            config,
            args.out,
            table=args.table,
            where=args.where,
            least_confident=least_confident,
            model_version=args.model_version,
            local_files_root=args.local_files_root,
            config_out=args.config,
            predictions_table=args.predictions,
        )
    except ValueError as exc:  # an object outside --local-files-root
        print(f"labels export: {exc}: give the folder Label Studio serves as --local-files-root", file=sys.stderr)
        return 1
    chosen = "every image" if least_confident is None else f"the {least_confident} least confident images"
    where = f" where {args.where}" if args.where else ""
    print(f"{len(exported.tasks)} tasks written to {args.out} ({chosen} of {args.table}{where})")
    if exported.model_version:
        print(f"  {exported.predicted} with pre-annotations from {args.predictions} model {exported.model_version}")
    else:
        print(f"  no pre-annotations: {args.predictions} has no predictions yet")
    if args.config:
        print(f"  labelling config ({len(exported.labels)} labels) written to {args.config}")
    print("  import them in Label Studio (Project > Import), or: POST /api/projects/ID/import with the file")
    return 0


def add_commands(commands) -> None:
    """Register ``labels`` on the ``lakehouse`` parser's sub-commands."""
    labels = commands.add_parser("labels", help="human labels with Label Studio: export tasks to label")
    actions = labels.add_subparsers(dest="labels_command", required=True)
    export = actions.add_parser(
        "export",
        help="write Label Studio tasks for the images worth labelling (least confident first)",
        description="Write the images of --table as Label Studio tasks (its JSON import format): each task "
        "references its object and carries the classifier's label as a pre-annotation (model version, "
        "confidence as score). By default the 100 images the classifier is least confident about are chosen "
        "(uncertainty sampling); images it has not predicted come first.",
    )
    export.add_argument("--table", default="silver.images", help="the images table (default silver.images)")
    export.add_argument("--where", default=None, help='a SQL condition on the table\'s columns, e.g. "label IS NULL"')
    chosen = export.add_mutually_exclusive_group()
    chosen.add_argument(
        "--least-confident",
        type=int,
        default=100,
        metavar="N",
        help="the N images the classifier is least confident about (default 100)",
    )
    chosen.add_argument("--all", action="store_true", help="every image (still least confident first)")
    export.add_argument("--out", required=True, help="the tasks file to write (JSON)")
    export.add_argument("--config", default=None, help="also write the labelling config (XML) the tasks fit")
    export.add_argument(
        "--predictions",
        default="silver.image_predictions",
        help="the predictions table (default silver.image_predictions)",
    )
    export.add_argument(
        "--model-version", default=None, help="the model whose predictions to use (default: the newest)"
    )
    export.add_argument(
        "--local-files-root",
        default=None,
        metavar="DIR",
        help="the folder Label Studio serves local files from (LOCAL_FILES_DOCUMENT_ROOT): file: objects under "
        "it become /data/local-files/ URLs",
    )
    export.add_argument("--conf-file", default=None)
    export.set_defaults(func=cmd_labels_export)
