"""Prompted teachers from a local folder: tiny random OWLv2 / Grounding DINO models built from configs.

No registry ships such weights and nothing may be downloaded, so every model here is built from a
transformers config with random weights, saved with `save_pretrained` into tmp and loaded back
through vigil's loader. The tests prove the plumbing: prompts per class, boxes in image pixels,
adapters saved / checked / merged, pseudo-labels in the student's data, and the CLI's errors.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.conftest import CLASSES, make_dataset, write_image
from typer.testing import CliRunner

from vigil.cli import app
from vigil.errors import VigilError
from vigil.models.dataset import build_view
from vigil.teachers.detect import DetectSettings, detect, grounding_caption
from vigil.teachers.loading import Family, Teacher, load_teacher, read_family
from vigil.teachers.lora import (
    BASE_RECORD,
    LoraSettings,
    check_base,
    merge,
    save_adapter,
    trainable_share,
    wrap,
)
from vigil.teachers.prompts import Prompts, class_prompts, load_prompts, read_prompt_map
from vigil.teachers.pseudo_labels import (
    LabelSettings,
    pseudo_labels,
    read_pseudo_labels,
    write_pseudo_labels,
)
from vigil.teachers.val_score import score_teacher

REPO = Path(__file__).resolve().parents[1]
SETTINGS = DetectSettings(floor=0.001, iou=0.7, max_det=100)
WORDS = ["a", "photo", "of", "tshirt", "trouser", "bag", "dog"]


# --- tiny models --------------------------------------------------------------------------------------


def clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for c in string.ascii_lowercase + ".":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    # OWL masks a prompt whose first token id is 0: the specials sit at the end, as in CLIP's vocab
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)


def bert_tokenizer() -> Any:
    """WordPiece with bert-base-uncased's ids for the specials and `.` (Grounding DINO's phrase split reads them)."""
    from transformers import BertTokenizer

    specials = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012}
    vocab = {f"[unused{i}]": i for i in range(1100) if i not in specials.values()}
    for i, word in enumerate(WORDS):
        del vocab[f"[unused{1050 + i}]"]
        vocab[word] = 1050 + i
    return BertTokenizer(vocab={**vocab, **specials})


def owlv2_config(hidden: tuple[int, int] = (32, 32), image_size: int = 64) -> Any:
    from transformers import Owlv2Config

    text, vision = hidden
    return Owlv2Config(
        text_config={
            "vocab_size": 56,
            "hidden_size": text,
            "intermediate_size": 4 * text,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "max_position_embeddings": 16,
            "bos_token_id": 54,
            "eos_token_id": 55,
            "pad_token_id": 55,
        },
        vision_config={
            "hidden_size": vision,
            "intermediate_size": 4 * vision,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": 16,
        },
        projection_dim=text,
    )


def save_owlv2(folder: Path, seed: int = 0) -> Path:
    from transformers import Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    torch.manual_seed(seed)
    Owlv2ForObjectDetection(owlv2_config()).save_pretrained(folder)
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}),
        tokenizer=clip_tokenizer(),
    )
    processor.save_pretrained(folder)
    return folder


def save_grounding_dino(folder: Path, seed: int = 0) -> Path:
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    torch.manual_seed(seed)
    config = GroundingDinoConfig(
        backbone_config={
            "model_type": "swin",
            "embed_dim": 8,
            "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 1, 1],
            "window_size": 2,
            "image_size": 64,
            "out_indices": [2, 3, 4],
        },
        text_config={
            "model_type": "bert",
            "vocab_size": 1100,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": 32,
        },
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # one decoder layer trips transformers' tied-box-head check
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=10,
        encoder_n_points=1,
        decoder_n_points=1,
        max_text_len=32,
    )
    GroundingDinoForObjectDetection(config).save_pretrained(folder)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
        tokenizer=bert_tokenizer(),
    )
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def owl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_owlv2(tmp_path_factory.mktemp("owl") / "teacher")


@pytest.fixture(scope="module")
def gdino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_grounding_dino(tmp_path_factory.mktemp("gdino") / "teacher")


class Crafted(torch.nn.Module):
    """A stand-in model that returns fixed outputs of the family's own output class."""

    def __init__(self, make: Any) -> None:
        super().__init__()
        self.make = make
        self.seen: dict[str, Any] = {}

    def forward(self, **inputs: Any) -> Any:
        self.seen = inputs
        return self.make(inputs)


