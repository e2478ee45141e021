"""Tests of sdk.training.models: every registered model (forward, backward, ONNX parity) and the blocks."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from runtime.errors import ConfigError, InputError
from sdk.training.models import create_model, get_entry, list_models, register_model
from sdk.training.models.cbam import CBAM
from sdk.training.models.registry import ModelEntry

torch.set_num_threads(2)


def _box_mask(batch: int, height: int, width: int) -> torch.Tensor:
    """1 on a centred box covering a quarter of the image (the occluded part), 0 elsewhere."""
    mask = torch.zeros(batch, 1, height, width)
    mask[:, :, height // 4 : height // 4 + height // 2, width // 4 : width // 4 + width // 2] = 1.0
    return mask


def _inputs(entry: ModelEntry, model: torch.nn.Module, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    """The example inputs of a registry entry: one tensor, plus a mask for inpainters that take one."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *entry.default_input, generator=gen)
    if entry.kind == "inpainter":
        x = x.clamp(-1.0, 1.0)
        if getattr(model, "use_mask", False) or getattr(model, "blend", False):
            return x, _box_mask(batch, x.shape[2], x.shape[3])
    return (x,)


def _as_tuple(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _num_classes(entry: ModelEntry, model: torch.nn.Module) -> int:
    return int(entry.default_kwargs.get("num_classes", getattr(model, "num_classes", 7)))


def _check_shapes(
    entry: ModelEntry, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], outs: tuple[torch.Tensor, ...]
) -> None:
    n = inputs[0].shape[0]
    shapes = [tuple(o.shape) for o in outs]
    if entry.kind == "classifier":
        assert shapes == [(n, _num_classes(entry, model))]
    elif entry.kind == "discriminator":
        assert shapes == [(n, 1), (n, _num_classes(entry, model))]
    elif entry.kind == "feature_discriminator":
        assert shapes == [(n, 1)]
    elif entry.kind == "inpainter":
        assert shapes == [tuple(inputs[0].shape)]
    elif entry.kind == "decoder":
        assert len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][0] == n
        if entry.default_kwargs.get("out_size") is not None:
            assert shapes[0][2:] == tuple(entry.default_kwargs["out_size"])
    else:
        pytest.fail(f"test_models does not know the output shapes of kind {entry.kind!r}; add them")


@pytest.mark.parametrize("name", list_models())
def test_registered_model_forward_backward_onnx(name: str, tmp_path) -> None:
    entry = get_entry(name)
    torch.manual_seed(0)
    model = create_model(name)

    # forward (train mode) and backward: every trainable parameter gets a finite, non-zero gradient
    model.train()
    inputs = _inputs(entry, model, 2, seed=1)
    outs = _as_tuple(model(*inputs))
    _check_shapes(entry, model, inputs, outs)
    gen = torch.Generator().manual_seed(2)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs)
    loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}.{pname} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"
            assert p.grad.abs().sum() > 0, f"{name}.{pname} has an all-zero gradient"

    model.eval()
    if entry.kind == "classifier":  # the mid-level map the privileged method's feature discriminator uses
        with torch.no_grad():
            feats = model.features(inputs[0])
        assert feats.dim() == 4 and feats.shape[0] == 2
        if hasattr(model, "feature_channels"):
            assert feats.shape[1] == model.feature_channels

    # ONNX export (batch dynamic) and parity with ONNX Runtime on a batch of 3
    in_names = (
        ["image", "mask"][: len(inputs)] if entry.kind == "inpainter" else [f"input{i}" for i in range(len(inputs))]
    )
    out_names = [f"output{i}" for i in range(len(outs))]
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        model,
        inputs,
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=in_names,
        output_names=out_names,
        dynamic_axes={k: {0: "batch"} for k in in_names + out_names},
    )
    test_inputs = _inputs(entry, model, 3, seed=3)
    with torch.no_grad():
        expected = _as_tuple(model(*test_inputs))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(out_names, {k: v.numpy() for k, v in zip(in_names, test_inputs, strict=True)})
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == tuple(e.shape)
        assert np.abs(g - e.numpy()).max() < 1e-4


