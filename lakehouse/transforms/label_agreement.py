"""How far annotators agree: per task (the share of annotator pairs that gave the same label) and per label
(Krippendorff's alpha, computed by the ``krippendorff`` library), over each annotator's latest label.

Agreement is about single-choice labels (one label per annotator and task, the ``choices`` of one control).
A task labelled by one annotator has no agreement (``None``), and neither does a label nobody disagreed
about across too few tasks for alpha to be defined.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Iterable

import numpy as np

from lakehouse.sources.label_exports import Annotation


@dataclass(frozen=True)
class TaskAgreement:
    """One task's labels: how many annotators, the majority label and the share of pairs that agree."""

    task_id: int
    content_hash: str | None
    annotators: int
    majority_label: str | None  # None on a tie
    agreement: float | None  # None with fewer than two annotators


def latest_labels(annotations: Iterable[Annotation], control: str = "label") -> dict[tuple[int, str], Annotation]:
    """Each annotator's latest choice on each task (by ``updated_at``, then annotation id): a re-labelled task
    counts once per annotator, with its newest label."""
    latest: dict[tuple[int, str], Annotation] = {}
    for annotation in annotations:
        if annotation.control != control or annotation.label_type != "choices":
            continue
        key = (annotation.task_id, annotation.annotator)
        kept = latest.get(key)
        if kept is None or (annotation.updated_at or "", annotation.annotation_id) > (
            kept.updated_at or "",
            kept.annotation_id,
        ):
            latest[key] = annotation
    return latest


def task_agreement(annotations: Iterable[Annotation], control: str = "label") -> list[TaskAgreement]:
    """Per task, in task order."""
    by_task: dict[int, list[Annotation]] = {}
    for (task_id, _), annotation in sorted(latest_labels(annotations, control).items()):
        by_task.setdefault(task_id, []).append(annotation)
    result = []
    for task_id, labelled in by_task.items():
        counts = Counter(a.label for a in labelled).most_common()
        majority = counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else None
        pairs = list(combinations([a.label for a in labelled], 2))
        agreement = sum(a == b for a, b in pairs) / len(pairs) if pairs else None
        result.append(TaskAgreement(task_id, labelled[0].content_hash, len(labelled), majority, agreement))
    return result


def _reliability(latest: dict[tuple[int, str], Annotation]) -> tuple[list[str], list[int], dict]:
    annotators = sorted({annotator for _, annotator in latest})
    tasks = sorted({task_id for task_id, _ in latest})
    return annotators, tasks, {key: annotation.label for key, annotation in latest.items()}


def _alpha(matrix: np.ndarray) -> float | None:
    import krippendorff

    paired = (~np.isnan(matrix)).sum(axis=0) >= 2  # alpha reads only tasks with two or more labels
    if not paired.any() or len(np.unique(matrix[:, paired][~np.isnan(matrix[:, paired])])) < 2:
        return None  # no pairable task, or one value throughout: alpha is not defined
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


def label_agreement(annotations: Iterable[Annotation], control: str = "label") -> dict[str | None, float | None]:
    """Krippendorff's alpha (nominal) per label (did an annotator choose it or not) and, under ``None``, over
    all labels at once."""
    annotators, tasks, labels = _reliability(latest_labels(annotations, control))
    names = sorted(set(labels.values()))
    codes = {name: float(i) for i, name in enumerate(names)}
    overall = np.full((len(annotators), len(tasks)), np.nan)
    per_label = {name: np.full((len(annotators), len(tasks)), np.nan) for name in names}
    for row, annotator in enumerate(annotators):
        for column, task_id in enumerate(tasks):
            label = labels.get((task_id, annotator))
            if label is None:
                continue
            overall[row, column] = codes[label]
            for name in names:
                per_label[name][row, column] = float(label == name)
    return {None: _alpha(overall), **{name: _alpha(matrix) for name, matrix in per_label.items()}}
