"""Loader-side pieces without a table: image decoding and augmentation, cell dropout, the hash split."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from lakehouse.loaders.augment import CellDropout, Compose, DecodeImages, RandomBrightness, RandomCrop, RandomFlip
from lakehouse.loaders.split import Split, buckets, spark_xxhash64


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(out, format="PNG")
    return out.getvalue()


def test_decode_gives_float_images_channels_first_and_names_a_wrong_size():
    pixels = np.arange(28 * 28).reshape(28, 28) % 256
    batch = DecodeImages("image")({"image": [png(pixels), png(255 - pixels)], "id": torch.tensor([1, 2])})
    assert batch["image"].shape == (2, 1, 28, 28) and batch["image"].dtype == torch.float32
    assert torch.equal(batch["image"][0, 0], torch.from_numpy(pixels / 255.0).to(torch.float32))
    assert torch.equal(batch["id"], torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"image: image 1 of the batch is 10x12"):
        DecodeImages("image")({"image": [png(pixels), png(np.zeros((10, 12)))]})


def test_augmentations_keep_shapes_move_pixels_and_repeat_with_the_same_seed():
    images = torch.rand(16, 1, 28, 28)
    flipped = RandomFlip(p=1.0)({"image": images})["image"]
    assert torch.equal(flipped, images.flip(-1))
    assert torch.equal(RandomFlip(p=0.0)({"image": images})["image"], images)

    cropped = RandomCrop(padding=2, seed=1)({"image": images})["image"]
    assert cropped.shape == images.shape and not torch.equal(cropped, images)
    # every crop is the original shifted by at most 2 pixels (zeros where it moved in from the padding)
    for original, crop in zip(images, cropped):
        padded = torch.nn.functional.pad(original, [2] * 4)
        assert any(torch.equal(crop, padded[:, dy : dy + 28, dx : dx + 28]) for dy in range(5) for dx in range(5))

    bright = RandomBrightness(max_delta=0.5, seed=2)({"image": images})["image"]
    assert bright.min() >= 0 and bright.max() <= 1
    deltas = []
    for original, brightened in zip(images, bright):
        unclamped = (brightened > 0) & (brightened < 1)
        shift = (brightened - original)[unclamped]
        assert torch.allclose(shift, shift[0].expand_as(shift), atol=1e-6)  # one offset per image
        deltas.append(float(shift[0]))
    assert max(abs(d) for d in deltas) <= 0.5 and len({round(d, 4) for d in deltas}) > 1

    pipeline = lambda: Compose(RandomCrop(seed=3), RandomFlip(seed=4), RandomBrightness(seed=5))  # noqa: E731
    assert torch.equal(pipeline()({"image": images})["image"], pipeline()({"image": images})["image"])
    assert not torch.equal(
        pipeline()({"image": images})["image"], Compose(RandomCrop(seed=9))({"image": images})["image"]
    )


def test_cell_dropout_blanks_about_p_of_the_cells_and_says_what_it_outputs():
    dropout = CellDropout(["a"], p=0.3, seed=0)
    batch = dropout({"a": torch.arange(10_000), "b": torch.arange(10_000)})
    assert batch["a"].dtype == torch.float32 and 2_700 < int(torch.isnan(batch["a"]).sum()) < 3_300
    assert torch.equal(batch["b"], torch.arange(10_000))
    assert Compose(DecodeImages("image"), dropout).output_fields() == {
        "image": (np.float32, (1, 28, 28)),
        "a": (np.float32, ()),
    }


def test_split_is_stable_disjoint_and_matches_sparks_xxhash64(spark):
    keys = np.array([0, 1, -1, 42, 2**62, -(2**63), 2**63 - 1, *range(1000, 3000)], dtype=np.int64)
    expected = spark.createDataFrame([(int(k),) for k in keys], "k bigint").selectExpr("xxhash64(k) AS h").collect()
    assert spark_xxhash64(keys).tolist() == [row.h for row in expected]
    holdout, train = Split("k", "holdout").mask(keys), Split("k", "train").mask(keys)
    assert not (holdout & train).any() and (holdout | train).all()
    assert 0.17 < holdout.mean() < 0.23
    assert np.array_equal(
        Split("k", "holdout").mask(keys[::-1]), holdout[::-1]
    )  # a key's side depends on the key alone
    assert (buckets(keys) >= 0).all() and (buckets(keys) < 100).all()
    with pytest.raises(TypeError, match="int64"):
        Split("k").mask(np.array([1, 2], dtype=np.int32))
