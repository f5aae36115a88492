"""What only a CUDA machine can show (the `gpu` marker: collected everywhere, skipped without CUDA; `make gpu-check`
runs them): maps on CUDA agree with the CPU's as two CPUs' do, a CUDA-trained run goes on and is explained on a
machine without a GPU, and tf32 runs as TF32 where the GPU has it."""
import json

import pytest
import torch

import assignment_4a as a4a
import assignment_4b as a4b
import vgg16
import saliency_extras as ex
from conftest import assert_maps_agree, make_style_dataset, write_image

pytestmark = pytest.mark.gpu


def test_cuda_fp32_maps_agree_with_cpu_fp32_maps(vgg_model):
    """Catches: "fp32" maps on the GPU computed in TF32 (87.6% of pixels within 5%, Spearman 0.90, measured)."""
    import copy
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    vgg16.set_precision("fp32")
    cpu, cpu_cls, _ = a4b.saliency_maps(vgg_model, x)
    gpu_model = copy.deepcopy(vgg_model).cuda().to(memory_format=torch.channels_last)
    gpu, gpu_cls, _ = a4b.saliency_maps(gpu_model, x.cuda())
    assert gpu_cls.cpu().tolist() == cpu_cls.tolist()
    assert_maps_agree(gpu.cpu(), cpu)


def test_tf32_runs_as_tf32_on_a_gpu_that_has_it():
    """Catches: --precision tf32 recorded as fp32 (or fp32 as tf32) on a CUDA device."""
    d = torch.device("cuda")
    expected = "tf32" if torch.cuda.get_device_capability(d)[0] >= 8 else "fp32"
    assert vgg16.precision_that_runs("tf32", d) == expected
    assert vgg16.precision_that_runs("fp32", d) == "fp32"


def test_a_cuda_trained_run_resumes_and_is_explained_on_the_cpu(alexnet_weights, tmp_path):
    """Catches: checkpoints holding CUDA tensors that a machine without a GPU cannot load."""
    data = make_style_dataset(tmp_path / "wikiart", n_train=4, n_val=2)
    common = ["--data", str(data), "--runs", str(tmp_path / "runs"), "--batch-size", "8", "--workers", "1"]
    a4a.main(common + ["--epochs", "1", "--device", "cuda", "--name", "r"])
    run = tmp_path / "runs" / "r"
    a4a.main(["--resume", str(run), "--epochs", "2", "--device", "cpu"])
    assert [e["epoch"] for e in json.load(open(run / "metrics.json"))["epochs"]] == [1, 2]
    (tmp_path / "imgs").mkdir()
    write_image(tmp_path / "imgs" / "a.png", seed=1)
    ex.main(["--images", str(tmp_path / "imgs"), "--checkpoint", str(run / "best.pt"), "--device", "cpu",
             "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "predictions.csv").is_file()
