"""Readers of the real dataset formats, on tiny fixtures written in each format (tests/fixtures/datasets)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import ConfigError, DatasetError
from runtime.datasets.base import FaceDataset, Remapped, Subset
from runtime.datasets.formats import CKPlus, FER2013, FERPlus, RAFDB, AffectNet, ImageFolder
from runtime.datasets.labels import (
    AFFECTNET8,
    CANONICAL,
    CKPLUS8,
    FER7,
    FERPLUS8,
    RAFDB7,
    canonical_name,
    label_set,
    remap,
)
from runtime.datasets.spec import FORMATS, open_dataset, parse_spec

FIX = Path(__file__).parent / "fixtures" / "datasets"
_spec = importlib.util.spec_from_file_location("make_fixtures", FIX / "make_fixtures.py")
mf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mf)

FER_CSV = FIX / "fer2013" / "fer2013.csv"
FERPLUS_CSV = FIX / "fer2013" / "fer2013new.csv"
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def copy_fixture(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(FIX / name, tmp_path / name))


def replace_line(path: Path, line_no: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = new
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- labels


def test_label_sets_use_canonical_names_and_aliases():
    for labels in (FER7, FERPLUS8, AFFECTNET8, RAFDB7, CKPLUS8):
        assert set(labels) <= set(CANONICAL)
        assert len(set(labels)) == len(labels)
    assert [canonical_name(n) for n in ("Anger", " happiness ", "SADNESS", "Surprised")] == [
        "angry",
        "happy",
        "sad",
        "surprise",
    ]
    assert label_set(["Happiness", "neutral"]) == ("happy", "neutral")
    with pytest.raises(ConfigError, match="unknown expression class"):
        canonical_name("bored")
    with pytest.raises(ConfigError, match="unknown label set"):
        label_set("fer9")
    with pytest.raises(ConfigError, match="more than once"):
        label_set(["anger", "angry"])


def test_remap_seven_to_eight_is_exact_and_eight_to_seven_drops_contempt():
    up = remap("fer7", "ferplus8")
    assert all(FERPLUS8[j] == FER7[i] for i, j in enumerate(up))
    down = remap("ferplus8", "fer7")
    for i, j in enumerate(down):
        assert (j == -1) if FERPLUS8[i] == "contempt" else FER7[j] == FERPLUS8[i]
    merged = remap("ferplus8", "fer7", unmapped="disgust")
    assert merged[FERPLUS8.index("contempt")] == FER7.index("disgust")
    with pytest.raises(ConfigError, match="contempt"):
        remap("ckplus8", "fer7", unmapped="error")
    with pytest.raises(ConfigError, match="not a class of the target"):
        remap("ferplus8", "fer7", unmapped="contempt")
    with pytest.raises(ConfigError, match="share no class"):
        remap(["contempt"], "fer7")
    with pytest.raises(ConfigError, match="unknown expression class"):
        remap(["happy", "bored"], "fer7")


# ---------------------------------------------------------------- FER2013


def test_fer2013_splits_labels_and_pixels_round_trip():
    total = 0
    for split in ("train", "val", "test"):
        ds = FER2013(FER_CSV, split)
        rows = [k for k, (_, usage) in enumerate(mf.FER_ROWS) if USAGE[usage] == split]
        assert len(ds) == len(rows)
        total += len(ds)
        for i, row in enumerate(rows):
            image, label = ds[i]
            assert image.dtype == np.uint8 and image.shape == (48, 48)
            np.testing.assert_array_equal(image, mf.fer_pixels(row))
            assert label == mf.FER_ROWS[row][0]
            assert ds.source(i) == f"fer2013.csv line {row + 2}"
        assert list(ds.targets()) == [mf.FER_ROWS[r][0] for r in rows]
    assert total == len(FER2013(FER_CSV, "all")) == len(mf.FER_ROWS)
    ds = FER2013(FER_CSV, "train")
    assert isinstance(ds, FaceDataset) and ds.labels == FER7
    np.testing.assert_array_equal(ds[-1][0], mf.fer_pixels(3))
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert len(list(ds)) == len(ds)


def test_fer2013_other_column_order_and_spaced_header(tmp_path):
    path = tmp_path / "icml_face_data.csv"
    pixels = " ".join(map(str, mf.fer_pixels(5).reshape(-1)))
    padded = "  ".join(f"{v:03d}" for v in mf.fer_pixels(5).reshape(-1))  # leading zeros, double spaces
    path.write_text(f'emotion, Usage, pixels\n2,PrivateTest,{pixels}\n\n4,PrivateTest,"{padded} "\n')
    ds = FER2013(path, "test")
    assert len(ds) == 2 and list(ds.targets()) == [2, 4] and ds.source(1) == "icml_face_data.csv line 4"
    np.testing.assert_array_equal(ds[0][0], mf.fer_pixels(5))
    np.testing.assert_array_equal(ds[1][0], mf.fer_pixels(5))


@pytest.mark.parametrize(
    "line, match",
    [
        ("3,1 2 3", "fer2013.csv line 3: 2 columns, expected 3"),
        (
            "3," + " ".join(["7"] * 2303) + ",Training",
            r"fer2013.csv line 3: 'pixels' has 2303 values, expected 2304 \(48x48\)",
        ),
        ("3," + " ".join(["7"] * 2303) + " x,Training", "fer2013.csv line 3: 'pixels' value 'x' is not an integer"),
        ("3," + " ".join(["7"] * 2303) + " 256,Training", "fer2013.csv line 3: 'pixels' value 256 is outside 0..255"),
        ("7," + " ".join(["7"] * 2304) + ",Training", "fer2013.csv line 3: 'emotion' is 7, expected 0..6"),
        ("x," + " ".join(["7"] * 2304) + ",Training", "fer2013.csv line 3: 'emotion' is 'x', expected an integer"),
        ("3," + " ".join(["7"] * 2304) + ",Validation", "fer2013.csv line 3: 'Usage' is 'Validation'"),
    ],
)
def test_fer2013_bad_rows_name_the_line(tmp_path, line, match):
    path = copy_fixture(tmp_path, "fer2013") / "fer2013.csv"
    replace_line(path, 3, line)
    with pytest.raises(DatasetError, match=match):
        FER2013(path, "train")


def test_fer2013_missing_file_header_and_split(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        FER2013(tmp_path / "fer2013.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        FER2013(tmp_path / "empty.csv")
    (tmp_path / "nopix.csv").write_text("emotion,Usage\n3,Training\n")
    with pytest.raises(DatasetError, match=r"lacks column\(s\) \['pixels'\]"):
        FER2013(tmp_path / "nopix.csv")
    with pytest.raises(ConfigError, match="no split 'dev'"):
        FER2013(FER_CSV, "dev")
    (tmp_path / "train.csv").write_text("emotion,pixels\n1," + " ".join(["9"] * 2304) + "\n")
    assert len(FER2013(tmp_path / "train.csv", "all")) == 1
    with pytest.raises(ConfigError, match="no Usage column"):
        FER2013(tmp_path / "train.csv", "val")


# ---------------------------------------------------------------- FER+


def test_ferplus_majority_soft_labels_and_drops():
    expected = {"train": [(0, "happy"), (1, "angry")], "val": [(4, "neutral")], "test": [(6, "contempt"), (7, "fear")]}
    for split, rows in expected.items():
        ds = FERPlus(FERPLUS_CSV, pixels=FER_CSV, split=split)
        assert ds.labels == FERPLUS8
        assert [(int(r), ds.labels[ds.label(i)]) for i, r in enumerate(ds.rows)] == rows
        for i, (row, _) in enumerate(rows):
            np.testing.assert_array_equal(ds[i][0], mf.fer_pixels(row))
            votes = np.asarray(mf.FERPLUS_ROWS[row][1][:8], dtype=np.float64)
            np.testing.assert_allclose(ds.soft_label(i), votes / votes.sum(), rtol=1e-6)
    test = FERPlus(FERPLUS_CSV, split="test")  # pixels default: fer2013.csv next to it
    soft = test.soft_label(1)
    assert soft[FERPLUS8.index("fear")] == pytest.approx(4 / 7)
    assert soft[FERPLUS8.index("surprise")] == pytest.approx(3 / 7)
    assert len(FERPlus(FERPLUS_CSV, split="all")) == 5  # 8 rows - empty name - unknown tie - NF


def test_ferplus_tie_policies():
    assert list(FERPlus(FERPLUS_CSV, split="all", ties="drop").rows) == [0, 6, 7]
    assert list(FERPlus(FERPLUS_CSV, split="all", min_votes_fraction=0.5).rows) == [0, 6]
    with pytest.raises(ConfigError, match="ties='random'"):
        FERPlus(FERPLUS_CSV, split="all", ties="random")


def test_ferplus_refuses_mismatched_files(tmp_path):
    d = copy_fixture(tmp_path, "fer2013")
    lines = (d / "fer2013new.csv").read_text().splitlines()
    (d / "short.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError, match="has 7 rows but fer2013.csv has 8"):
        FERPlus(d / "short.csv", split="all")
    replace_line(d / "fer2013new.csv", 6, lines[5].replace("PublicTest", "Training"))
    with pytest.raises(DatasetError, match="fer2013new.csv line 6: Usage is 'train' but fer2013.csv line 6 says 'val'"):
        FERPlus(d / "fer2013new.csv", split="all")
    replace_line(d / "fer2013new.csv", 6, "PublicTest,fer0000004.png,0,0,0,0,0,0,0,0,0,0")
    with pytest.raises(DatasetError, match="line 6: image 'fer0000004.png' has no votes"):
        FERPlus(d / "fer2013new.csv", split="all")
    replace_line(d / "fer2013new.csv", 6, "PublicTest,fer0000004.png,5,0,0,0,0,0,0,-5,0,0")
    with pytest.raises(DatasetError, match="line 6: negative vote count"):
        FERPlus(d / "fer2013new.csv", split="all")
    (d / "fer2013.csv").unlink()
    with pytest.raises(DatasetError, match="pixels=/path/fer2013.csv"):
        FERPlus(d / "fer2013new.csv", split="all")


# ---------------------------------------------------------------- RAF-DB


def test_rafdb_splits_labels_and_images():
    for split, prefix in (("train", "train_"), ("test", "test_")):
        ds = RAFDB(FIX / "rafdb", split)
        rows = [k for k, (name, _) in enumerate(mf.RAFDB_ROWS) if name.startswith(prefix)]
        assert len(ds) == len(rows)
        for i, k in enumerate(rows):
            image, label = ds[i]
            assert image.shape == (48, 48, 3) and image.dtype == np.uint8
            assert np.abs(image.astype(int) - mf.rafdb_color(k)).max() <= 2  # JPEG of a flat colour
            assert label == mf.RAFDB_ROWS[k][1] - 1
    assert RAFDB(FIX / "rafdb", "train").labels[RAFDB(FIX / "rafdb", "train").label(0)] == "sad"  # label 5
    assert len(RAFDB(FIX / "rafdb", "all")) == len(mf.RAFDB_ROWS)
    with pytest.raises(ConfigError, match="no split 'val'"):
        RAFDB(FIX / "rafdb", "val")


@pytest.mark.parametrize(
    "line, match",
    [
        ("train_00002.jpg 8", "list_patition_label.txt line 2: label 8 is not in 1..7"),
        ("train_00002.jpg", "list_patition_label.txt line 2: 'train_00002.jpg' has 1 fields"),
        ("train_00002.jpg two", "list_patition_label.txt line 2: the label is 'two', expected an integer"),
        ("val_00002.jpg 3", "does not start with 'train_' or 'test_'"),
    ],
)
def test_rafdb_bad_label_lines(tmp_path, line, match):
    root = copy_fixture(tmp_path, "rafdb")
    replace_line(root / "EmoLabel" / "list_patition_label.txt", 2, line)
    with pytest.raises(DatasetError, match=match):
        RAFDB(root, "train")


def test_rafdb_missing_and_unreadable_images(tmp_path):
    root = copy_fixture(tmp_path, "rafdb")
    bad = root / "Image" / "aligned" / "train_00002_aligned.jpg"
    bad.write_bytes(b"not a jpeg at all")
    ds = RAFDB(root, "train")
    ds[0]
    with pytest.raises(DatasetError, match="train_00002_aligned.jpg.*cannot be decoded"):
        ds[1]
    bad.unlink()
    with pytest.raises(DatasetError, match="train_00002_aligned.jpg.*does not exist"):
        ds[1]
    with pytest.raises(DatasetError, match="1 image.* missing"):
        RAFDB(root, "train", verify=True)
    with pytest.raises(DatasetError, match="RAF-DB root folder .* does not exist"):
        RAFDB(tmp_path / "nowhere")
    (root / "EmoLabel" / "list_patition_label.txt").unlink()
    with pytest.raises(DatasetError, match="list_patition_label.txt .*does not exist"):
        RAFDB(root)


# ---------------------------------------------------------------- CK+


def ck_expected(peak: int = 3, neutral: bool = True) -> list[tuple[str, int, int]]:
    """(subject, frame value, label) of the samples the CK+ policy must produce, in reader order."""
    out = []
    for subject, seqs in sorted(mf.CK_SEQUENCES.items()):
        for seq, (frames, code) in sorted(seqs.items()):
            if code is None:
                continue
            first = max(2 if neutral else 1, frames - peak + 1)
            if neutral:
                out.append((subject, mf.ck_value(subject, seq, 1), 0))
            out += [(subject, mf.ck_value(subject, seq, f), code) for f in range(first, frames + 1)]
    return out


@pytest.mark.parametrize("peak, neutral", [(3, True), (1, False), (10, True)])
def test_ckplus_peak_and_neutral_frames(peak, neutral):
    ds = CKPlus(FIX / "ckplus", "all", peak_frames=peak, neutral_first=neutral)
    got = []
    for i in range(len(ds)):
        image, label = ds[i]
        assert image.shape == (48, 48) and image.dtype == np.uint8
        assert (image == image[0, 0]).all()
        got.append((ds.subject(i), int(image[0, 0]), label))
    assert got == ck_expected(peak, neutral)


def test_ckplus_subject_wise_splits_are_disjoint_and_deterministic():
    all_subjects = set(mf.CK_SEQUENCES)
    for seed in range(4):
        parts = {
            s: CKPlus(FIX / "ckplus", s, seed=seed, val_fraction=0.2, test_fraction=0.2)
            for s in ("train", "val", "test")
        }
        subjects = {s: {ds.subject(i) for i in range(len(ds))} for s, ds in parts.items()}
        assert all(subjects.values())
        assert not (subjects["train"] & subjects["val"]) and not (subjects["train"] & subjects["test"])
        assert not (subjects["val"] & subjects["test"])
        assert set().union(*subjects.values()) == all_subjects
        assert sum(len(ds) for ds in parts.values()) == len(ck_expected())
        again = CKPlus(FIX / "ckplus", "test", seed=seed, val_fraction=0.2, test_fraction=0.2)
        assert [again.path(i) for i in range(len(again))] == [parts["test"].path(i) for i in range(len(again))]
    tests = [frozenset(CKPlus(FIX / "ckplus", "test", seed=s).subject(i) for i in range(1)) for s in range(6)]
    assert len(set(tests)) > 1  # the seed changes the assignment
    folds = [
        {ds.subject(i) for i in range(len(ds))}
        for ds in (CKPlus(FIX / "ckplus", "test", folds=3, fold=k) for k in range(3))
    ]
    assert set().union(*folds) == all_subjects and sum(map(len, folds)) == len(all_subjects)
    train0 = CKPlus(FIX / "ckplus", "train", folds=3, fold=0)
    assert not {train0.subject(i) for i in range(len(train0))} & folds[0]
    with pytest.raises(ConfigError, match="too few"):
        CKPlus(FIX / "ckplus", "train", val_fraction=0.6, test_fraction=0.3)  # 3 + 2 of 5 subjects


@pytest.mark.parametrize(
    "content, match",
    [
        ("   9.0000000e+00\n", "emotion code 9 is not in 0..7"),
        ("   2.5000000e+00\n", "expected an integer"),
        ("", "expected one number"),
    ],
)
def test_ckplus_bad_label_files(tmp_path, content, match):
    root = copy_fixture(tmp_path, "ckplus")
    (root / "Emotion" / "S005" / "001" / "S005_001_00000005_emotion.txt").write_text(content)
    with pytest.raises(DatasetError, match="S005_001_00000005_emotion.txt.*" + match):
        CKPlus(root, "all")


def test_ckplus_missing_sequence_and_unreadable_frame(tmp_path):
    root = copy_fixture(tmp_path, "ckplus")
    frame = root / "cohn-kanade-images" / "S011" / "001" / "S011_001_00000006.png"
    frame.write_bytes(b"\x89PNG broken")
    ds = CKPlus(root, "all")
    idx = next(i for i in range(len(ds)) if ds.path(i) == frame)
    with pytest.raises(DatasetError, match="S011_001_00000006.png.*cannot be decoded"):
        ds[idx]
    shutil.rmtree(root / "cohn-kanade-images" / "S011")
    with pytest.raises(DatasetError, match="S011_001_00000006_emotion.txt has no image sequence"):
        CKPlus(root, "all")
    with pytest.raises(DatasetError, match="CK\\+ image folder"):
        CKPlus(FIX / "rafdb")


# ---------------------------------------------------------------- AffectNet


def test_affectnet_crops_drops_and_splits():
    root = FIX / "affectnet" / "images"
    ds = AffectNet(FIX / "affectnet" / "training.csv", root=root, split="train")
    kept = [k for k, row in enumerate(mf.AFFECTNET_TRAIN) if row[2] < 8]
    assert len(ds) == len(kept) == 3
    for i, k in enumerate(kept):
        rel, (x, y, w, h), expr, val, aro, shape = mf.AFFECTNET_TRAIN[k]
        image, label = ds[i]
        full = mf.affectnet_image(k, shape)
        np.testing.assert_array_equal(image, full[y : min(y + h, shape[0]), x : min(x + w, shape[1])])
        assert label == expr and ds.face_box(i) == (x, y, w, h)
        assert ds.valence_arousal(i) == pytest.approx((val, aro))
    assert ds[1][0].shape == (24, 24, 3)  # box 40..80 clipped to the 64x64 image
    wide = AffectNet(FIX / "affectnet" / "training.csv", root=root, margin=0.25)
    # box x=8,y=10,w=30,h=32 grown by 8 px each side (0.25 * 30 and 0.25 * 32, rounded), clipped at x=0
    np.testing.assert_array_equal(wide[0][0], mf.affectnet_image(0, (64, 64))[2:50, 0:46])
    val = AffectNet(FIX / "affectnet", root=root, split="val")
    assert [val.labels[val.label(i)] for i in range(len(val))] == ["angry", "surprise"]
    assert len(AffectNet(FIX / "affectnet", root=root, split="all")) == 5
    with pytest.raises(ConfigError, match="training.csv holds the train split, not 'test'"):
        AffectNet(FIX / "affectnet" / "training.csv", root=root, split="test")


@pytest.mark.parametrize(
    "row, match",
    [
        ("1/a1.png,8,10,30,32,1;2,11,0.1,0.1", "training.csv line 2: 'expression' is 11, expected 0..10"),
        ("1/a1.png,8,10,0,32,1;2,1,0.1,0.1", "training.csv line 2: face box .* non-positive"),
        ("1/a1.png,8,10,30,1;2,1,0.1,0.1", "training.csv line 2: 8 columns, expected 9"),
        ("1/a1.png,8,10,30,32,1;2,1,high,0.1", "training.csv line 2: valence/arousal"),
    ],
)
def test_affectnet_bad_rows(tmp_path, row, match):
    d = copy_fixture(tmp_path, "affectnet")
    replace_line(d / "training.csv", 2, row)
    with pytest.raises(DatasetError, match=match):
        AffectNet(d / "training.csv", root=d / "images")


def test_affectnet_box_outside_and_unreadable_image(tmp_path):
    d = copy_fixture(tmp_path, "affectnet")
    replace_line(d / "training.csv", 2, "1/a1.png,70,10,30,32,1;2,1,0.1,0.1")
    (d / "images" / "1" / "a2.png").write_bytes(b"garbage")
    ds = AffectNet(d / "training.csv", root=d / "images")
    with pytest.raises(DatasetError, match="training.csv line 2: face box .* outside the 64x64 image"):
        ds[0]
    with pytest.raises(DatasetError, match="a2.png .*training.csv line 3.*cannot be decoded"):
        ds[1]
    with pytest.raises(DatasetError, match="AffectNet image root"):
        AffectNet(d / "training.csv", root=d / "no_images")


# ---------------------------------------------------------------- image folders


def test_folder_with_splits_maps_class_names():
    ds = ImageFolder(FIX / "folder", "train")
    assert ds.labels == FER7
    got = sorted((ds.labels[label], int(image[0, 0, 0])) for image, label in ds)
    want = sorted((canonical_name(c), mf.folder_value(c, j)) for c, n in mf.FOLDER["train"].items() for j in range(n))
    assert got == want
    test = ImageFolder(FIX / "folder", "test")
    assert len(test) == 2 and test.labels == ds.labels
    assert len(ImageFolder(FIX / "folder", "all")) == 7
    assert ImageFolder(FIX / "folder", "train", gray=True)[0][0].ndim == 2
    with pytest.raises(DatasetError, match="no 'val' folder"):
        ImageFolder(FIX / "folder", "val")
    with pytest.raises(ConfigError, match=r"classes \['sad'\] that are not in the label set"):
        ImageFolder(FIX / "folder", "train", labels=["angry", "happy"])


def test_folder_unknown_class_and_flat_layout(tmp_path):
    root = copy_fixture(tmp_path, "folder")
    flat = root / "train"
    assert len(ImageFolder(flat, "train")) == 5
    with pytest.raises(ConfigError, match="has no split folders"):
        ImageFolder(flat, "test")
    (flat / "contempt").mkdir()
    shutil.copy(flat / "angry" / "angry_000.png", flat / "contempt" / "c.png")
    assert ImageFolder(flat, "all").labels == CANONICAL
    (flat / "bored").mkdir()
    (flat / "Sleepy").mkdir()
    with pytest.raises(ConfigError, match="unknown names: train/Sleepy, train/bored"):
        ImageFolder(root, "test")
    (flat / "bored").rmdir(), (flat / "Sleepy").rmdir()
    (flat / "angry" / "angry_001.png").write_bytes(b"nope")
    ds = ImageFolder(flat, "all")
    with pytest.raises(DatasetError, match="angry_001.png .*cannot be decoded"):
        ds[ds.files.index(flat / "angry" / "angry_001.png")]


# ---------------------------------------------------------------- wrappers and spec


def test_remapped_and_subset_datasets():
    test = FERPlus(FERPLUS_CSV, split="test")
    seven = Remapped(test, "fer7")
    assert len(seven) == 1 and seven.labels == FER7  # the contempt sample is left out
    assert seven.labels[seven[0][1]] == "fear" and list(seven.targets()) == [FER7.index("fear")]
    soft = seven.soft_label(0)
    assert soft.sum() == pytest.approx(1.0) and soft[FER7.index("fear")] == pytest.approx(4 / 7)
    merged = Remapped(test, "fer7", unmapped="disgust")
    assert [merged.labels[y] for _, y in merged] == ["disgust", "fear"]
    up = Remapped(FER2013(FER_CSV, "all"), "ferplus8")
    assert [up.labels[y] for y in up.targets()] == [FER7[e] for e, _ in mf.FER_ROWS]
    sub = Subset(test, [1])
    assert sub.label(0) == test.label(1) and sub.source(0) == test.source(1)


def test_spec_opens_every_format():
    assert parse_spec("ferplus:/a.csv,pixels=/b.csv,ties=drop,min_votes_fraction=0.5") == (
        "ferplus",
        "/a.csv",
        {"pixels": "/b.csv", "ties": "drop", "min_votes_fraction": 0.5},
    )
    cases = {
        f"fer2013:{FER_CSV}": (FER2013, 4),
        f"ferplus:{FERPLUS_CSV},pixels={FER_CSV}": (FERPlus, 2),
        f"ferplus:{FERPLUS_CSV},ties=drop": (FERPlus, 1),
        f"rafdb:{FIX / 'rafdb'}": (RAFDB, 4),
        f"ckplus:{FIX / 'ckplus'},peak_frames=1,neutral_first=false,folds=5,fold=0": (
            CKPlus,
            len(CKPlus(FIX / "ckplus", peak_frames=1, neutral_first=False, folds=5, fold=0)),
        ),
        f"affectnet:{FIX / 'affectnet' / 'training.csv'},root={FIX / 'affectnet' / 'images'}": (AffectNet, 3),
        f"folder:{FIX / 'folder'}": (ImageFolder, 5),
        f"ferplus:{FERPLUS_CSV},labels=fer7": (Remapped, 2),
    }
    for spec, (cls, n) in cases.items():
        ds = open_dataset(spec)
        assert type(ds) is cls and len(ds) == n, spec
    assert len(open_dataset(f"ferplus:{FERPLUS_CSV},labels=fer7", split="test")) == 1
    assert len(open_dataset(f"rafdb:{FIX / 'rafdb'}", split="test", aligned=True)) == 2


def test_spec_errors():
    with pytest.raises(ConfigError, match="unknown dataset format 'kdef'.*" + ", ".join(FORMATS)):
        open_dataset("kdef:/data")
    with pytest.raises(ConfigError, match="no 'format:' prefix"):
        open_dataset("/data/fer2013.csv")
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset("fer2013:/no/such/fer2013.csv")
    with pytest.raises(ConfigError, match=r"does not take option\(s\) \['colour'\]"):
        open_dataset(f"fer2013:{FER_CSV},colour=1")
    with pytest.raises(ConfigError, match="has no path"):
        open_dataset("rafdb:aligned=true")
    with pytest.raises(ConfigError, match="pass split= to open_dataset"):
        open_dataset(f"fer2013:{FER_CSV},split=test")
    with pytest.raises(ConfigError, match="not key=value"):
        open_dataset(f"fer2013:{FER_CSV},extra")


def test_spec_procedural():
    pytest.importorskip("runtime.datasets.procedural")
    ds = open_dataset("procedural:n=6,size=32,seed=1", split="val")
    image, label = ds[0]
    assert len(ds) == 6 and image.shape[:2] == (32, 32) and 0 <= label < len(ds.labels)


# ---------------------------------------------------------------- torch adapter


def test_torch_adapter_normalises_resizes_and_converts():
    torch = pytest.importorskip("torch")
    from runtime.input_spec import InputSpec
    from sdk.training.data.torch_dataset import TorchFaceDataset

    fer = FER2013(FER_CSV, "train")
    t = TorchFaceDataset(fer, InputSpec.square(48, 3, mean=0.5, std=0.25))
    x, y = t[0]
    assert x.dtype == torch.float32 and x.shape == (3, 48, 48) and y == fer.label(0)
    want = (mf.fer_pixels(0).astype(np.float32) / 255 - 0.5) / 0.25
    for c in range(3):
        np.testing.assert_allclose(x[c].numpy(), want, atol=1e-6)
    raf = RAFDB(FIX / "rafdb", "train")
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.4)
    for color, order in (("rgb", (2, 1, 0)), ("bgr", (0, 1, 2))):
        x, _ = TorchFaceDataset(raf, InputSpec((20, 30), 3, color, mean=mean, std=std))[0]
        assert x.shape == (3, 20, 30)
        bgr = mf.rafdb_color(0)
        for c, src in enumerate(order):
            assert x[c].mean().item() == pytest.approx((bgr[src] / 255 - mean[c]) / std[c], abs=0.03)
    g, _ = TorchFaceDataset(raf, InputSpec.square(24, 1, mean=0.0, std=1.0))[0]
    b, gr, r = mf.rafdb_color(0)
    assert g.shape == (1, 24, 24)
    assert g.mean().item() == pytest.approx((0.114 * b + 0.587 * gr + 0.299 * r) / 255, abs=0.02)


def test_torch_adapter_transform_soft_labels_and_loader():
    torch = pytest.importorskip("torch")
    from runtime.input_spec import InputSpec
    from sdk.training.data.torch_dataset import TorchFaceDataset

    def cover_top(img: np.ndarray) -> np.ndarray:
        out = img.copy()
        out[: img.shape[0] // 2] = 0
        return out

    t = TorchFaceDataset(
        FERPlus(FERPLUS_CSV, split="test"), InputSpec.square(32, 1), transform=cover_top, soft_labels=True
    )
    x, y, soft = t[1]
    assert (x[0, :16] == -1.0).all() and not (x[0, 16:] == -1.0).all()
    assert soft.shape == (8,) and soft.sum().item() == pytest.approx(1.0) and soft.argmax().item() == y
    xb, yb, sb = next(iter(torch.utils.data.DataLoader(t, batch_size=2)))
    assert xb.shape == (2, 1, 32, 32) and yb.tolist() == [FERPLUS8.index("contempt"), FERPLUS8.index("fear")]
    _, y, onehot = TorchFaceDataset(FER2013(FER_CSV, "val"), InputSpec.square(48), soft_labels=True)[0]
    assert onehot.tolist() == [1.0 if k == y else 0.0 for k in range(7)]
    bad = TorchFaceDataset(FER2013(FER_CSV, "val"), InputSpec.square(48), transform=lambda im: im[:10])
    with pytest.raises(ConfigError, match="same shape as its input"):
        bad[0]
    with pytest.raises(ConfigError, match=r"'input.mean' must be a list of 1 or 3 numbers"):
        InputSpec((48, 48), 3, "rgb", mean=(0.1, 0.2))


def test_committed_fixtures_match_their_generator(tmp_path):
    import cv2

    mf.main(tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(FIX)
        for p in FIX.rglob("*")
        if p.is_file() and p.name != "make_fixtures.py" and "__pycache__" not in p.parts
    )
    assert made == committed
    for rel in made:
        if rel.suffix in (".png", ".jpg"):
            a = cv2.imread(str(tmp_path / rel), cv2.IMREAD_UNCHANGED)
            b = cv2.imread(str(FIX / rel), cv2.IMREAD_UNCHANGED)
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1, rel  # JPEG encoders may differ by 1
        else:
            assert (tmp_path / rel).read_bytes() == (FIX / rel).read_bytes(), rel


def test_datasets_sit_below_calibration_and_keep_their_old_home():
    """The readers live in runtime.datasets (no torch, no sdk); sdk.training.data re-exports them; the faces reader
    finds the SDK's default bundle without importing sdk."""
    import subprocess
    import sys

    code = (
        "import sys, calibration.sources, runtime.datasets.faces, runtime.datasets.formats, "
        "runtime.datasets.procedural; from runtime.datasets.faces import default_bundle_dir; "
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.split('.')[0] == 'sdk'); "
        "assert not bad, bad; print(default_bundle_dir())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent
    )
    from sdk.recognizer import DEFAULT_BUNDLE
    from sdk.training import data

    assert Path(out.stdout.strip()) == DEFAULT_BUNDLE and (DEFAULT_BUNDLE / "manifest.json").is_file()
    assert data.open_dataset is open_dataset and data.FER7 == FER7 and "open_dataset" in data.__all__
