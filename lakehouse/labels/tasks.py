"""Label Studio tasks (its JSON import format) for images, built from plain rows: no Spark here.

A task references its object (``data.image``: a URL Label Studio can show, ``data.object_uri`` and
``data.content_hash``: where it came from and which content it is) and carries the classifier's output as
a pre-annotation (``predictions``: its label as a choice, the model version and the confidence as score).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

IMAGE_FIELD = "image"  # the <Image name=...> of the labelling config, and the task's data key
CHOICES_FIELD = "label"  # the <Choices name=...>
LOCAL_FILES_URL = "/data/local-files/?d="  # Label Studio's local files endpoint (LOCAL_FILES_SERVING_ENABLED)


@dataclass(frozen=True)
class ImageToLabel:
    """One image to label, with what the classifier says it shows (``None`` where it has no prediction)."""

    content_hash: str
    object_uri: str
    predicted_label: str | None = None
    confidence: float | None = None
    model_version: str | None = None


def task_url(object_uri: str, local_files_root: str | None = None) -> str:
    """The URL Label Studio loads the image from.

    Under ``local_files_root`` (Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT``), a ``file:`` object becomes
    a local-files URL relative to it; ``s3a://`` becomes ``s3://`` (Label Studio's cloud storages read
    it); anything else stays as it is.
    """
    if object_uri.startswith("s3a://"):
        return "s3://" + object_uri.removeprefix("s3a://")
    if local_files_root is not None and (object_uri.startswith("file:") or object_uri.startswith("/")):
        path = Path(object_uri.removeprefix("file://").removeprefix("file:")).resolve()
        root = Path(local_files_root).resolve()
        if not path.is_relative_to(root):
            raise ValueError(f"{object_uri} is not under the local files root {root}")
        return LOCAL_FILES_URL + quote(str(path.relative_to(root)))
    return object_uri


def task(image: ImageToLabel, local_files_root: str | None = None) -> dict:
    """One Label Studio task for ``image``, its prediction as a pre-annotation when it has one."""
    made = {
        "data": {
            IMAGE_FIELD: task_url(image.object_uri, local_files_root),
            "object_uri": image.object_uri,
            "content_hash": image.content_hash,
        }
    }
    if image.predicted_label is not None:
        made["predictions"] = [
            {
                "model_version": image.model_version,
                "score": image.confidence,
                "result": [
                    {
                        "from_name": CHOICES_FIELD,
                        "to_name": IMAGE_FIELD,
                        "type": "choices",
                        "value": {"choices": [image.predicted_label]},
                    }
                ],
            }
        ]
    return made


def labeling_config(labels: list[str]) -> str:
    """The Label Studio labelling config the tasks fit: the image and one choice per label."""
    choices = "\n".join(f"    <Choice value={quoteattr(label)}/>" for label in labels)
    return (
        "<View>\n"
        f'  <Image name="{IMAGE_FIELD}" value="${IMAGE_FIELD}"/>\n'
        f'  <Choices name="{CHOICES_FIELD}" toName="{IMAGE_FIELD}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )
