"""Which model runs when none is named: the task's catalog default, or, when its weights cannot be had (an offline
machine, ``VISIONKIT_OFFLINE=1``), the best model of the task whose weights are here, said in one warning line.

With a network the default is unchanged: when another model's weights are here, the default's are downloaded (once,
into the cache) as it is chosen, so a failed download is known while that model can still be picked.

"Best" is the catalog's own data: the highest published figure on the default's headline benchmark (COCO box mAP
for detectors, ImageNet top-1 for classifiers...), then a model with the default's classes and keypoints (a
COCO-keypoint MoveNet before BlazePose's 33 points), then the name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from . import catalog
from .catalog import ModelEntry
from .errors import WeightsError
from .weights import availability, download

log = logging.getLogger("visionkit")


def best_local(task: str, wanted: Callable[[ModelEntry], bool] | None = None) -> ModelEntry | None:
    """The best catalog model of ``task`` (among those ``wanted`` accepts) whose weights are on this machine."""
    default = catalog.default_model(task)
    dataset, key = _headline(default)
    local = [e for e in catalog.list_models(task)
             if availability(e) == "local" and (wanted is None or wanted(e))]
    if not local:
        return None

    def rank(e: ModelEntry) -> tuple[float, bool, bool]:
        figure = e.metrics.get(dataset, {}).get(key) if dataset else None
        same_output = e.classes == default.classes and e.extra.get("keypoints") == default.extra.get("keypoints")
        return (float(figure) if isinstance(figure, (int, float)) else -1.0, same_output, e.default)

    best = max(rank(e) for e in local)
    return min((e for e in local if rank(e) == best), key=lambda e: e.name)


def usable_default(task: str) -> ModelEntry:
    """The task's default model if its weights are here or can be downloaded now; else ``best_local(task)``, with a
    warning naming both. With no local model of the task the default stays: building it then says in one line which
    file to put where (``weights.download``), and a Predictor made where the weights are not (a Ray driver) builds
    where they are."""
    default = catalog.default_model(task)
    state = availability(default)
    if state == "local":
        return default
    fallback = best_local(task)
    if fallback is None:
        return default
    if state == "download":
        try:
            download(default)
            return default
        except WeightsError as e:
            reason = str(e).split(": put ")[0]  # without its advice on where to put the file: another model runs
    else:
        reason = "offline: VISIONKIT_OFFLINE is set" if state.endswith("(offline)") else "it has no download URL"
    log.warning("the default %s model %s cannot be had (%s): using %s, the best %s model whose weights are here",
                task, default.name, reason, fallback.name, task)
    return fallback


def _headline(entry: ModelEntry) -> tuple[str, str]:
    """The first published (non-reference) figure of ``entry``: (dataset, key), e.g. ("COCO-val2017", "box_map")."""
    for dataset, values in entry.metrics.items():
        if dataset != "reference" and values:
            return dataset, next(iter(values))
    return "", ""
