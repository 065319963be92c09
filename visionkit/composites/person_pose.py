"""Tasks composed over one stream, built on the public predictors only.

    import visionkit
    from visionkit.composites.person_pose import PersonPose

    pipe = PersonPose(visionkit.load("track", "yolov5n"), visionkit.load("pose", "movenet_lightning"))
    for frame, people in pipe.stream("clip.mp4"):   # boxes, track ids and 17 keypoints per person
        annotated = people.plot(frame.image)
    people = pipe("photo.jpg")                       # one image (a tracker keeps its state between calls)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import catalog
from ..errors import OptionError
from ..io.images import read_image, to_bgr
from ..io.sources import ErrorHandler, Frame
from ..predictor import Predictor
from ..results import Detections
from ..timing import StageTimer

# ``detector=NO_DETECTOR``: a single-person model on the whole image (one pose, e.g. a photo cropped to one person).
NO_DETECTOR = "none"


class PersonPose:
    """Multi-person pose with a single-person pose model: a detector or tracker finds the people, then the pose
    model runs on a crop around each person box.

    Two models instead of one multi-person model (YOLO-pose) buys: tracking ids on every pose, a detector chosen
    independently (any catalog detector, e.g. yolov5n restricted with ``classes=[0]``), and MoveNet's accuracy on
    people small in the frame, whose crop it sees at full model resolution.

    Args:
        persons: ``visionkit.load("detect", ...)`` or ``visionkit.load("track", ...)``; only boxes whose class is
            ``person_class`` are kept (pass ``classes=[0]`` to a COCO detector to skip the others early).
        pose: a pose predictor whose backend estimates inside given boxes (``predict_in_boxes``: MoveNet,
            BlazePose); a ``PersonPose`` (what ``visionkit.load("pose", ...)`` gives for them) lends its pose model.

    Each result is the detector's (or tracker's) person boxes, scores and track ids with ``keypoints`` (n, 17, 3)
    added, row for row; ``speed`` adds up both models' stage times.

    Threads: as safe as its two predictors (the pose model runs under its predictor's ``exclusive()`` lock), so
    ``stream()`` from several threads is fine; frame-by-frame calls on a tracker feed one live state (one thread).
    """

    def __init__(self, persons: Any, pose: Any, person_class: str = "person"):
        if isinstance(pose, PersonPose):  # visionkit.load("pose", "movenet_lightning") already pairs a detector
            pose = pose.pose
        if getattr(pose, "task", None) != "pose":
            raise OptionError(f"pose must be a pose predictor (visionkit.load('pose', ...)), got {pose!r}")
        if not pose.runs_in_boxes:
            raise OptionError(f"pose model {pose.entry.name!r} ({pose.backend_class.name}) finds the people itself; "
                              "PersonPose needs a single-person model that runs inside given boxes, e.g. "
                              "movenet_lightning")
        self.persons = persons
        self.pose = pose
        self.person_class = person_class

    task = "pose"

    @property
    def entry(self) -> catalog.ModelEntry:
        """The pose model's catalog entry (what a run is named after)."""
        return self.pose.entry

    @property
    def class_names(self) -> list[str]:
        return self.pose.class_names

    @property
    def batch_size(self) -> int:
        return self.persons.batch_size

    def predict(self, images: list[Any]) -> list[Detections]:
        """People and their poses in each image, in order (as ``Predictor.predict``)."""
        return [self(im) for im in images]

    def __call__(self, image: Any) -> Detections:
        """People and their poses in one image (path, BGR array or PIL image)."""
        frame = read_image(image) if isinstance(image, (str, Path)) else to_bgr(image)
        return self._add_poses(frame, self.persons(frame))

    def stream(self, source: Any, on_error: ErrorHandler | None = None, prefetch: int = 4,
               vid_stride: int = 1) -> Iterator[tuple[Frame, Detections]]:
        """``(frame, people with poses)`` for every frame of any source (see ``Predictor.stream``)."""
        for frame, detections in self.persons.stream(source, on_error, prefetch, vid_stride=vid_stride):
            yield frame, self._add_poses(frame.image, detections)

    def warmup(self) -> PersonPose:
        self.persons.warmup()
        self.pose.warmup()
        return self

    def _add_poses(self, image: np.ndarray, detections: Detections) -> Detections:
        people = detections[detections.class_names == self.person_class]
        poses = self.pose.predict_in_boxes(image, people.xyxy)
        timer = StageTimer()
        timer.add(people.speed)
        timer.add(poses.speed)
        return people.with_(keypoints=poses.keypoints, speed=timer.speed())

    def __repr__(self) -> str:
        return f"PersonPose(persons={self.persons!r}, pose={self.pose!r})"


def default_person_detector() -> str:
    """The best catalog detector that finds people and whose weights are here (``defaults.best_local``: the best
    published COCO box mAP), so the default never downloads when a local one exists; else the catalog's default
    detector (downloaded on first use)."""
    from ..defaults import best_local

    best = best_local("detect", lambda e: "person" in e.class_names)
    return best.name if best is not None else catalog.default_model("detect").name


def pose_predictor(model: str | Path | None = None, detector: Any = None, device: str = "auto",
                   **options: Any) -> Any:
    """``visionkit.load("pose", ...)``: multi-person for every pose model, as MMPose's inferencer.

    A model that finds people itself (YOLO-pose, Keypoint R-CNN) is returned as is. A single-person model (MoveNet,
    BlazePose) runs top-down: a ``PersonPose`` over ``detector``'s person boxes (a catalog detector, a file, or a
    detect/track predictor, e.g. ``visionkit.load("track", "yolov5n")`` for ids; None = ``default_person_detector()``,
    ``mediapipe_pose_detector`` = BlazePose's own first stage), or on the whole image with ``detector="none"``.
    ``options`` are the pose model's; ``workers`` and ``batch_size`` also go to the detector, which keeps its own
    interactive defaults.
    """
    pose = Predictor("pose", model, device=device, **options)
    if not pose.runs_in_boxes:
        if detector not in (None, NO_DETECTOR):
            raise OptionError(f"pose model {pose.entry.name!r} finds the people itself: a detector is only for "
                              "single-person models (movenet_lightning, blazepose_full)")
        return pose
    if detector == NO_DETECTOR:
        return pose
    if hasattr(detector, "stream"):  # a predictor already
        return PersonPose(detector, pose)
    shared = {k: options[k] for k in ("workers", "batch_size") if k in options}
    persons = Predictor("detect", detector or default_person_detector(), device=device, **shared)
    return PersonPose(persons, pose)