@pytest.mark.parametrize("name", list_models("classifier"))
@pytest.mark.parametrize("size", [(32, 32), (48, 40), (96, 96)])
def test_classifier_options_and_sizes(name: str, size: tuple[int, int]) -> None:
    model = create_model(name, num_classes=5, in_channels=1).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, *size))
    assert out.shape == (1, 5) and torch.isfinite(out).all()


def test_unknown_model_error_lists_registered_names() -> None:
    with pytest.raises(KeyError) as err:
        create_model("resnet-does-not-exist")
    for name in list_models():
        assert name in str(err.value)


def test_duplicate_registration_is_rejected_and_keeps_the_original() -> None:
    original = get_entry("resnet18")
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet18")(lambda **kw: None)
    assert get_entry("resnet18") is original


def test_kinds_listed() -> None:
    assert {"resnet18", "resnet18_cbam", "vgg_f", "vgg_face"} <= set(list_models("classifier"))
    assert list_models("inpainter") == ["inpainter"]
    assert "gan_discriminator" in list_models("discriminator")
    assert "feature_discriminator" in list_models("feature_discriminator")
    assert "reconstruction_decoder" in list_models("decoder")


def test_cbam_attention_maps_are_gates_and_change_features() -> None:
    torch.manual_seed(0)
    cbam = CBAM(32)
    x = torch.randn(2, 32, 12, 10)
    channel_map = cbam.channel.attention_map(x)
    refined = x * channel_map
    spatial_map = cbam.spatial.attention_map(refined)
    assert channel_map.shape == (2, 32, 1, 1) and spatial_map.shape == (2, 1, 12, 10)
    for m in (channel_map, spatial_map):
        assert (m > 0).all() and (m < 1).all()
        assert m.std() > 0  # not a constant gate
    out = cbam(x)
    assert torch.allclose(out, refined * spatial_map)
    assert not torch.allclose(out, x, atol=1e-3)


def test_resnet18_cbam_has_cbam_after_every_residual_block() -> None:
    torch.manual_seed(0)
    plain, cbam = create_model("resnet18", width=16), create_model("resnet18_cbam", width=16)
    assert sum(isinstance(m, CBAM) for m in plain.modules()) == 0
    blocks = [b for stage in cbam.stages for b in stage]
    assert len(blocks) == 8 and all(isinstance(b.attention, CBAM) for b in blocks)
    block = blocks[0].eval()
    x = torch.randn(2, 16, 16, 16)
    with torch.no_grad():
        residual_out = block.act(block.conv2(block.conv1(x)) + block.shortcut(x))
        out = block(x)
    assert torch.allclose(out, block.attention(residual_out))
    assert not torch.allclose(out, residual_out, atol=1e-3)


@pytest.mark.parametrize("size", [(37, 50), (33, 33), (64, 48)])
def test_inpainter_any_size_and_blend_keeps_visible_pixels(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = create_model("inpainter", width=8).eval()
    image = torch.rand(2, 3, *size) * 2 - 1
    mask = _box_mask(2, *size)
    with torch.no_grad():
        out = model(image, mask)
    assert out.shape == image.shape
    visible = mask.expand_as(image) == 0
    assert torch.equal(out[visible], image[visible])
    assert not torch.allclose(out[~visible], image[~visible])


def test_inpainter_without_blend_generates_everywhere_and_in_range() -> None:
    torch.manual_seed(0)
    model = create_model("inpainter", width=8, blend=False).eval()
    image = torch.rand(1, 3, 35, 41) * 2 - 1
    with torch.no_grad():
        out = model(image, _box_mask(1, 35, 41))
    assert out.shape == image.shape and out.abs().max() <= 1.0
    assert not torch.equal(out, image)


def test_inpainter_mask_rules() -> None:
    with_mask = create_model("inpainter", width=8).eval()
    with pytest.raises(InputError, match="use_mask=True"):
        with_mask(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputError, match="does not match"):
        with_mask(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 16, 32))
    no_mask = create_model("inpainter", width=8, use_mask=False).eval()
    image = torch.rand(1, 3, 40, 40)
    mask = _box_mask(1, 40, 40)
    with torch.no_grad():
        assert no_mask(image).shape == image.shape
        blended = no_mask(image, mask)  # the mask is not an input channel, but blending still applies
    assert torch.equal(blended[mask.expand_as(image) == 0], image[mask.expand_as(image) == 0])


