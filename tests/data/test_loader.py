import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dglsim.data import BatchLoader, FeatureSet, ImageSet, balanced_subset, normalize, random_crop_flip
from dglsim.errors import InvalidArgument


def _images(n=12, c=3, h=8, w=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(1, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % classes
    return ImageSet(images, labels, tuple(f"c{i}" for i in range(classes)), (0.5,) * c, (0.25,) * c)


def _reference_crop_flip(images, padding, dy, dx, flip):
    """Per-image loop: the obvious implementation the batched one must equal."""
    out = []
    for img, y0, x0, f in zip(images, dy, dx, flip):
        padded = torch.nn.functional.pad(img, (padding,) * 4)
        crop = padded[:, y0 : y0 + img.shape[1], x0 : x0 + img.shape[2]]
        out.append(crop.flip(2) if f else crop)
    return torch.stack(out)


@given(seed=st.integers(0, 2**31 - 1), padding=st.integers(0, 4))
def test_batched_crop_and_flip_equal_the_per_image_reference(seed, padding):
    images = _images(seed=seed % 1000).images
    got = random_crop_flip(images, padding, torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)  # replay the same draws in the same order
    if padding:
        dy = torch.randint(0, 2 * padding + 1, (len(images),), generator=g)
        dx = torch.randint(0, 2 * padding + 1, (len(images),), generator=g)
    else:
        dy = dx = torch.zeros(len(images), dtype=torch.long)
    flip = torch.rand(len(images), generator=g) < 0.5
    assert torch.equal(got, _reference_crop_flip(images, padding, dy.tolist(), dx.tolist(), flip.tolist()))


def test_crop_offsets_cover_all_shifts_and_flip_is_fair():
    """Over many draws every one of the (2*4+1)^2 offsets occurs; flips are Binomial(n, 1/2)
    (the 4-sigma interval of n = 4000 draws is 2000 +- 126)."""
    images = torch.zeros(4000, 1, 9, 9, dtype=torch.uint8)
    images[:, :, 4, 4] = 255  # a single lit pixel reveals the shift
    out = random_crop_flip(images, 4, torch.Generator().manual_seed(1))
    lit = out[:, 0].flatten(1).argmax(1)
    rows, cols = lit // 9, lit % 9
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 81
    marked = torch.zeros(4000, 1, 9, 9, dtype=torch.uint8)
    marked[:, :, 4, 0] = 255  # left edge; a flip moves it to the right
    flipped = (random_crop_flip(marked, 0, torch.Generator().manual_seed(2))[:, 0, 4, 8] == 255).sum().item()
    assert abs(flipped - 2000) < 126


def test_normalize_matches_the_formula():
    images = _images().images
    got = normalize(images, (0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    mean = torch.tensor([0.5, 0.4, 0.3])[None, :, None, None]
    std = torch.tensor([0.2, 0.25, 0.5])[None, :, None, None]
    torch.testing.assert_close(got, (images.float() / 255 - mean) / std, rtol=1e-5, atol=1e-5)


def test_epochs_are_permutations_reproducible_per_seed_and_epoch():
    data = _images(n=10)
    loader = BatchLoader(data, 4, shuffle=True, augment=False, seed=3)
    assert len(loader) == 3
    labels = [torch.cat([y for _, y in loader.epoch(e)]) for e in range(2)]
    assert sorted(labels[0].tolist()) == sorted(data.labels.tolist())
    again = torch.cat([y for _, y in BatchLoader(data, 4, shuffle=True, augment=False, seed=3).epoch(1)])
    assert torch.equal(labels[1], again)  # epoch 1 does not depend on having run epoch 0
    assert not torch.equal(labels[0], labels[1]) or not torch.equal(
        torch.cat([x for x, _ in loader.epoch(0)]), torch.cat([x for x, _ in loader.epoch(1)])
    )


def test_forever_runs_the_epochs_one_after_another():
    import itertools

    loader = BatchLoader(_images(n=10), 4, shuffle=True, augment=False, seed=3)
    expected = [y for e in range(3) for _, y in loader.epoch(e)]
    got = [y for _, y in itertools.islice(loader.forever(), len(expected))]
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_drop_last_and_feature_sets():
    feats = FeatureSet(torch.randn(10, 5), torch.zeros(10, dtype=torch.long), ("a",))
    loader = BatchLoader(feats, 4, shuffle=False, augment=False, drop_last=True)
    batches = list(loader.epoch(0))
    assert len(batches) == 2 and all(x.shape == (4, 5) for x, _ in batches)
    torch.testing.assert_close(batches[0][0], feats.features[:4])
    with pytest.raises(InvalidArgument, match="'augment' of BatchLoader must be False for FeatureSet"):
        BatchLoader(feats, 4, shuffle=False, augment=True)
    with pytest.raises(InvalidArgument, match="'batch_size' of BatchLoader must be an int >= 1, got 0"):
        BatchLoader(feats, 0, shuffle=False, augment=False)


@given(per_class=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_balanced_subset_is_balanced_ordered_and_seeded(per_class, seed):
    data = _images(n=30, classes=3)
    sub = balanced_subset(data, per_class, seed=seed)
    assert (sub.class_counts() == per_class).all()
    # kept in original order, and every image is one of the originals with its label
    index = [int(torch.nonzero((data.images == img).flatten(1).all(1))[0]) for img in sub.images]
    assert index == sorted(index) and torch.equal(data.labels[index], sub.labels)
    assert torch.equal(sub.images, balanced_subset(data, per_class, seed=seed).images)


def test_balanced_subset_rejects_more_than_the_smallest_class():
    with pytest.raises(InvalidArgument, match=r"'per_class' of balanced_subset must be an int in \[1, 4\]"):
        balanced_subset(_images(n=12, classes=3), 5, seed=0)


def test_the_authors_subsets_are_the_first_images_in_file_order():
    from dglsim.data import ImageSet, first, first_per_class

    labels = torch.tensor([3, 1, 3, 0, 1, 1, 0, 3, 0, 2, 2, 2])
    data = ImageSet(torch.arange(12, dtype=torch.uint8).view(12, 1, 1, 1).expand(12, 3, 2, 2).contiguous(), labels, ("a", "b", "c", "d"), (0.5,) * 3, (0.2,) * 3)
    sub = first_per_class(data, 2)
    assert sub.images[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 6, 9, 10]  # per class the first two, kept in file order
    assert first(data, 5).labels.tolist() == labels[:5].tolist()
    with pytest.raises(InvalidArgument, match="'per_class' of first_per_class must be an int in \\[1, 3\\]"):
        first_per_class(data, 4)
