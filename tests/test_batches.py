"""Batches prepared where the model is: the crop offsets and flips drawn on the CPU from the epoch's generator, the
crop, flip and normalisation as batched tensor operations on the device, the next batch gathered ahead where the
images come from the host. What can be checked without a GPU is checked here; tests/test_gpu.py does the rest."""
import pytest
import torch

import assignment_4a as a4a

MEAN, STD = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def cache(n=6, seed=0):
    return torch.randint(0, 256, (n, 3, a4a.CACHE_SIZE, a4a.CACHE_SIZE), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_the_gathered_crops_are_the_sliced_crops():
    """Catches: the GPU's one-gather crop taking other pixels than the CPU's slices (rows and columns swapped, a
    flip mirrored the wrong way, an offset off by one): a run would train on other crops on a GPU."""
    images = cache()
    ys, xs = torch.tensor([0, 32, 5, 17, 32, 0]), torch.tensor([0, 32, 31, 2, 0, 32])
    flips = torch.tensor([False, True, True, False, False, True])
    got = a4a.crop_by_gather(images, ys, xs, flips)
    for i in range(len(images)):
        crop = images[i, :, ys[i]:ys[i] + a4a.CROP, xs[i]:xs[i] + a4a.CROP]
        assert torch.equal(got[i], crop.flip(-1) if flips[i] else crop), i
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_augmentation_flips_left_right_never_upside_down():
    """Catches: a flip of the rows (an upside-down painting) instead of the columns."""
    images = cache(1)
    x = a4a.crop_by_gather(images, torch.tensor([16]), torch.tensor([16]), torch.tensor([True]))[0]
    crop = images[0, :, 16:16 + a4a.CROP, 16:16 + a4a.CROP]
    assert torch.equal(x, crop.flip(-1)) and not torch.equal(x, crop.flip(-2))


def test_the_gather_path_gives_the_cpu_path_bit_for_bit(monkeypatch):
    """Catches: to_input drawing its offsets differently, or normalising differently, where the crops are gathered
    (the GPU's way) rather than sliced: the same seed must give the same input tensor."""
    images = cache()
    sliced = a4a.to_input(images, MEAN, STD, True, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    ys, xs = torch.randint(0, a4a.CACHE_SIZE - a4a.CROP + 1, (2, len(images)), generator=g)
    flips = torch.rand(len(images), generator=g) < 0.5
    gathered = a4a.crop_by_gather(images, ys, xs, flips).float().sub_(MEAN * 255).div_(STD * 255)
    assert torch.equal(sliced, gathered)


@pytest.mark.parametrize("n,bs", [(10, 4), (8, 4), (3, 8)])
def test_batches_gathered_ahead_are_the_batches_in_order(n, bs):
    """Catches: the prefetching thread shifting the batches by one, losing the last, short batch, or pairing a
    batch's rows with another batch's indices (labels then belong to other images)."""
    x = cache(n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    plain = list(a4a.rows_in_batches(x, order, bs, torch.device("cpu"), ahead=False))
    ahead = list(a4a.rows_in_batches(x, order, bs, torch.device("cpu"), ahead=True))
    assert len(ahead) == len(plain) == -(-n // bs)
    for (i1, r1), (i2, r2) in zip(plain, ahead):
        assert torch.equal(i1, i2) and torch.equal(r1, r2) and torch.equal(r2, x[i2])


def test_the_cache_stays_in_host_memory_on_a_cpu():
    """Catches: a CPU run copying the memory-mapped cache into process memory (4,000 paintings: 0.8 GB)."""
    images = cache(2)
    assert a4a.on_device_if_it_fits(images, torch.device("cpu"), "train") is images


@pytest.mark.parametrize("augment", [False, True])
def test_the_batch_is_prepared_on_the_device_asked_for(augment):
    """Catches (mutmut survivors): `device` ignored (the batch left where the images are, on the CPU), or the
    gather's index tensors built on the CPU while the images are on the GPU. PyTorch's "meta" device stands in for a
    GPU here: like cuda it is not the CPU, so the gather path runs, and mixing devices fails as it does on cuda."""
    g = torch.Generator().manual_seed(0) if augment else None
    x = a4a.to_input(cache(2), MEAN, STD, augment, g, device="meta")
    assert x.device.type == "meta" and x.shape == (2, 3, a4a.CROP, a4a.CROP)
    assert x.is_contiguous(memory_format=torch.channels_last)


class FakeImages:
    """Stands in for the uint8 cache on a machine without a GPU: its size, and where it was moved to."""

    def __init__(self, n_bytes):
        self.n_bytes, self.moved_to = n_bytes, None

    def numel(self):
        return self.n_bytes

    def to(self, device):
        self.moved_to = device
        return self


@pytest.mark.parametrize("free,moved", [(2000, True), (1998, False), (4000, True)])
def test_the_cache_moves_to_the_gpu_only_within_its_share_of_the_free_memory(monkeypatch, free, moved):
    """Catches: the share ignored (the cache moved whatever the free memory, or compared with all of it), so that a
    large dataset fills the GPU and the first training step runs out of memory. 1000 bytes of images fit in
    DEVICE_CACHE_SHARE (0.5) of 2000 free bytes, not of 1998."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 10 * free))
    images = FakeImages(1000)
    out = a4a.on_device_if_it_fits(images, torch.device("cuda"), "train")
    assert out is images and (images.moved_to == torch.device("cuda")) == moved
