"""Image classification: parity with each reference library, accuracy of the real MobileNet V2, CLI, odd inputs.

No official torchvision or ultralytics weights exist offline, so fidelity is shown by parity: the real architectures
with seeded random weights, run through visionkit and through the library's own pipeline
(``YOLO(pt).predict``; ``model(weights_enum.transforms()(image))``), must give the same classes and probabilities.
Random nets answer almost the same for every input, so BatchNorm statistics are first recalibrated on noise and
the last layer is scaled: the outputs then depend on the image, and a preprocessing slip changes the top 5.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from visionkit import Predictor, catalog
from visionkit.cli import main
from visionkit.errors import OptionError, WeightsError
from visionkit.eval.classify import evaluate_classifier, read_labels
from visionkit.results import Classification

# MobileNet V2 quant through the TFLite interpreter on imagenet_sample (weights/MANIFEST.md), in images of 100.
REFERENCE_TOP1, REFERENCE_TOP5 = 86, 97
TorchvisionNets = dict[str, tuple[torch.nn.Module, Path]]  # arch -> (random-weight net, its state dict file)
TORCHVISION_PARITY = {"mobilenet_v3_small": "MobileNet_V3_Small_Weights.IMAGENET1K_V1",
                      "resnet18": "ResNet18_Weights.IMAGENET1K_V1"}


def _make_responsive(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """BatchNorm statistics measured on noise (a randomly initialised net otherwise collapses to one output for every
    input) and a sharper last layer, so that the top 5 depends on the image."""
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(8, 3, 224, 224) * 4 - 2)
        [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1].weight.mul_(10)
    return net.eval()


@pytest.fixture(scope="module")
def photos(assets: Path) -> list[np.ndarray]:
    return [cv2.imread(str(assets / name)) for name in ("bus.jpg", "zidane.jpg")]


@pytest.fixture(scope="module")
def yolo_cls_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """yolov8n-cls with random weights, saved by ultralytics itself; ``train_args`` as the official files carry."""
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolov8n-cls.yaml")
    _make_responsive(model.model)
    path = tmp_path_factory.mktemp("yolo-cls") / "random-yolov8n-cls.pt"
    model.save(path)
    ckpt = torch.load(path, weights_only=False)
    ckpt["train_args"] = {"task": "classify", "imgsz": 224}  # official -cls checkpoints were trained at 224
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def torchvision_nets(tmp_path_factory: pytest.TempPathFactory) -> TorchvisionNets:
    """Random-weight torchvision classifiers and their state dict files."""
    import torchvision

    out = {}
    folder = tmp_path_factory.mktemp("torchvision-cls")
    for arch in TORCHVISION_PARITY:
        net = _make_responsive(torchvision.models.get_model(arch, weights=None))
        torch.save(net.state_dict(), folder / f"{arch}.pth")
        out[arch] = (net, folder / f"{arch}.pth")
    return out


@pytest.fixture(scope="module")
def mobilenet_quant(shared_weights: Path) -> Predictor:
    assert (shared_weights / catalog.get_entry("mobilenet_v2_quant").file).is_file()
    return Predictor("classify", "mobilenet_v2_quant", device="cpu").warmup()


@pytest.fixture(scope="module")
def imagenet(shared_data: Path) -> Path:
    root = shared_data / "imagenet_sample"
    assert len(read_labels(root / "labels.csv")) == 100
    return root


# -- parity ------------------------------------------------------------------------------------------------------------
def test_ultralytics_parity_with_predict(yolo_cls_pt: Path, photos: list[np.ndarray]) -> None:
    from ultralytics import YOLO

    reference = YOLO(str(yolo_cls_pt)).predict(photos, verbose=False)
    ours = Predictor("classify", yolo_cls_pt, device="cpu", batch_size=2)(photos)
    assert ours[0].class_ids.tolist() != ours[1].class_ids.tolist()  # the random net does look at the image
    for ref, res in zip(reference, ours, strict=True):
        assert res.class_ids.tolist() == list(ref.probs.top5)
        np.testing.assert_allclose(res.scores, ref.probs.top5conf.numpy(), rtol=1e-5, atol=1e-6)
        assert res.class_names.tolist() == [ref.names[i] for i in ref.probs.top5]


@pytest.mark.parametrize("arch", sorted(TORCHVISION_PARITY))
def test_torchvision_parity_with_weights_transforms(arch: str, torchvision_nets: TorchvisionNets,
                                                   photos: list[np.ndarray]) -> None:
    import torchvision

    net, state_file = torchvision_nets[arch]
    transforms = torchvision.models.get_weight(TORCHVISION_PARITY[arch]).transforms()
    predictor = Predictor("classify", arch, weights=state_file, device="cpu", top_k=5)
    ids_seen = []
    for image in photos:
        rgb = torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1)
        with torch.inference_mode():
            probs = net(transforms(rgb)[None]).softmax(1)[0]
        ref_scores, ref_ids = probs.topk(5)
        result = predictor(image)
        assert result.class_ids.tolist() == ref_ids.tolist()
        np.testing.assert_allclose(result.scores, ref_scores.numpy(), rtol=1e-5, atol=1e-7)
        assert result.class_names[0] == catalog.load_class_names("imagenet1k")[int(ref_ids[0])]
        ids_seen.append(result.class_ids.tolist())
    assert ids_seen[0] != ids_seen[1]


def test_catalog_matches_library_metadata() -> None:
    """torchvision entries: file, URL and published metrics are the weights enum's; every model has a source."""
    import torchvision

    entries = catalog.list_models("classify")
    assert [e.name for e in entries if e.default] == ["mobilenet_v3_large"]
    for entry in (e for e in entries if e.backend != "visionkit"):  # lenet5, mlp: architectures to train, no weights
        assert entry.classes == "imagenet1k" and entry.input_size == 224
        assert entry.url.endswith("/" + entry.file) or (not entry.url and entry.sha256 and entry.source)
        if entry.backend == "torchvision":
            weights = torchvision.models.get_weight(entry.extra["weights_enum"])
            assert weights.url == entry.url and entry.hash_prefix
            published = weights.meta["_metrics"]["ImageNet-1K"]
            assert entry.metrics["ImageNet-1k-val"] == {"top1": published["acc@1"], "top5": published["acc@5"]}


