"""The README's table of models checked against their reference implementation on single photos (ultralytics'
bus.jpg and zidane.jpg), re-measured with the same visionkit calls as tests/test_mediapipe.py and tests/test_faces.py.

    python benchmarks/accuracy_photos.py --figures   # a few seconds
    python benchmarks/readme_figures.py              # then rewrite README.md's <!-- figures:accuracy-photos -->

The visionkit column is measured here. YuNet's reference is measured here too (``cv2.FaceDetectorYN`` called the way
OpenCV Zoo does); MediaPipe's are the figures its 0.10.14 solutions gave on these photos, pinned in
shared/weights/MANIFEST.md (mediapipe is not a dependency), which the tests hold visionkit to.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import add_figures_option, print_table, setup_env

setup_env()  # puts tests/ on sys.path: the pinned MediaPipe figures live there, shared with tests/test_mediapipe.py

from mediapipe_reference import LEFT_PERSON, PERSON_SHARE  # noqa: E402

COLUMNS = ("model", "task", "data", "visionkit", "reference run", "published")
PHOTOS = ("zidane.jpg", "bus.jpg")


def selfie_row(assets: Path) -> list[str]:
    """Selfie Segmentation's person share of each photo."""
    import visionkit

    selfie = visionkit.load("segment", "selfie_segmentation")
    ours = " / ".join(f"{100 * selfie(assets / photo).pixel_share()['person']:.1f} %" for photo in PHOTOS)
    ref = " / ".join(f"{100 * PERSON_SHARE[photo]:g} %" for photo in PHOTOS)
    return ["`selfie_segmentation` (TFLite)", "segment", " / ".join(PHOTOS) + " person share", f"**{ours}**",
            f"{ref} (MediaPipe 0.10.14, pinned)", "-"]


def blazepose_row(assets: Path) -> list[str]:
    """yolov5n persons -> BlazePose full: how far the left bus.jpg person's landmarks are from MediaPipe Pose's."""
    import numpy as np

    import visionkit
    from visionkit.composites.person_pose import PersonPose

    blazepose = visionkit.load("pose", "blazepose_full", detector="none")  # the bare single-person model
    people = PersonPose(visionkit.load("detect", "yolov5n", classes=[0]), blazepose)(assets / "bus.jpg")
    left = people[np.argmin(people.xyxy[:, 0])]
    ours = ", ".join(f"{name} {np.linalg.norm(left.keypoints[0, index, :2] - ref):.0f} px"
                     for name, (index, ref) in LEFT_PERSON.items())
    ref = ", ".join(f"{name} {ref}" for name, (_, ref) in LEFT_PERSON.items())
    return ["`yolov5n` → `blazepose_full` (TFLite)", "pose", "bus.jpg, left person",
            f"**{ours} from MediaPipe's**", f"{ref} (MediaPipe 0.10.14 Pose, pinned)", "-"]


def yunet_row(assets: Path) -> list[str]:
    """YuNet's face scores on each photo, visionkit's and ``cv2.FaceDetectorYN``'s own."""
    import cv2
    import numpy as np

    import visionkit
    from visionkit.catalog import get_entry
    from visionkit.weights import resolve

    faces = visionkit.load("detect", "yunet_face")
    weights = str(resolve(get_entry("yunet_face")))  # the file visionkit loads

    def scores(values: np.ndarray) -> str:
        return ", ".join(f"{s:.2f}" for s in np.sort(values)[::-1])

    ours, ref = [], []
    for photo in PHOTOS:
        image = cv2.imread(str(assets / photo))
        h, w = image.shape[:2]
        _, found = cv2.FaceDetectorYN.create(weights, "", (w, h), 0.6, 0.3, 5000).detect(image)  # OpenCV Zoo's use
        ours.append(scores(faces(image).scores))
        ref.append(scores(np.zeros(0) if found is None else found[:, 14]))
    return ["`yunet_face` (ONNX)", "detect", " / ".join(PHOTOS) + " faces", f"**{' / '.join(ours)}**",
            f"{' / '.join(ref)} (`cv2.FaceDetectorYN`)", "-"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_figures_option(parser, "accuracy-photos")
    args = parser.parse_args()
    from ultralytics.utils import ASSETS

    rows = [selfie_row(Path(ASSETS)), blazepose_row(Path(ASSETS)), yunet_row(Path(ASSETS))]
    print_table(args, COLUMNS, rows)


if __name__ == "__main__":
    main()