def test_inpainter_onnx_at_odd_size(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("inpainter", width=8).eval()
    image, mask = torch.rand(2, 3, 37, 50) * 2 - 1, _box_mask(2, 37, 50)
    path = str(tmp_path / "inp.onnx")
    torch.onnx.export(
        model,
        (image, mask),
        path,
        dynamo=False,
        opset_version=17,
        input_names=["image", "mask"],
        output_names=["out"],
        dynamic_axes={"image": {0: "n"}, "mask": {0: "n"}, "out": {0: "n"}},
    )
    image3, mask3 = torch.rand(3, 3, 37, 50) * 2 - 1, _box_mask(3, 37, 50)
    got = ort.InferenceSession(path).run(None, {"image": image3.numpy(), "mask": mask3.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - model(image3, mask3).numpy()).max() < 1e-4


@pytest.mark.parametrize("name", ["resnet18", "resnet18_cbam", "vgg_f", "vgg_face"])
def test_privileged_wiring_features_to_discriminator_and_decoder(name: str) -> None:
    torch.manual_seed(0)
    width = {"resnet18": 16, "resnet18_cbam": 16}.get(name)
    student = create_model(name, **({"width": width} if width else {})).eval()
    x = torch.randn(2, 3, 50, 50)
    with torch.no_grad():
        feats = student.features(x)
        assert torch.allclose(student.classify_features(feats), student(x), atol=1e-5)
    assert feats.shape[1] == student.feature_channels
    assert feats.shape[2] in (50 // student.feature_stride, -(-50 // student.feature_stride))  # floor or ceil
    disc = create_model("feature_discriminator", in_channels=student.feature_channels)
    decoder = create_model(
        "reconstruction_decoder",
        in_channels=student.feature_channels,
        upsample=student.feature_stride,
        out_size=(50, 50),
    )
    assert disc(feats).shape == (2, 1)
    assert decoder(feats).shape == (2, 3, 50, 50)


def test_gan_discriminator_as_classifier_shares_weights() -> None:
    torch.manual_seed(0)
    disc = create_model("gan_discriminator", width=16).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        _, expr = disc(x)
        assert torch.equal(disc.as_classifier()(x), expr)


@pytest.mark.parametrize("size,depth", [(48, 4), (64, 4), (48, 3), (50, 2), (16, 4)])
def test_discriminator_grid_is_the_size_of_the_last_map(size: int, depth: int) -> None:
    from sdk.training.models.discriminators import discriminator_grid

    grid = discriminator_grid(size, depth)
    disc = create_model("gan_discriminator", width=4, depth=depth, head_grid=grid, in_channels=1)
    assert disc.features(torch.zeros(2, 1, size, size)).shape[-2:] == (grid, grid)
    assert disc.expression[-1].in_features == disc.real_fake.in_features * grid * grid
    with pytest.raises(ConfigError, match="head_grid"):
        create_model("gan_discriminator", head_grid=0)


@pytest.mark.parametrize("name", ["resnet18", "resnet18_cbam", "vgg_f", "vgg_face", "gan_discriminator"])
def test_wrong_input_gives_input_error(name: str) -> None:
    model = create_model(name).eval()
    with pytest.raises(InputError, match="shape"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(InputError, match="smaller"):
        model(torch.zeros(1, 3, 8, 8))


def test_bad_options_give_config_error() -> None:
    with pytest.raises(ConfigError, match="stem"):
        create_model("resnet18", stem="5x5")
    with pytest.raises(ConfigError, match="upsample"):
        create_model("reconstruction_decoder", upsample=3)
    with pytest.raises(ConfigError, match="output"):
        create_model("inpainter", output="relu")