def owl_outputs(boxes: list[list[float]], prompt: list[int], n_prompts: int) -> Any:
    from transformers.models.owlv2.modeling_owlv2 import Owlv2ObjectDetectionOutput

    def make(_: dict[str, Any]) -> Any:
        logits = torch.full((1, 16, n_prompts), -20.0)
        pred = torch.full((1, 16, 4), 0.1)
        for q, (box, k) in enumerate(zip(boxes, prompt, strict=True)):
            logits[0, q, k] = 6.0
            pred[0, q] = torch.tensor(box)
        return Owlv2ObjectDetectionOutput(logits=logits, pred_boxes=pred)

    return make


# --- prompts ------------------------------------------------------------------------------------------


def test_one_prompt_per_class_by_default_and_the_map_replaces_per_class(tmp_path: Path) -> None:
    assert class_prompts(["tshirt", "traffic_light"]) == Prompts(
        ("tshirt", "traffic light"), (0, 1)
    )
    path = tmp_path / "prompts.yaml"
    path.write_text("trouser: [a pair of trousers, jeans]\nbag: a handbag\n")
    asked = class_prompts(CLASSES, read_prompt_map(path))
    assert asked.texts == ("tshirt", "a pair of trousers", "jeans", "a handbag")
    assert asked.class_ids == (0, 1, 1, 2)
    assert load_prompts(make_dataset(tmp_path / "ds", n=2), path) == asked


def test_a_prompt_map_naming_an_unknown_class_or_holding_no_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps({"bag": "a bag", "hat": "a hat"}))
    with pytest.raises(VigilError, match="class 'hat' is not in classes.txt") as exc:
        class_prompts(CLASSES, read_prompt_map(path), path)
    assert exc.value.field == "hat" and "tshirt, trouser, bag" in str(exc.value)
    path.write_text(json.dumps({"bag": []}))
    with pytest.raises(VigilError, match="non-empty list"):
        read_prompt_map(path)
    path.write_text("- bag\n")
    with pytest.raises(VigilError, match="mapping"):
        read_prompt_map(path)


def test_grounding_dino_caption_and_its_delimiter() -> None:
    assert grounding_caption(Prompts(("Red Car", "bag"), (0, 1))) == "red car. bag."
    with pytest.raises(VigilError, match="phrase separator"):
        grounding_caption(Prompts(("a st. bernard",), (0,)))


# --- loading ------------------------------------------------------------------------------------------


def test_the_family_is_read_from_config_json(owl: Path, gdino: Path) -> None:
    assert read_family(owl) is Family.OWLV2 and read_family(gdino) is Family.GROUNDING_DINO
    teacher = load_teacher(gdino)
    assert type(teacher.model).__name__ == "GroundingDinoForObjectDetection"
    assert not teacher.model.training


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda p: None, "teacher folder not found"),
        (lambda p: p.mkdir(), "config.json is missing"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{oops")), "not JSON"),
        (
            lambda p: (p.mkdir(), (p / "config.json").write_text('{"model_type": "detr"}')),
            "model_type 'detr' is not a teacher",
        ),
    ],
)
def test_a_bad_teacher_folder_is_named(tmp_path: Path, setup: Any, expected: str) -> None:
    folder = tmp_path / "t"
    setup(folder)
    with pytest.raises(VigilError, match=expected) as exc:
        load_teacher(folder)
    assert str(folder) in str(exc.value)