# -- accuracy of the real MobileNet V2 quant ---------------------------------------------------------------------------
def test_mobilenet_quant_accuracy_matches_reference(mobilenet_quant: Predictor, imagenet: Path) -> None:
    score = evaluate_classifier(mobilenet_quant, imagenet / "images", imagenet / "labels.csv")
    assert score.images == 100
    assert abs(score.top1 - REFERENCE_TOP1) <= 1, f"top-1 {score.top1}/100 vs reference {REFERENCE_TOP1}"
    assert abs(score.top5 - REFERENCE_TOP5) <= 1, f"top-5 {score.top5}/100 vs reference {REFERENCE_TOP5}"
    reference = catalog.get_entry("mobilenet_v2_quant").metrics["reference"]
    assert (reference["top1"], reference["top5"]) == (REFERENCE_TOP1, REFERENCE_TOP5)


def test_eval_needs_top5(imagenet: Path, shared_weights: Path) -> None:
    with pytest.raises(OptionError, match="top_k >= 5"):
        evaluate_classifier(Predictor("classify", "mobilenet_v2_quant", top_k=3), imagenet / "images",
                            imagenet / "labels.csv")


# -- CLI ---------------------------------------------------------------------------------------------------------------
def test_cli_image_and_folder(mobilenet_quant: Predictor, imagenet: Path, tmp_path: Path) -> None:
    labels = dict(read_labels(imagenet / "labels.csv"))
    names = ["n01440764_tench.JPEG", "n01530575_brambling.JPEG", "n01641577_bullfrog.JPEG"]
    folder = tmp_path / "in"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes((imagenet / "images" / name).read_bytes())

    code = main(["classify", str(folder / names[0]), "--model", "mobilenet_v2_quant", "--device", "cpu",
                 "--save", str(tmp_path / "one"), "--json", str(tmp_path / "one.jsonl"), "--quiet"])
    assert code == 0
    assert cv2.imread(str(tmp_path / "one" / names[0])) is not None
    [line] = (tmp_path / "one.jsonl").read_text().splitlines()
    assert json.loads(line)["top"][0]["class_id"] == labels[names[0]]

    code = main(["classify", str(folder), "--model", "mobilenet_v2_quant", "--device", "cpu", "--topk", "3",
                 "--save", str(tmp_path / "many"), "--json", str(tmp_path / "many.jsonl"), "--quiet"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == sorted(names)
    rows = [json.loads(line) for line in (tmp_path / "many.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(len(row["top"]) == 3 for row in rows)
    assert sorted(row["top"][0]["class_id"] for row in rows) == sorted(labels[n] for n in names)
    annotated = cv2.imread(str(tmp_path / "many" / names[0]))
    original = cv2.imread(str(folder / names[0]))
    assert annotated.shape == original.shape and not np.array_equal(annotated, original)  # the top-k panel is drawn


def test_cli_imgsz_on_a_fixed_size_model(imagenet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The quantized graph has a fixed input size: another --imgsz is refused before anything runs."""
    image = imagenet / "images" / "n01440764_tench.JPEG"
    code = main(["classify", str(image), "--model", "mobilenet_v2_quant", "--imgsz", "320"])
    assert code == 2
    assert "imgsz 320: mobilenet_v2_quant has a fixed 224x224 input" in capsys.readouterr().err


# -- inputs and errors -------------------------------------------------------------------------------------------------
def test_odd_image_files(mobilenet_quant: Predictor, imagenet: Path, tmp_path: Path) -> None:
    """Grayscale, RGBA and 16-bit files classify like the 8-bit colour image they encode; 8x8 and 8000x6000 work."""
    base = cv2.imread(str(imagenet / "images" / "n01641577_bullfrog.JPEG"))
    expected = mobilenet_quant(base)
    rgba = cv2.cvtColor(base, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = 255
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "deep.png"), base.astype(np.uint16) * 257)
    for name in ("rgba.png", "deep.png"):
        result = mobilenet_quant(str(tmp_path / name))
        assert result.class_ids.tolist() == expected.class_ids.tolist(), name
        np.testing.assert_array_equal(result.scores, expected.scores)

    gray = cv2.cvtColor(base, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    from_file = mobilenet_quant(str(tmp_path / "gray.png"))
    assert from_file.class_ids.tolist() == mobilenet_quant(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)).class_ids.tolist()

    for shape in ((8, 8, 3), (6000, 8000, 3)):
        image = cv2.resize(base, shape[1::-1])
        result = mobilenet_quant(image)
        assert result.image_shape == shape[:2] and len(result) == 5
        assert np.all(np.diff(result.scores) <= 0) and 0 <= result.scores[-1] <= result.scores[0] <= 1


@pytest.mark.parametrize("size", [(8, 8), (6000, 8000)])
def test_tiny_and_huge_images_torch_backends(size: tuple[int, int], yolo_cls_pt: Path,
                                             torchvision_nets: TorchvisionNets) -> None:
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    for predictor in (Predictor("classify", yolo_cls_pt, device="cpu"),
                      Predictor("classify", "resnet18", weights=torchvision_nets["resnet18"][1], device="cpu")):
        result = predictor(image)
        assert isinstance(result, Classification) and len(result) == 5 and result.image_shape == size


def test_top_k_option(mobilenet_quant: Predictor, photos: list[np.ndarray]) -> None:
    predictor = Predictor("classify", "mobilenet_v2_quant", top_k=1)
    assert predictor(photos[0]).class_ids.tolist() == mobilenet_quant(photos[0]).class_ids[:1].tolist()
    with pytest.raises(OptionError, match="top_k must be a positive integer"):
        Predictor("classify", "mobilenet_v2_quant", top_k=0).warmup()


def test_wrong_model_files_give_clear_errors(yolo_cls_pt: Path, shared_weights: Path,
                                            torchvision_nets: TorchvisionNets) -> None:
    with pytest.raises(WeightsError, match="is an ultralytics classify model, not a detect model"):
        Predictor("detect", yolo_cls_pt, device="cpu").warmup()
    with pytest.raises(WeightsError, match="not a TFLite-style classifier"):
        Predictor("classify", shared_weights / "yolov5n.onnx", device="cpu").warmup()
    with pytest.raises(WeightsError, match="does not fit resnet18"):
        Predictor("classify", "resnet18", weights=torchvision_nets["mobilenet_v3_small"][1], device="cpu").warmup()
