"""A visionkit Predictor as a Spark ``predict_batch_udf``: detections for every image path of a Spark DataFrame.

    pip install 'visionkit[spark]'          # pyspark with pandas/pyarrow; Spark also needs a Java 17+ runtime
    python examples/spark_predict_batch_udf.py photos/ --out detections.parquet -m ssd_mobilenet_v1_coco

The paths may be local or object-store URIs (``s3://bucket/photos/a.jpg``, credentials from the AWS_* variables).
``predict_batch_udf`` calls ``make_predict_fn`` once per Python worker, so each worker builds the model once and
then gets batches of paths (a numpy array of strings); each image is decoded the way ``visionkit batch`` decodes
it (BGR, EXIF-rotated), and an image that cannot be read gets its one-line reason in ``error`` instead of failing
the job. ``visionkit batch --engine ray`` does the same on Ray, with resume and committed blocks; this is for
collections that already live in Spark.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

# The struct each path maps to: boxes are x1 y1 x2 y2 per object, flattened (Spark's batch UDFs take arrays of
# scalars, not nested arrays), in source-image pixels; error is "" or the image's one-line reason.
FIELDS = {"n_objects": "int", "class_names": "array<string>", "scores": "array<float>", "boxes": "array<float>",
          "error": "string"}


def make_predict_fn(task: str = "detect", model: str | None = None, batch_size: int = 8
                    ) -> Callable[[], Callable[[np.ndarray], list[dict[str, Any]]]]:
    """What ``predict_batch_udf`` wants: a function, run once per Python worker, that returns the batch function."""

    def make() -> Callable[[np.ndarray], list[dict[str, Any]]]:
        import visionkit
        from visionkit.batch.manifest import read_input_image
        from visionkit.errors import SourceError

        predictor = visionkit.load(task, model, batch_size=batch_size)

        def predict(paths: np.ndarray) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = [{} for _ in paths]
            images, where = [], []
            for i, path in enumerate(paths):
                try:
                    images.append(read_input_image(str(path)))
                    where.append(i)
                except SourceError as e:
                    rows[i] = {"n_objects": 0, "class_names": np.array([], str), "scores": np.zeros(0, np.float32),
                               "boxes": np.zeros(0, np.float32), "error": str(e)}
            for i, result in zip(where, predictor.predict(images) if images else []):
                rows[i] = {"n_objects": len(result), "class_names": np.array([str(n) for n in result.class_names]),
                           "scores": result.scores.astype(np.float32),
                           "boxes": result.xyxy.astype(np.float32).ravel(), "error": ""}
            return rows

        return predict

    return make


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="folder, glob or manifest of images (as for visionkit batch)")
    parser.add_argument("--out", required=True, help="Parquet folder Spark writes")
    parser.add_argument("--model", "-m", help="detection model (default: the task's default)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--master", default="local[2]", help="Spark master (default: local[2])")
    args = parser.parse_args(argv)

    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

    import visionkit
    from visionkit.batch.manifest import list_inputs

    visionkit.load("detect", args.model)  # the weights are checked here, once, not in every Spark task
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this Python, where visionkit is
    spark = (SparkSession.builder.master(args.master).appName("visionkit-detect")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        paths = spark.createDataFrame([(p,) for p in list_inputs(args.input)], "path string")
        fields = StructType.fromDDL(", ".join(f"{name} {kind}" for name, kind in FIELDS.items()))
        detect = predict_batch_udf(make_predict_fn("detect", args.model, args.batch_size), return_type=fields,
                                   batch_size=args.batch_size)
        result = paths.withColumn("detections", detect("path")).select("path", "detections.*")
        result.write.mode("overwrite").parquet(args.out)
        written = spark.read.parquet(args.out)
        errors = written.filter(written.error != "").count()
        print(f"spark: {written.count()} images, {written.agg({'n_objects': 'sum'}).first()[0]} objects, "
              f"{errors} errors -> {args.out}")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
