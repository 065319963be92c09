"""mp.solutions' own results on ultralytics' sample photos (mediapipe 0.10.14, pinned in shared/weights/MANIFEST.md):
what tests/test_mediapipe.py checks visionkit's TFLite paths against and benchmarks/accuracy_photos.py prints next
to visionkit's figures. mediapipe itself is not installed here, so the figures are pinned, in this one place."""

from __future__ import annotations

# Selfie Segmentation: share of each photo labelled person.
PERSON_SHARE = {"zidane.jpg": 0.546, "bus.jpg": 0.10}
# MediaPipe Pose on bus.jpg's left person: BlazePose landmark index and (x, y) in image pixels.
NOSE, LEFT_ANKLE = 0, 27
LEFT_PERSON = {"nose": (NOSE, (143, 446)), "left ankle": (LEFT_ANKLE, (185, 854))}
