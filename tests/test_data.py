"""Dataset specs: each format loads as float32 N×C×H×W and int64 labels; bad data, InputError."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snnconv.data import Dataset, asset_path, load_dataset, parse_normalize
from snnconv.errors import InputError

# ---------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    """Write an unsigned-byte IDX file (gzipped when the name ends in .gz)."""
    magic = 0x0800 | array.ndim if magic is None else magic
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def make_mnist(directory: Path, n_train: int = 6, n_test: int = 4, gz: bool = True) -> Path:
    """A tiny MNIST-format folder: train images are all 255, test images all 51."""
    directory.mkdir(exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, n, value in (("train", n_train, 255), ("t10k", n_test, 51)):
        write_idx(directory / f"{prefix}-images-idx3-ubyte{ext}", np.full((n, 5, 4), value))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{ext}", np.arange(n) % 3)
    return directory


def make_cifar(directory: Path, per_batch: int = 3, protocol: int = 2) -> Path:
    """A tiny CIFAR-10 folder of pickled dicts with bytes keys, like the real files."""
    directory.mkdir(exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        data = np.full((per_batch, 3072), k * 10, dtype=np.uint8)
        batch = {b"data": data, b"labels": [k % 10] * per_batch, b"batch_label": name.encode()}
        with open(directory / name, "wb") as f:
            pickle.dump(batch, f, protocol=protocol)
    return directory


def save_npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return f"npz:{path}"


# ---------------------------------------------------------------- digits


def test_digits_bundled_split() -> None:
    test, train = load_dataset("digits"), load_dataset("digits", split="train")
    assert test.x.shape == (500, 1, 8, 8) and train.x.shape == (1297, 1, 8, 8)
    assert test.x.dtype == np.float32 and test.y.dtype == np.int64
    assert 0.0 <= test.x.min() and test.x.max() == 1.0
    assert test.num_classes == 10 and test.name == "digits"


def test_digits_split_suffix_overrides_argument() -> None:
    assert len(load_dataset("digits:train", split="test")) == 1297


def test_runtime_does_not_import_sklearn() -> None:
    code = (
        "import sys; from snnconv.data import load_dataset; load_dataset('digits'); "
        "assert 'sklearn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_demo_model_asset_exists() -> None:
    assert asset_path("digits_cnn.onnx").stat().st_size > 1000


def test_missing_asset_is_input_error() -> None:
    with pytest.raises(InputError, match="nope.onnx"):
        asset_path("nope.onnx")


# ---------------------------------------------------------------- npz


def test_npz_nchw_and_nhw(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((5, 2, 3, 4))
    ds = load_dataset(save_npz(tmp_path / "a.npz", x=x, y=np.arange(5)))
    assert ds.x.shape == (5, 2, 3, 4) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x, x, rtol=1e-6)
    ds = load_dataset(save_npz(tmp_path / "b.npz", x=np.zeros((3, 4, 4)), y=[0, 1, 2]))
    assert ds.x.shape == (3, 1, 4, 4) and ds.y.tolist() == [0, 1, 2]


def test_npz_split_suffix_is_accepted_and_ignored(tmp_path: Path) -> None:
    spec = save_npz(tmp_path / "a.npz", x=np.zeros((2, 1, 2, 2)), y=[0, 1])
    assert len(load_dataset(spec + ":train")) == 2


def test_npz_whole_float_labels_are_accepted(tmp_path: Path) -> None:
    spec = save_npz(tmp_path / "a.npz", x=np.zeros((2, 1, 2, 2)), y=np.array([1.0, 0.0]))
    assert load_dataset(spec).y.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"x": np.zeros((2, 4)), "y": [0, 1]}, r"shape \(2, 4\).*N×C×H×W"),
        ({"x": np.zeros((2, 1, 2, 2)), "y": [0, 1, 2]}, "3 labels for 2 images"),
        ({"x": np.zeros((0, 1, 2, 2)), "y": np.zeros(0, int)}, "empty"),
        ({"x": np.zeros((2, 1, 2, 2)), "y": [0, -1]}, "label 1 is -1"),
        ({"x": np.zeros((2, 1, 2, 2)), "y": [0.5, 1.0]}, "label 0 is 0.5, not an integer"),
        ({"x": np.zeros((2, 1, 2, 2)), "y": np.array(["a", "b"])}, "dtype <U1"),
        ({"x": np.array([[[[0.0]]], [[[np.nan]]]]), "y": [0, 1]}, "image 1 contains NaN"),
        ({"x": np.array([["a"]]), "y": [0]}, "numeric"),
        ({"x": np.zeros((2, 1, 2, 2))}, "missing array.* y"),
    ],
)
def test_npz_bad_arrays(tmp_path: Path, arrays: dict, expected: str) -> None:
    path = tmp_path / "bad.npz"
    with pytest.raises(InputError, match=expected) as info:
        load_dataset(save_npz(path, **arrays))
    assert str(path) in str(info.value)


def test_npz_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothere\.npz.*not found.*'x'"):
        load_dataset(f"npz:{tmp_path / 'nothere.npz'}")


def test_npz_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="junk.npz"):
        load_dataset(f"npz:{path}")


# ---------------------------------------------------------------- mnist (IDX)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_splits_and_scaling(tmp_path: Path, gz: bool) -> None:
    directory = make_mnist(tmp_path / "m", gz=gz)
    train = load_dataset(f"mnist:{directory}", split="train")
    test = load_dataset(f"mnist:{directory}")
    assert train.x.shape == (6, 1, 5, 4) and test.x.shape == (4, 1, 5, 4)
    assert train.x.max() == 1.0 and np.allclose(test.x, 0.2)
    assert train.y.tolist() == [0, 1, 2, 0, 1, 2] and train.y.dtype == np.int64


def test_mnist_split_suffix_overrides_argument(tmp_path: Path) -> None:
    directory = make_mnist(tmp_path / "m")
    assert len(load_dataset(f"mnist:{directory}:train", split="test")) == 6
    assert len(load_dataset(f"mnist:{directory}:test", split="train")) == 4


def test_mnist_corrupt_magic(tmp_path: Path) -> None:
    directory = make_mnist(tmp_path / "m")
    bad = directory / "t10k-images-idx3-ubyte.gz"
    write_idx(bad, np.zeros((4, 5, 4)), magic=0x1234)
    with pytest.raises(InputError, match=r"t10k-images-idx3-ubyte\.gz.*magic number 0x00001234"):
        load_dataset(f"mnist:{directory}")


def test_mnist_truncated_file(tmp_path: Path) -> None:
    directory = make_mnist(tmp_path / "m", gz=False)
    path = directory / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.*truncated"):
        load_dataset(f"mnist:{directory}")


def test_mnist_label_count_mismatch(tmp_path: Path) -> None:
    directory = make_mnist(tmp_path / "m")
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.zeros(3))
    with pytest.raises(InputError, match="t10k-labels.*3 labels for 4 images"):
        load_dataset(f"mnist:{directory}")


def test_mnist_missing_dir_and_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nodir.*not found.*t10k-images-idx3-ubyte\[\.gz\]"):
        load_dataset(f"mnist:{tmp_path / 'nodir'}")
    directory = make_mnist(tmp_path / "m")
    (directory / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InputError, match="missing train-labels-idx1-ubyte"):
        load_dataset(f"mnist:{directory}:train")


# ---------------------------------------------------------------- cifar10


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_cifar10_splits(tmp_path: Path, protocol: int) -> None:
    directory = make_cifar(tmp_path / "c", protocol=protocol)
    train = load_dataset(f"cifar10:{directory}", split="train")
    test = load_dataset(f"cifar10:{directory}:test")
    assert train.x.shape == (15, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    assert train.y.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3
    np.testing.assert_allclose(test.x, 50 / 255, rtol=1e-6)


class _Hostile:
    def __reduce__(self):  # would call os.getcwd on load if the unpickler allowed it
        return (os.getcwd, ())


def test_cifar10_refuses_non_array_objects(tmp_path: Path) -> None:
    directory = make_cifar(tmp_path / "c")
    with open(directory / "test_batch", "wb") as f:
        pickle.dump({b"data": _Hostile(), b"labels": []}, f)
    with pytest.raises(InputError, match=r"test_batch.*refusing to load .*getcwd"):
        load_dataset(f"cifar10:{directory}")


def test_cifar10_bad_shape_and_missing_batch(tmp_path: Path) -> None:
    directory = make_cifar(tmp_path / "c")
    with open(directory / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(InputError, match=r"test_batch, array 'data': shape \(2, 100\)"):
        load_dataset(f"cifar10:{directory}")
    (directory / "data_batch_3").unlink()
    with pytest.raises(InputError, match="missing CIFAR-10 batch file.*data_batch_3"):
        load_dataset(f"cifar10:{directory}:train")


# ---------------------------------------------------------------- options and specs


def test_normalize_and_limit(tmp_path: Path) -> None:
    directory = make_mnist(tmp_path / "m")
    ds = load_dataset(f"mnist:{directory}:train", normalize=(0.5, 0.25), limit=2)
    assert ds.x.shape == (2, 1, 5, 4) and ds.y.tolist() == [0, 1]
    np.testing.assert_allclose(ds.x, 2.0)  # (1.0 - 0.5) / 0.25
    assert len(load_dataset(f"mnist:{directory}", limit=100)) == 4


def test_batches_cover_the_set_in_order() -> None:
    ds = Dataset(x=np.zeros((5, 1, 2, 2), np.float32), y=np.arange(5), name="t")
    sizes = [(len(x), y.tolist()) for x, y in ds.batches(2)]
    assert sizes == [(2, [0, 1]), (2, [2, 3]), (1, [4])]
    with pytest.raises(InputError, match="batch size 0"):
        next(ds.batches(0))


def test_parse_normalize() -> None:
    assert parse_normalize("0.5,0.25") == (0.5, 0.25)
    assert parse_normalize(" 0.1307 , 0.3081 ") == (0.1307, 0.3081)
    for text in ("0.5", "a,b", "0.5,0", "0.5,-1", "1,2,3", "nan,1"):
        with pytest.raises(InputError, match="normalize"):
            parse_normalize(text)


@pytest.mark.parametrize(
    ("spec", "kwargs", "expected"),
    [
        ("imagenet:/x", {}, "unknown dataset scheme 'imagenet'.*digits, npz, mnist, cifar10"),
        ("mnist", {}, "names no path"),
        ("digits:/some/path", {}, "takes no path"),
        ("digits", {"split": "val"}, "unknown split 'val'"),
        ("digits", {"limit": 0}, "limit 0"),
        ("digits", {"normalize": (0.0, 0.0)}, "std must be > 0"),
    ],
)
def test_bad_specs_and_options(spec: str, kwargs: dict, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        load_dataset(spec, **kwargs)