def test_pickled_weights_are_never_loaded(owl: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    for f in owl.iterdir():
        if f.suffix != ".safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(VigilError, match="never unpickles"):
        load_teacher(folder)


# --- boxes in pixels ----------------------------------------------------------------------------------


def test_owlv2_boxes_land_in_original_pixels_of_a_non_square_image(owl: Path) -> None:
    """OWLv2 pads 80×48 to an 80×80 square: a box is scaled by the longer side, never by the height."""
    teacher = load_teacher(owl)
    asked = Prompts(("tshirt", "a shirt", "bag"), (0, 0, 2))
    fake = Crafted(owl_outputs([[0.5, 0.25, 0.5, 0.25], [0.25, 0.125, 0.25, 0.125]], [1, 2], 3))
    found = detect(
        Teacher(owl, Family.OWLV2, fake, teacher.processor),
        np.zeros((48, 80, 3), np.uint8),
        asked,
        SETTINGS,
    )
    order = np.argsort(found.classes)
    np.testing.assert_allclose(found.boxes[order], [[20, 10, 60, 30], [10, 5, 30, 15]], atol=1e-4)
    assert found.classes[order].tolist() == [0, 2]  # prompt 1 ("a shirt") is class 0
    assert fake.seen["input_ids"].shape[0] == 3  # one text query per prompt


def test_grounding_dino_boxes_and_classes_come_from_its_token_spans(gdino: Path) -> None:
    from transformers.models.grounding_dino.modeling_grounding_dino import (
        GroundingDinoObjectDetectionOutput,
    )

    teacher = load_teacher(gdino)

    def make(inputs: dict[str, Any]) -> Any:
        ids = inputs["input_ids"][0].tolist()
        assert ids == [
            101,
            1053,
            1012,
            1054,
            1012,
            1055,
            1012,
            102,
        ]  # [CLS] tshirt . trouser . bag . [SEP]
        logits = torch.full((1, 10, 32), -20.0)
        logits[0, :, len(ids) :] = float("-inf")
        logits[0, 0, 5] = 4.0  # query 0: the token "bag"
        logits[0, 1, 1] = 3.0  # query 1: the token "tshirt"
        pred = torch.full((1, 10, 4), 0.2)
        pred[0, 0] = torch.tensor([0.5, 0.5, 0.5, 0.5])
        pred[0, 1] = torch.tensor([0.25, 0.75, 0.1, 0.5])
        return GroundingDinoObjectDetectionOutput(logits=logits, pred_boxes=pred)

    fake = Teacher(gdino, Family.GROUNDING_DINO, Crafted(make), teacher.processor)
    found = detect(fake, np.zeros((48, 80, 3), np.uint8), class_prompts(CLASSES), SETTINGS)
    assert found.classes.tolist() == [2, 0]
    np.testing.assert_allclose(found.boxes, [[20, 12, 60, 36], [16, 24, 24, 48]], atol=1e-4)
    np.testing.assert_allclose(
        found.scores, torch.sigmoid(torch.tensor([4.0, 3.0])).numpy(), rtol=1e-5
    )


def test_real_tiny_models_run_end_to_end(owl: Path, gdino: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    for folder in (owl, gdino):
        found = detect(load_teacher(folder), image, class_prompts(CLASSES), SETTINGS)
        assert len(found.boxes) > 0 and set(found.classes.tolist()) <= {0, 1, 2}
        assert (found.boxes[:, 2] <= 80).all() and (found.boxes[:, 3] <= 48).all()


# --- pseudo-labels and val ----------------------------------------------------------------------------


def perfect_owl(data: Path, images: list[str], teacher: Teacher) -> Teacher:
    """A stand-in that finds exactly the first image's true boxes (64×48: normalized by the 64 side)."""
    truth = [line.split() for line in (data / "labels/000.txt").read_text().splitlines()]
    boxes = [
        [float(cx), float(cy) * 48 / 64, float(w), float(h) * 48 / 64] for _, cx, cy, w, h in truth
    ]
    classes = [int(c) for c, *_ in truth]
    return Teacher(
        teacher.folder, Family.OWLV2, Crafted(owl_outputs(boxes, classes, 3)), teacher.processor
    )


def test_pseudo_labels_land_in_the_students_training_view(owl: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "ds", n=2)
    teacher = perfect_owl(data, ["images/000.png"], load_teacher(owl))
    pool = ["images/pool/p0.png"]
    write_image(data / pool[0], seed=0)  # the same picture, unlabelled, as a pool image
    labels = pseudo_labels(
        teacher, data, pool, class_prompts(CLASSES), LabelSettings(0.5, SETTINGS)
    )
    expected = (data / "labels/000.txt").read_text()
    rows = sorted(labels[pool[0]].splitlines())
    assert len(rows) == 2
    for got, want in zip(rows, sorted(expected.splitlines()), strict=True):
        assert got.split()[0] == want.split()[0]
        np.testing.assert_allclose(
            [float(v) for v in got.split()[1:]], [float(v) for v in want.split()[1:]], atol=1e-5
        )
    out = write_pseudo_labels(tmp_path / "pseudo", labels, {"teacher": str(owl)})
    assert (out / "labels/pool/p0.txt").read_text() == labels[pool[0]]
    assert read_pseudo_labels(out) == labels
    view = build_view(
        data,
        {"train": ["images/000.png", *pool], "val": ["images/001.png"]},
        tmp_path / "view",
        labels=read_pseudo_labels(out),
    )
    assert (view.parent / "labels/pool/p0.txt").read_text() == labels[pool[0]]
    assert not (data / "labels/pool").exists()  # the dataset itself is never changed


def test_a_perfect_teacher_scores_map_1_on_val_and_a_blind_one_0(owl: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "ds", n=2)
    teacher = perfect_owl(data, ["images/000.png"], load_teacher(owl))
    metrics = score_teacher(teacher, data, ["images/000.png"], class_prompts(CLASSES), SETTINGS)
    assert metrics["map50_95"] == 1.0 and metrics["boxes"] == 2
    blind = Teacher(owl, Family.OWLV2, Crafted(owl_outputs([], [], 3)), teacher.processor)
    assert (
        score_teacher(blind, data, ["images/000.png"], class_prompts(CLASSES), SETTINGS)["map50_95"]
        == 0.0
    )


# --- LoRA ---------------------------------------------------------------------------------------------


def lora_count(model: torch.nn.Module, names: tuple[str, ...], r: int) -> int:
    return sum(
        r * (m.in_features + m.out_features)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in names
    )


def test_only_the_adapters_train_and_their_share_is_under_2_percent() -> None:
    """At OWLv2-base widths (text 512, vision 768; one layer each) the attention adapters are ~1 %."""
    from transformers import Owlv2ForObjectDetection

    model = Owlv2ForObjectDetection(owlv2_config((512, 768), image_size=128))
    expected = lora_count(model, ("q_proj", "k_proj", "v_proj"), 16)
    total = trainable_share(model).total
    wrapped, share = wrap(model, Family.OWLV2, LoraSettings())
    assert share.trainable == expected and share.total == total + expected
    assert share.share < 0.02, share.line()
    assert all("lora_" in n for n, p in wrapped.named_parameters() if p.requires_grad)
    assert "%" in share.line()


def test_heads_train_only_when_asked(owl: Path) -> None:
    model = load_teacher(owl).model
    heads = sum(
        p.numel()
        for n, p in model.named_parameters()
        if n.split(".")[0] in ("class_head", "box_head", "objectness_head")
    )
    expected = lora_count(model, ("q_proj", "k_proj", "v_proj"), 4)
    _, share = wrap(model, Family.OWLV2, LoraSettings(r=4, train_heads=True))
    assert heads > 0 and share.trainable == expected + heads


def test_an_unknown_target_module_is_named(owl: Path) -> None:
    with pytest.raises(VigilError, match="no linear module named 'qkv'"):
        wrap(load_teacher(owl).model, Family.OWLV2, LoraSettings(targets=("qkv",)))


def owl_logits(teacher: Teacher) -> torch.Tensor:
    image = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    inputs = teacher.processor(
        text=[["tshirt", "bag"]], images=[image[:, :, ::-1].copy()], return_tensors="pt"
    )
    with torch.no_grad():
        out = teacher.model(**inputs)
    return torch.cat([out.logits.flatten(), out.pred_boxes.flatten()])


def test_adapter_save_load_merge_give_the_wrapped_models_outputs(owl: Path, tmp_path: Path) -> None:
    base = load_teacher(owl)
    before = owl_logits(base)
    wrapped, _ = wrap(base.model, Family.OWLV2, LoraSettings(r=4))
    torch.manual_seed(3)
    for name, param in wrapped.named_parameters():
        if "lora_B" in name:  # peft starts B at zero (an identity adapter): make it do something
            param.data.normal_(0, 0.5)
    wrapped.eval()
    adapted = owl_logits(Teacher(owl, Family.OWLV2, wrapped, base.processor))
    assert not torch.allclose(adapted, before, atol=1e-3)

    adapter = save_adapter(wrapped, owl, tmp_path / "adapter", LoraSettings(r=4))
    assert (adapter / "adapter_model.safetensors").is_file()
    assert not list(adapter.glob("model*.safetensors"))  # the base is not copied
    assert (adapter / "adapter_model.safetensors").stat().st_size < (
        owl / "model.safetensors"
    ).stat().st_size / 2
    record = json.loads((adapter / BASE_RECORD).read_text())
    assert set(record["sha256"]) == {"model.safetensors"} and record["lora"]["r"] == 4

    loaded = load_teacher(owl, adapter)
    torch.testing.assert_close(owl_logits(loaded), adapted, atol=1e-5, rtol=1e-4)
    merged = merge(owl, adapter, tmp_path / "merged")
    assert not (merged / "adapter_config.json").exists()
    plain = load_teacher(merged)
    assert not hasattr(plain.model, "peft_config")
    torch.testing.assert_close(owl_logits(plain), adapted, atol=1e-4, rtol=1e-3)


def test_an_adapter_refuses_a_base_it_was_not_trained_on(owl: Path, tmp_path: Path) -> None:
    base = load_teacher(owl)
    wrapped, _ = wrap(base.model, Family.OWLV2, LoraSettings(r=2))
    adapter = save_adapter(wrapped, owl, tmp_path / "adapter", LoraSettings(r=2))
    other = save_owlv2(tmp_path / "other", seed=1)
    with pytest.raises(VigilError, match="not trained on this base: model.safetensors") as exc:
        check_base(adapter, other)
    assert "\n" not in str(exc.value) and str(owl.resolve()) in str(exc.value)
    with pytest.raises(VigilError, match="not trained on this base"):
        load_teacher(other, adapter)
    assert check_base(adapter, owl)["family"] == "owlv2"


# --- CLI ----------------------------------------------------------------------------------------------


def vigil(*args: Any) -> Any:
    return CliRunner().invoke(app, ["teacher", *[str(a) for a in args]])


def test_cli_lora_prints_the_share_and_merge_writes_a_plain_model(
    owl: Path, tmp_path: Path
) -> None:
    result = vigil("lora", "--model", owl, "--out", tmp_path / "ad", "--r", "4")
    assert result.exit_code == 0, result.output
    assert "trainable" in result.output and "%" in result.output
    result = vigil("merge", "--model", owl, "--adapter", tmp_path / "ad", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert read_family(tmp_path / "m") is Family.OWLV2


def test_cli_pseudo_label_writes_a_label_per_image(owl: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "ds", n=3)
    images = tmp_path / "pool.txt"
    images.write_text("images/000.png\nimages/001.png\n")
    out = tmp_path / "pseudo"
    result = vigil(
        "pseudo-label",
        "--model",
        owl,
        "--data",
        data,
        "--images",
        images,
        "--out",
        out,
        "--conf",
        "0.01",
        "--params",
        REPO / "params.yaml",
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["000.txt", "001.txt"]
    record = json.loads((out / "pseudo_labels.json").read_text())
    assert record["family"] == "owlv2" and record["conf"] == 0.01 and record["iou"] == 0.7
    assert [p["text"] for p in record["prompts"]] == CLASSES
    result = vigil(
        "score",
        "--model",
        owl,
        "--data",
        data,
        "--images",
        images,
        "--params",
        REPO / "params.yaml",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])["images"] == 2


def error_cases(tmp_path: Path, owl: Path) -> list[tuple[list[Any], str]]:
    data = make_dataset(tmp_path / "ds", n=2)
    images = tmp_path / "list.txt"
    images.write_text("images/000.png\n")
    bad_map = tmp_path / "p.yaml"
    bad_map.write_text("hat: a hat\n")
    foreign = tmp_path / "detr"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"model_type": "detr"}')
    wrapped, _ = wrap(load_teacher(owl).model, Family.OWLV2, LoraSettings(r=2))
    adapter = save_adapter(wrapped, owl, tmp_path / "adapter", LoraSettings(r=2))
    other = save_owlv2(tmp_path / "other", seed=1)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    label = ["pseudo-label", "--data", data, "--images", images]
    return [
        (
            [*label, "--model", tmp_path / "none", "--out", tmp_path / "out1"],
            "teacher folder not found",
        ),
        ([*label, "--model", foreign, "--out", tmp_path / "out2"], "model_type 'detr'"),
        ([*label, "--model", owl, "--out", tmp_path / "out3", "--prompts", bad_map], "class 'hat'"),
        ([*label, "--model", owl, "--out", data / "pseudo"], "inside the source"),
        ([*label, "--model", owl, "--out", full], "--out is not empty"),
        ([*label, "--model", owl, "--out", tmp_path / "out4", "--conf", "1.5"], "confidence"),
        (
            ["merge", "--model", other, "--adapter", adapter, "--out", tmp_path / "out5"],
            "not trained on this base",
        ),
        (
            ["merge", "--model", owl, "--adapter", owl, "--out", tmp_path / "out6"],
            "not an adapter folder",
        ),
        (["lora", "--model", owl, "--out", tmp_path / "out7", "--target", "qkv"], "'qkv'"),
    ]


def test_every_cli_error_is_one_line_exit_2_and_writes_nothing(owl: Path, tmp_path: Path) -> None:
    for args, expected in error_cases(tmp_path, owl):
        result = vigil(*args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (
            args,
            lines,
        )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("out")]
    assert not (tmp_path / "ds" / "pseudo").exists()
