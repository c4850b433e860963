"""Maps explained on the head equal pytorch-grad-cam's maps on the whole network; the batched
path, the method choice, and no hooks (or memory) left behind."""

from __future__ import annotations

import resource

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from diachestxr import Predictor
from diachestxr.explain import CAM_METHODS, HeadExplainer, cam_class, class_target
from diachestxr.io import read_xray
from diachestxr.models import build_model
from diachestxr.transforms import eval_tensor
from tests.images import chest_like

REAL = {"screening": ["4fed5061.jpg", "00002754_000.jpg"],
        "diagnosis": ["00005610_000.jpg", "00009144_000.jpg"]}


@pytest.fixture(scope="module")
def bundled():
    with Predictor() as predictor:
        yield predictor


def _reference_maps(model, image, labels, method):
    """pytorch-grad-cam as its README shows it: the whole network, one call per class. In
    the Predictor's memory layout (channels_last), so that a max-pool near-tie (activations
    equal within 1e-7) routes HiResCAM's elementwise gradient the same way in both."""
    spec = model.spec
    reference = build_model(spec).to(memory_format=torch.channels_last)
    reference.load_state_dict(model.state_dict())
    x = eval_tensor(read_xray(image), spec).unsqueeze(0).contiguous(memory_format=torch.channels_last)
    with cam_class(method)(model=reference, target_layers=[reference.get_submodule(spec.cam_layer)]) as cam:
        maps = {l: cam(input_tensor=x, targets=[ClassifierOutputTarget(spec.labels.index(l))])[0]
                for l in labels}
        logits = cam.outputs[0].detach()
    return maps, logits.numpy()


@pytest.mark.parametrize("task,method,n_labels", [
    ("screening", "gradcam", 3), ("screening", "gradcam++", 3), ("screening", "xgradcam", 3),
    ("screening", "hirescam", 3), ("screening", "layercam", 3),
    ("diagnosis", "gradcam", 14), ("diagnosis", "gradcam++", 3)])
def test_head_maps_equal_pytorch_grad_cam_on_the_whole_network(bundled, examples_dir, task, method,
                                                                n_labels):
    labels = list(bundled.models[task].spec.labels)[:n_labels]
    paths = [examples_dir / name for name in REAL[task]]
    results = bundled.predict(paths, task, explain=labels, method=method)  # one batch
    for path, result in zip(paths, results):
        maps, logits = _reference_maps(bundled.models[task].model, path, labels, method)
        for label in labels:
            np.testing.assert_allclose(result.explanations[label].cam, maps[label], atol=1e-4,
                                       err_msg=f"{task} {method} {label} {path.name}")
        # the network's outputs (before the checkpoint's temperature, which scales them)
        np.testing.assert_allclose(result.logits, logits, atol=1e-4)


@pytest.mark.parametrize("task", ["screening", "diagnosis"])
def test_the_split_model_is_the_model(task):
    model = build_model(task).eval()
    trunk, head = model.split()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(head(trunk(x)), model(x), rtol=0, atol=0)
        assert trunk(x).shape[-1] == (7 if task == "diagnosis" else 13)  # the Grad-CAM layer


def test_maps_point_at_what_drives_the_output():
    """Logit c is the mean of activation channel c. With channel 0 bright top-left and channel
    1 bright bottom-right, class 0's map lights the top-left and class 1's the bottom-right."""
    linear = torch.nn.Linear(2, 2, bias=False)
    torch.nn.init.eye_(linear.weight)
    head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(1), linear)
    a = torch.zeros(1, 2, 8, 8)
    a[0, 0, :4, :4] = 1.0
    a[0, 1, 4:, 4:] = 1.0
    for method in CAM_METHODS:
        (maps,) = HeadExplainer(head).maps(a, [[class_target(0), class_target(1)]], 32, method)
        assert maps[0][:16, :16].mean() > 0.9 and maps[0][16:, 16:].mean() < 0.1, method
        assert maps[1][16:, 16:].mean() > 0.9 and maps[1][:16, :16].mean() < 0.1, method


def test_batches_give_what_single_images_give(random_predictor):
    images = [chest_like(300, 260, seed=s) for s in range(3)]
    batch = random_predictor.predict(images, "diagnosis", batch_size=2)  # 2 batches
    for image, result in zip(images, batch):
        single = random_predictor.diagnose(image)
        assert result.probabilities == pytest.approx(single.probabilities, abs=1e-5)
        assert list(result.explanations) == list(single.explanations)
        for label, e in single.explanations.items():
            np.testing.assert_allclose(result.explanations[label].cam, e.cam, atol=1e-4)
    probs = random_predictor.probabilities(images, "screening", batch_size=2)
    expected = [random_predictor.screen(im).scores for im in images]
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_the_method_is_a_choice(random_predictor):
    image = chest_like(256, 256, seed=1)
    maps = {m: random_predictor.screen(image, explain=["Normal"], method=m).explanations["Normal"].cam
            for m in CAM_METHODS}
    assert not np.allclose(maps["gradcam"], maps["gradcam++"], atol=1e-3)
    with pytest.raises(ValueError, match="unknown map method 'scorecam'"):
        random_predictor.screen(image, method="scorecam")


def test_large_images_give_display_sized_results(random_predictor):
    image = chest_like(3000, 2400)
    r = random_predictor.screen(image)
    assert r.image.shape == (1024, 819) and r.overlay.shape == (1024, 819, 3)


def test_an_empty_map_draws_the_plain_radiograph():
    """Not the colour map's uniform blue, which would read as a finding of its own."""
    from diachestxr.explain import overlay

    gray = chest_like(64, 80)
    plain = overlay(gray, np.zeros((224, 224), np.float32), alpha=1.0)
    assert (plain == gray[..., None]).all()
    assert not (overlay(gray, np.ones((224, 224), np.float32), alpha=1.0) == gray[..., None]).all()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def test_a_thousand_calls_without_maps_leave_no_hooks_and_no_memory(random_predictor):
    """The old Predictor kept Grad-CAM hooks attached: every explain="none" call stored an
    activation until the next map was drawn (about 200 KB per DenseNet call, 170 KB per
    AlexNet call). AlexNet keeps this test at ~10 s; the path is the same for both."""
    image = chest_like(64, 64)
    model = random_predictor.models["screening"].model
    for _ in range(50):  # warm-up: allocator pools, lazy initialisation
        random_predictor.screen(image, explain="none")
    before = _rss_mb()
    for _ in range(1000):
        random_predictor.screen(image, explain="none")
    grown = _rss_mb() - before
    hooks = [m for m in model.modules()
             if m._forward_hooks or m._backward_hooks or m._forward_pre_hooks]
    assert not hooks
    assert grown < 30, f"RSS grew by {grown:.0f} MB over 1000 calls"
    random_predictor.screen(image, explain="all")  # maps register hooks only inside the call
    assert not [m for m in model.modules() if m._forward_hooks or m._backward_hooks]


def test_central_mass():
    from diachestxr.explain import central_mass

    assert central_mass(np.ones((100, 100))) == pytest.approx(0.64)  # an even map
    border = np.zeros((100, 100))
    border[:5] = 1.0
    assert central_mass(border) == 0.0 and central_mass(np.zeros((10, 10))) is None
