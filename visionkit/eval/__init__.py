"""Accuracy through the field's reference implementations (pycocotools for COCO)."""
