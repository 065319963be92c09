"""`visionkit train classify` end to end on real data (scikit-learn's bundled UCI digits): accuracy, the run folder,
loading it as a model, `eval classify` reproducing the held-back figure, and an exact resume after Ctrl-C."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pytest
import torch
from fault_harness import interrupt_at_line, run_cli

import visionkit
from visionkit.training import train
from visionkit.training.data import export_digits, load_classify_data

LENET_EPOCHS = 10  # with batch 16 and lr 0.002: ~15 s on a shared 2-core CPU; the README's run is longer


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_digits(tmp_path_factory.mktemp("digits") / "digits")


@pytest.fixture(scope="module")
def lenet_run(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> visionkit.training.TrainResult:
    out = tmp_path_factory.mktemp("runs") / "lenet5"
    return train("classify", digits, "lenet5", epochs=LENET_EPOCHS, batch=16, lr=0.002, out=out, progress=False)


def test_digits_export_is_a_stratified_imagefolder(digits: Path) -> None:
    data = load_classify_data(digits)
    assert data.classes == [str(d) for d in range(10)]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 1077, "val": 360, "test": 360}
    assert cv2.imread(str(data.splits["test"][0][0]), cv2.IMREAD_UNCHANGED).shape == (8, 8)


def test_lenet5_reaches_97_percent_on_the_held_back_digits(lenet_run: visionkit.training.TrainResult) -> None:
    metrics = lenet_run.card.metrics
    assert metrics["scored_split"] == "test" and metrics["test_images"] == 360
    assert metrics["test_top1"] >= 0.97, metrics


def test_run_folder_holds_safe_checkpoints_metrics_pictures_and_card(lenet_run: visionkit.training.TrainResult) -> None:
    run = lenet_run.run_dir
    best = torch.load(run / "best.pth", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in best.values())
    last = torch.load(run / "last.pth", weights_only=True)
    assert last["epoch"] == LENET_EPOCHS and set(last["model"]) == set(best)
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, LENET_EPOCHS + 1))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    for picture in ("curves.png", "confusion_matrix.png"):
        assert cv2.imread(str(run / picture)) is not None
    card = json.loads((run / "card.json").read_text())
    assert card["architecture"] == "lenet5" and card["classes"] == [str(d) for d in range(10)]
    assert card["input"] == {"size": 32, "channels": 1, "mean": [0.5], "std": [0.5]}
    assert len(card["data"]["sha256"]) == 64 and card["seed"] == 0 and "torch" in card["versions"]
    matrix = json.loads((run / "confusion_matrix.json").read_text())["matrix"]
    assert sum(map(sum, matrix)) == 360 and sum(matrix[i][i] for i in range(10)) == card["metrics"]["test_correct"]


def test_eval_classify_reproduces_the_held_back_figure(lenet_run: visionkit.training.TrainResult, digits: Path,
                                                       tmp_path: Path) -> None:
    out = run_cli("eval", "classify", "--model", lenet_run.run_dir, "--images", digits / "test",
                  "--labels", digits / "test" / "labels.csv", "--json", tmp_path / "score.json")
    assert out.code == 0, out.stderr
    score = json.loads((tmp_path / "score.json").read_text())
    assert (score["top1"], score["images"]) == (lenet_run.card.metrics["test_correct"], 360)


def test_classify_names_digit_images(lenet_run: visionkit.training.TrainResult, digits: Path, tmp_path: Path) -> None:
    images = [sorted((digits / "test" / str(d)).iterdir())[0] for d in range(10)]
    named = [r.class_names[0] for r in visionkit.load("classify", lenet_run.run_dir)(images)]
    assert sum(name == str(d) for d, name in enumerate(named)) >= 9, named
    out = run_cli("classify", images[7], "--model", lenet_run.run_dir, "--json", tmp_path / "r.jsonl")
    assert out.code == 0, out.stderr
    assert json.loads((tmp_path / "r.jsonl").read_text())["top"][0]["class_name"] == named[7]


@pytest.mark.parametrize("form", ["run_dir", "card", "best", "last", "catalog_weights"])
def test_a_run_loads_as_a_model_in_every_form(lenet_run: visionkit.training.TrainResult, digits: Path,
                                              form: str) -> None:
    run = lenet_run.run_dir
    model, options = {"run_dir": (run, {}), "card": (run / "card.json", {}), "best": (run / "best.pth", {}),
                      "last": (run / "last.pth", {}),
                      "catalog_weights": ("lenet5", {"weights": run / "best.pth"})}[form]
    predictor = visionkit.load("classify", model, **options)
    image = sorted((digits / "test" / "3").iterdir())[0]
    reference = visionkit.load("classify", run)(image)
    result = predictor(image)
    assert predictor.class_names == [str(d) for d in range(10)]
    if form == "last":  # the last epoch's weights, not the best one's: same classes, its own scores
        assert len(result.class_ids) == 5
    else:
        assert list(result.class_ids) == list(reference.class_ids)


def test_ctrl_c_saves_last_and_resume_continues_exactly(digits: Path, tmp_path: Path) -> None:
    common = ["train", "classify", "--data", digits, "--model", "mlp", "--epochs", "30", "--batch", "8"]
    straight = run_cli(*common, "--out", tmp_path / "straight")
    assert straight.code == 0, straight.stderr

    interrupted = tmp_path / "interrupted"
    stopped_run = interrupt_at_line(*common, "--out", interrupted, prefix="epoch 1/30")  # in the second epoch
    rest = stopped_run.stderr
    assert stopped_run.code == 130, rest
    lines = [line for line in rest.splitlines() if line.startswith("visionkit:")]
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in rest, rest
    stopped = torch.load(interrupted / "last.pth", weights_only=True)
    assert 1 <= stopped["epoch"] < 30 and not (interrupted / "curves.png").exists()

    resumed = run_cli(*common, "--out", interrupted, "--resume")
    assert resumed.code == 0, resumed.stderr
    for name in ("best.pth", "last.pth"):
        a = torch.load(tmp_path / "straight" / name, weights_only=True)
        b = torch.load(interrupted / name, weights_only=True)
        a, b = a.get("model", a), b.get("model", b)
        assert all(torch.equal(a[k], b[k]) for k in a), name

    def rows(run: Path) -> list[dict[str, str]]:
        with open(run / "metrics.csv", newline="") as f:
            return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]

    assert rows(tmp_path / "straight") == rows(interrupted)


def test_mlp_trains_to_its_own_lower_figure(digits: Path, tmp_path: Path) -> None:
    run = train("classify", digits, "mlp", epochs=5, out=tmp_path / "mlp", progress=False)
    assert run.card.input["size"] == 8 and 0.5 < run.card.metrics["test_top1"] < 1.0


def test_a_torchvision_architecture_trains_too(digits: Path, tmp_path: Path) -> None:
    run = train("classify", digits, "mobilenet_v3_small", epochs=1, imgsz=32, batch=64, out=tmp_path / "mnv3",
                progress=False)
    assert run.card.input == {"size": 32, "channels": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    result = visionkit.load("classify", run.run_dir)(sorted((digits / "test" / "0").iterdir())[0])
    assert result.class_names[0] in run.card.classes


def test_csv_data_like_the_imagenet_sample(shared_data: Path, tmp_path: Path) -> None:
    data = load_classify_data(shared_data / "imagenet_sample" / "labels.csv")
    assert len(data.splits["train"]) == 80 and len(data.splits["val"]) == 20 and not data.skipped
    assert data.classes[0] == "tench" and len(data.classes) == 991  # ids up to 990, names from class_name


def test_a_trained_lenet5_is_explained_and_attacked_by_gradients(lenet_run: visionkit.training.TrainResult,
                                                                 digits: Path) -> None:
    """The digits LeNet-5 of ``visionkit train`` through the gradient methods: its preprocessing in torch equals the
    backend's, Grad-CAM is pytorch-grad-cam's on the same layer and input, and FGSM lowers its accuracy."""
    import numpy as np
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from visionkit.interpret.differentiable import differentiable

    lenet = visionkit.load("classify", lenet_run.run_dir, device="cpu")
    image = cv2.imread(str(load_classify_data(digits).splits["test"][0][0]))
    d = differentiable(lenet)
    x = d.image_tensor([image])
    np.testing.assert_allclose(d.preprocess(x).numpy(), lenet.backend.preprocess([image]).numpy(), atol=0.05)

    ex = visionkit.explain(lenet, image, "gradcam")
    assert ex.targets[0].class_id == lenet(image).class_ids[0]
    with GradCAM(model=d, target_layers=d.layers) as cam:
        direct = cam(input_tensor=x, targets=[ClassifierOutputTarget(ex.targets[0].class_id)])[0]
    assert ex.maps[0].shape == image.shape[:2] and np.isfinite(ex.maps[0]).all()
    # the same map up to the final resize to the image (visionkit maps the CAM back through its input geometry)
    assert np.corrcoef(cv2.resize(direct, image.shape[1::-1]).ravel(), ex.maps[0].ravel())[0, 1] > 0.99

    report = visionkit.attack_report(lenet, str(digits / "test"), "fgsm", eps=[0.0, 0.25], limit=40)
    clean, attacked = report.scores["none"]
    assert clean >= 0.9 and attacked < clean


def test_yolo_classify_trains_through_ultralytics_on_an_image_folder(digits: Path, tmp_path: Path) -> None:
    """`train classify --model yolov8n-cls.yaml`: ultralytics' own classification trainer on the ImageFolder, and
    the run loads as a visionkit classifier over the ten digit classes (one epoch: no accuracy asked of it)."""
    big = tmp_path / "digits16"  # ultralytics skips images under 10 px: the 8x8 digits upscaled to 16x16
    for image in digits.rglob("*.png"):
        target = big / image.relative_to(digits)
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), cv2.resize(cv2.imread(str(image)), (16, 16), interpolation=cv2.INTER_NEAREST))
    run = train("classify", big, "yolov8n-cls.yaml", epochs=1, batch=64, imgsz=32, out=tmp_path / "ycls",
                progress=False)
    assert (run.run_dir / "weights" / "best.pt").is_file() and run.card.classes == [str(d) for d in range(10)]
    classifier = visionkit.load("classify", run.run_dir, device="cpu")
    assert classifier.class_names == [str(d) for d in range(10)]
    path, label = load_classify_data(big).splits["test"][0]
    assert len(classifier(str(path)).class_names) == 5 and label in range(10)
