"""``--coco FILE``: COCO results (``[{image_id, category_id, bbox: [x, y, w, h], score}]``), what pycocotools'
``loadRes`` and the COCO evaluation server take, for any model: boxes, plus ``segmentation`` (RLE) for instance
masks and ``keypoints`` ``[x1, y1, v1, ...]`` with ``num_keypoints`` for poses (``v`` is the point's confidence, as
ultralytics and MMPose write it; ``num_keypoints`` counts the points with a confidence above 0).

Beside ``FILE`` goes ``FILE_STEM.images.json``, a COCO dataset without annotations that ``pycocotools.coco.COCO``
opens and ``loadRes(FILE)`` completes: ``images`` maps each image id to its ``file_name``, ``source`` (the input path
or URL), ``frame_index`` (video frames get ``<stem>_<index:06d>.jpg`` as file name), ``width`` and ``height``, so
results join with the user's own annotations; ``categories`` lists the model's classes, and for poses the keypoint
names and the skeleton (1-based pairs).

Category ids: a model whose classes are all COCO categories keeps the official COCO ids (so results score against
COCO annotations as they are); any other class list is numbered ``class_id + 1`` (ids start at 1, as COCO's do).
Image ids: the file stem when it is numeric and no other image of the run has the same one (COCO file names are the
ids); every other image and video frame is numbered after the largest such id, so ids stay unique across videos and
folders holding equal names. Both are decided on close, when the run's images and classes are all known.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import load_class_names
from ..draw import SKELETONS
from ..errors import SinkError
from ..eval.coco import coco_ids
from ..results import BACKGROUND_CLASSES, Detections, Result, encode_rle
from .sinks import OutputGuard, Sink, ensure_dir, write_json
from .sources import Frame

_NO_CLASS = (*BACKGROUND_CLASSES, "N/A")  # the 91-entry lists' padding: neither a category nor a reason to renumber
KEYPOINT_NAMES = {17: "coco_keypoints17", 33: "blazepose33", 5: "face_landmarks5"}  # point count -> name list


def keypoint_names(count: int) -> list[str]:
    """The names of a pose's points, by their number (COCO's 17, BlazePose's 33, YuNet's 5 face landmarks);
    ``keypoint_0``... for any other layout."""
    name = KEYPOINT_NAMES.get(count)
    return load_class_names(name) if name else [f"keypoint_{i}" for i in range(count)]


class CocoResultsSink(Sink):
    """COCO results of ``Detections`` (see the module docstring); ``class_names``: the model's class list (its
    categories; without it, the classes the results name)."""

    def __init__(self, path: str | Path, guard: OutputGuard | None = None, class_names: list[str] | None = None):
        self.path = self.location = Path(path)
        self.index_path = self.path.with_name(f"{self.path.stem}.images.json")
        ensure_dir(self.path.parent, for_file=self.path)
        guard = guard or OutputGuard()
        guard.claim(self.path)
        guard.claim(self.index_path)
        self.class_names = list(class_names) if class_names is not None else None
        self._rows: list[tuple[tuple[str, int], dict[str, Any]]] | None = []
        self._images: dict[tuple[str, int], dict[str, Any]] = {}  # each image, in order: its index entry
        self._stems: dict[tuple[str, int], int | None] = {}  # each image: its numeric stem, if any
        self._seen: dict[tuple[int, str], None] = {}  # (class id, name) of each class the results hold
        self._keypoints = 0  # points per pose, 0 = no poses

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        if not isinstance(result, Detections):
            raise SinkError(f"COCO results hold detections, not {result.kind}")
        key, path = (frame.source, frame.index), Path(frame.source)
        if key not in self._stems:
            self._stems[key] = int(path.stem) if path.stem.isdecimal() and not frame.is_video else None
            h, w = frame.image.shape[:2]
            self._images[key] = {"file_name": f"{path.stem}_{frame.index:06d}.jpg" if frame.is_video else path.name,
                                 "source": frame.source, "frame_index": frame.index, "width": w, "height": h}
        if result.keypoints is not None:
            self._keypoints = result.keypoints.shape[1]
        for i in range(len(result)):
            x1, y1, x2, y2 = (float(v) for v in result.xyxy[i])
            self._seen[int(result.class_ids[i]), str(result.class_names[i])] = None
            row: dict[str, Any] = {"class_id": int(result.class_ids[i]), "class_name": str(result.class_names[i]),
                                   "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                                   "score": round(float(result.scores[i]), 5)}
            if result.masks is not None:
                row["segmentation"] = encode_rle(result.masks[i])
            if result.keypoints is not None:
                points = result.keypoints[i]
                row["keypoints"] = [round(float(v), 3) for v in points.reshape(-1)]
                row["num_keypoints"] = int((points[:, 2] > 0).sum())
            self._rows.append((key, row))

    def _image_ids(self) -> dict[tuple[str, int], int]:
        uses = Counter(self._stems.values())
        ids = {key: stem for key, stem in self._stems.items() if stem is not None and uses[stem] == 1}
        next_id = max(ids.values(), default=0) + 1
        for key in self._stems:
            if key not in ids:
                ids[key], next_id = next_id, next_id + 1
        return ids

    def _categories(self) -> tuple[list[dict[str, Any]], dict[tuple[int, str], int]]:
        """The categories entry and each (class id, name)'s category id: COCO's ids when every class is one."""
        listed = enumerate(self.class_names) if self.class_names is not None else ()
        classes = dict.fromkeys((cid, name) for cid, name in [*listed, *sorted(self._seen)]
                                if name not in _NO_CLASS)
        coco = coco_ids()
        official = all(name in coco for _, name in classes)
        ids = {(cid, name): coco[name] if official else cid + 1 for cid, name in classes}
        categories: dict[int, dict[str, Any]] = {}
        for (cid, name), category in sorted(ids.items(), key=lambda item: item[1]):
            entry = categories.setdefault(category, {"id": category, "name": name, "supercategory": name})
            if self._keypoints and (cid, name) in self._seen:
                entry["keypoints"] = keypoint_names(self._keypoints)
                entry["skeleton"] = [[a + 1, b + 1] for a, b in SKELETONS.get(self._keypoints, ())]
        return list(categories.values()), ids

    def close(self) -> None:
        if self._rows is None:
            return
        image_ids = self._image_ids()
        categories, category_ids = self._categories()
        rows = []
        for key, row in self._rows:
            category = category_ids[row.pop("class_id"), row.pop("class_name")]
            rows.append({"image_id": image_ids[key], "category_id": category, **row})
        images = [{"id": image_ids[key], **entry} for key, entry in self._images.items()]
        self._rows = None
        write_json(self.path, rows)
        write_json(self.index_path, {"info": {"description": f"visionkit: images and categories of {self.path.name}"},
                                     "images": images, "annotations": [], "categories": categories})
