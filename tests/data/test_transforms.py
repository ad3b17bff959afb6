"""Batched augmentation, decoding dataset and loaders: hand-checked pixels and invariants."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reid.data.errors import DatasetError
from reid.data.image_dataset import ImageDataset
from reid.data.loader import build_test_loader, build_train_loader, collate
from reid.data.records import ImageRecord
from reid.data.transforms import (
    Normalize,
    RandomErasing,
    RandomFlipPadCrop,
    TestTransform,
    TrainAugment,
)

HALF = (0.5, 0.5, 0.5)


def asymmetric_image() -> torch.Tensor:
    """(1, 3, 2, 3) uint8 with distinct values everywhere."""
    return torch.arange(18, dtype=torch.uint8).view(1, 3, 2, 3) * 10


def test_flip_with_p1_mirrors_columns() -> None:
    x = asymmetric_image()
    out = RandomFlipPadCrop(flip_p=1.0, pad=0)(x)
    assert out.dtype == torch.uint8
    assert out[0, 0].tolist() == [[20, 10, 0], [50, 40, 30]]
    assert torch.equal(out, x.flip(-1))


def test_pad_zero_and_no_flip_is_identity() -> None:
    x = torch.randint(0, 256, (4, 3, 16, 8), dtype=torch.uint8)
    assert torch.equal(RandomFlipPadCrop(flip_p=0.0, pad=0)(x), x)
    aug = TrainAugment(HALF, HALF, flip_p=0.0, pad=0, erase_p=0.0)
    assert torch.equal(aug(x), TestTransform(HALF, HALF)(x))


def test_pad_crop_hand_checked() -> None:
    x = asymmetric_image()
    # crop origin (top=0, left=2) in the 1-px zero-padded 4x5 canvas: shift down 1, left 1.
    params = {"flip": torch.tensor([False]), "top": torch.tensor([0]), "left": torch.tensor([2])}
    out = RandomFlipPadCrop.apply(x, params, pad=1)
    assert out[0, 0].tolist() == [[0, 0, 0], [10, 20, 0]]
    # with the flip first: flipped row0 = [20, 10, 0]
    params["flip"] = torch.tensor([True])
    assert RandomFlipPadCrop.apply(x, params, pad=1)[0, 0].tolist() == [[0, 0, 0], [10, 0, 0]]


def test_pad_crop_matches_explicit_pad_and_slice() -> None:
    torch.manual_seed(0)
    x = torch.randint(1, 256, (32, 3, 20, 12), dtype=torch.uint8)
    op = RandomFlipPadCrop(flip_p=0.5, pad=3)
    out = op(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    p = op.last_params
    assert p is not None
    assert int(p["top"].min()) >= 0 and int(p["top"].max()) <= 6
    assert 0 < int(p["flip"].sum()) < 32
    padded = torch.nn.functional.pad(x, (3, 3, 3, 3))
    for b in range(32):
        src = padded[b].flip(-1) if p["flip"][b] else padded[b]
        t, left = int(p["top"][b]), int(p["left"][b])
        assert torch.equal(out[b], src[:, t : t + 20, left : left + 12])
    # float input in [0, 1] gives the same pixels as uint8 / 255
    assert torch.equal(RandomFlipPadCrop.apply(x.float() / 255, p, 3), out.float() / 255)


def test_normalise_exact_values() -> None:
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    out = TestTransform(HALF, HALF)(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, 0, 0], torch.tensor([-1.0, -0.6, 1.0]), atol=1e-6)
    imagenet = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    y = imagenet(torch.full((1, 3, 1, 1), 128, dtype=torch.uint8))
    expected = [(128 / 255 - m) / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    assert torch.allclose(y.flatten(), torch.tensor(expected), atol=1e-6)
    # float input is taken as already in [0, 1]
    assert torch.allclose(imagenet(torch.full((1, 3, 1, 1), 128 / 255)), y, atol=1e-6)


def test_erasing_p1_changes_one_box_in_range_and_nothing_else() -> None:
    torch.manual_seed(1)
    x = torch.randint(0, 256, (64, 3, 256, 128), dtype=torch.uint8)
    area = (0.02, 1 / 3)
    aug = TrainAugment(HALF, HALF, flip_p=0.0, pad=0, erase_p=1.0, erase_area=area)
    out = aug(x)
    clean = TestTransform(HALF, HALF)(x)
    p = aug.erase.last_params
    assert p is not None and bool(p["applied"].all())  # timm: 10 attempts nearly always fit at this range
    mask = RandomErasing.box_mask(p, 256, 128, torch.device("cpu")).expand_as(out)
    assert torch.equal(out[~mask], clean[~mask])
    changed = out != clean
    assert torch.equal(changed, mask)  # every box pixel got noise (ties have probability ~0)
    h, w = p["height"].double(), p["width"].double()
    assert bool((h < 256).all() and (w < 128).all())
    frac = h * w / (256 * 128)
    # rounding h and w to integers moves the area by at most (H + W) / 2 + 1/4 pixels
    slack = (256 + 128) / 2 / (256 * 128) + 1e-9
    assert bool((frac >= area[0] - slack).all() and (frac <= area[1] + slack).all())
    noise = out[mask]
    assert abs(float(noise.mean())) < 0.02 and abs(float(noise.std()) - 1.0) < 0.02


def test_erasing_p0_is_identity_and_box_sampling_follows_timm() -> None:
    x = torch.randn(8, 3, 32, 16)
    assert torch.equal(RandomErasing(p=0.0)(x), x)
    gen = torch.Generator().manual_seed(0)
    erase = RandomErasing(p=0.5, area=(0.02, 1 / 3), ratio=(0.3, 1 / 0.3))
    p = erase.sample_boxes(20000, 256, 128, generator=gen)
    rate = float(p["applied"].double().mean())
    assert 0.48 < rate < 0.52
    on = p["applied"]
    assert bool((p["height"][~on] == 0).all() and (p["width"][~on] == 0).all())
    assert bool((p["top"][on] + p["height"][on] <= 256).all() and (p["left"][on] + p["width"][on] <= 128).all())
    # log-uniform aspect ratio on [0.3, 1/0.3]: on a square image (where rejection is symmetric too)
    # log(h/w) is symmetric about 0; on a 2:1 image wide boxes are rejected more, so tall ones dominate.
    sq = erase.sample_boxes(20000, 128, 128, generator=gen)
    log_r = torch.log(sq["height"][sq["applied"]].double() / sq["width"][sq["applied"]].double())
    assert abs(float(log_r.median())) < 0.05
    assert float(log_r.abs().max()) < math.log(1 / 0.3) + 0.15
    tall = torch.log(p["height"][on].double() / p["width"][on].double())
    assert float(tall.median()) > 0.05
    # boxes that cannot fit are rejected, not clamped: area ~ whole image never fits a square
    big = RandomErasing(p=1.0, area=(0.99, 1.0), ratio=(0.3, 1 / 0.3)).sample_boxes(500, 10, 10, gen)
    assert bool(((big["height"] < 10) & (big["width"] < 10) | ~big["applied"]).all())
    assert float(big["applied"].double().mean()) < 0.5
    # same generator seed -> same boxes
    p2 = erase.sample_boxes(20000, 256, 128, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(p[k], p2[k]) for k in p)


def test_train_augment_dtype_shape_determinism_and_views() -> None:
    x = torch.randint(0, 256, (6, 3, 32, 16), dtype=torch.uint8)
    aug = TrainAugment(HALF, HALF, flip_p=0.5, pad=4, erase_p=0.5)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    b = aug(x)
    assert a.dtype == torch.float32 and a.shape == x.shape and torch.equal(a, b)
    p = aug.erase.last_params
    assert p is not None
    outside = ~RandomErasing.box_mask(p, 32, 16, torch.device("cpu")).expand_as(a)
    assert float(a[outside].min()) >= -1.0 and float(a[outside].max()) <= 1.0  # only noise leaves [-1, 1]
    views = x.unsqueeze(1).expand(6, 2, 3, 32, 16)
    v = aug(views)
    assert v.shape == (6, 2, 3, 32, 16)
    assert not torch.equal(v[:, 0], v[:, 1])  # each view draws its own flips/crops/boxes


def test_ssl_views_erase_about_a_third() -> None:
    """SVLL-ReID's views: TrainAugment with conf/ssl's erase_area, as reid.build.data builds them."""
    from omegaconf import OmegaConf

    ssl = OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "ssl" / "simsiam.yaml")
    aug = TrainAugment(HALF, HALF, erase_p=1.0, erase_area=tuple(ssl.vision.erase_area))
    assert aug.erase.area == pytest.approx((0.33, 1 / 3))
    aug(torch.zeros(256, 3, 64, 32, dtype=torch.uint8))
    p = aug.erase.last_params
    assert p is not None
    frac = (p["height"] * p["width"]).double()[p["applied"]] / (64 * 32)
    slack = (64 + 32) / 2 / (64 * 32)
    assert bool((frac > 0.33 - slack).all() and (frac < 1 / 3 + slack).all())


def write_jpeg(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path, quality=95)


def test_dataset_decodes_resizes_and_names_corrupt_files(tmp_path: Path) -> None:
    img = np.zeros((16, 8, 3), dtype=np.uint8)
    img[:8] = (200, 30, 30)  # top half red, bottom half blue
    img[8:] = (30, 30, 200)
    good = tmp_path / "0001_c2s1_000001_00.jpg"
    write_jpeg(good, img)
    records = [ImageRecord(str(good), pid=1, camid=1, viewid=0)]
    ds = ImageDataset(records, size=(32, 16), interpolation="bicubic")
    item = ds[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 32, 16)
    assert (item["pid"], item["camid"], item["viewid"], item["index"]) == (1, 1, 0, 0)
    top = item["image"][:, 2, 8].int().tolist()
    bottom = item["image"][:, 29, 8].int().tolist()
    assert abs(top[0] - 200) < 12 and top[2] < 45
    assert abs(bottom[2] - 200) < 12 and bottom[0] < 45

    # PIL backend (bit-identical to the reference) agrees with torch's antialiased resize within 2 levels
    pil = ImageDataset(records, size=(32, 16), interpolation="bicubic", resize_backend="pil")[0]["image"]
    assert pil.shape == (3, 32, 16)
    assert int((pil.int() - item["image"].int()).abs().max()) <= 2
    # same size: no resize at all, pixels equal PIL's decode
    same = ImageDataset(records, size=(16, 8), interpolation="bilinear")[0]["image"]
    assert torch.equal(same, torch.from_numpy(np.array(Image.open(good).convert("RGB"))).permute(2, 0, 1))

    multi = ImageDataset(records, size=(32, 16), interpolation="bilinear", num_views=3)[0]["image"]
    assert multi.shape == (3, 3, 32, 16) and torch.equal(multi[0], multi[2])

    corrupt = tmp_path / "0002_c1s1_000002_00.jpg"
    corrupt.write_bytes(good.read_bytes()[:40])  # truncated header
    bad = ImageDataset([ImageRecord(str(corrupt), 2, 0)], size=(32, 16), interpolation="bicubic")
    with pytest.raises(DatasetError, match="0002_c1s1_000002_00.jpg"):
        bad[0]
    missing = ImageDataset([ImageRecord(str(tmp_path / "nope.jpg"), 2, 0)], (32, 16), "bicubic")
    with pytest.raises(DatasetError, match="nope.jpg"):
        missing[0]
    with pytest.raises(ValueError, match="interpolation 'cubic' not supported"):
        ImageDataset(records, (32, 16), "cubic")
    with pytest.raises(ValueError, match="not supported by the torch backend"):
        ImageDataset(records, (32, 16), "lanczos")
    ImageDataset(records, (32, 16), "lanczos", resize_backend="pil")


def test_collate_stacks_both_memory_layouts_and_augment_reads_them_alike() -> None:
    torch.manual_seed(0)
    hwc = torch.randint(0, 256, (4, 20, 12, 3), dtype=torch.uint8)
    as_views = [{"image": hwc[i].permute(2, 0, 1), "pid": i, "camid": 0, "viewid": 0, "index": i} for i in range(4)]
    as_chw = [dict(d, image=d["image"].contiguous()) for d in as_views]
    a, b = collate(as_views)["image"], collate(as_chw)["image"]
    assert a.shape == b.shape == (4, 3, 20, 12) and torch.equal(a, b)
    assert a.is_contiguous(memory_format=torch.channels_last) and b.is_contiguous()
    params = RandomFlipPadCrop(0.5, 3).sample(4)
    ga, gb = RandomFlipPadCrop.apply(a, params, 3), RandomFlipPadCrop.apply(b, params, 3)
    assert torch.equal(ga, gb)
    norm = Normalize(HALF, HALF)
    assert norm(ga).is_contiguous() and torch.equal(norm(ga), norm(gb))
    multi = collate([dict(d, image=d["image"].expand(2, 3, 20, 12)) for d in as_views])["image"]
    assert multi.shape == (4, 2, 3, 20, 12) and torch.equal(multi[:, 1], a)


def test_loaders_yield_pk_batches_and_sequential_test_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = []
    for pid in range(6):
        for k in range(3 + pid % 3):
            path = tmp_path / f"{pid:04d}_{k}.jpg"
            write_jpeg(path, rng.integers(0, 256, (16, 8, 3), dtype=np.uint8))
            records.append(ImageRecord(str(path), pid, k % 2))
    loader = build_train_loader(records, (16, 8), batch_size=8, num_instances=2, num_workers=0, seed=0)
    loader.sampler.set_epoch(1)
    batches = list(loader)
    assert len(batches) == len(loader) == loader.sampler.num_batches
    for batch in batches:
        assert batch["image"].shape == (8, 3, 16, 8) and batch["image"].dtype == torch.uint8
        assert set(Counter(batch["pid"].tolist()).values()) == {2}
        assert all(records[i].pid == p for i, p in zip(batch["index"].tolist(), batch["pid"].tolist()))
    workers = build_train_loader(records, (16, 8), 8, 2, num_workers=1, seed=0)
    workers.sampler.set_epoch(1)
    assert all(torch.equal(a["image"], b["image"]) and torch.equal(a["index"], b["index"])
               for a, b in zip(workers, batches, strict=True))
    dist = build_train_loader(records, (16, 8), 8, 2, num_workers=0, seed=0, distributed=(2, 1), num_views=2)
    first = next(iter(dist))
    assert first["image"].shape == (4, 2, 3, 16, 8) and len(set(first["pid"].tolist())) == 2

    test = build_test_loader(records, (16, 8), batch_size=5, num_workers=0)
    order = torch.cat([b["index"] for b in test]).tolist()
    assert order == list(range(len(records)))
    assert collate([{"image": torch.zeros(3, 2, 2, dtype=torch.uint8), "pid": 4, "camid": 1, "viewid": 0,
                     "index": 9}])["pid"].tolist() == [4]


@pytest.mark.parametrize("channels_last", [False, True])
def test_slice_and_gather_paths_agree(channels_last: bool) -> None:
    torch.manual_seed(5)
    x = torch.randint(0, 256, (40, 3, 18, 10), dtype=torch.uint8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    op = RandomFlipPadCrop(flip_p=0.5, pad=4)
    params = op.sample(40)
    a = RandomFlipPadCrop.apply(x, params, 4, method="slice")
    b = RandomFlipPadCrop.apply(x, params, 4, method="gather")
    assert a.is_contiguous() and b.is_contiguous() and torch.equal(a, b)
    # padding larger than the image: windows can be empty, everything else zero
    big = op.sample(40)
    big["top"], big["left"] = torch.full((40,), 0), torch.full((40,), 40)
    assert torch.equal(RandomFlipPadCrop.apply(x, big, 20, "slice"), RandomFlipPadCrop.apply(x, big, 20, "gather"))


@pytest.mark.parametrize("fill", ["pixel", "rand", "const"])
def test_erasing_slice_and_masked_paths_touch_the_same_boxes(fill: str) -> None:
    x = torch.randn(16, 3, 24, 12)
    outs = []
    for method in ("slice", "masked"):
        erase = RandomErasing(p=1.0, fill=fill, method=method)
        out = erase(x, generator=torch.Generator().manual_seed(2))
        assert erase.last_params is not None
        mask = RandomErasing.box_mask(erase.last_params, 24, 12, torch.device("cpu")).expand_as(x)
        assert torch.equal(out[~mask], x[~mask])
        if fill == "const":
            assert bool((out[mask] == 0).all())
        else:
            assert bool((out[mask] != x[mask]).all())
        if fill == "rand":  # one colour per image and channel
            for i in range(16):
                box = out[i][mask[i]].view(3, -1)
                assert bool((box == box[:, :1]).all())
        outs.append(mask)
    assert torch.equal(outs[0], outs[1])
