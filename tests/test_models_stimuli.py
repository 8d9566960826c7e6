"""The one pixel rule (every dtype and mode PIL and numpy produce → model input, or a named
refusal) and the stimulus forms ``extract`` accepts (folder, paths, PIL images, arrays)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import brainalign as ba
from brainalign.data.arrays import read_zip_images
from brainalign.data.stimuli import StimulusSet, as_stimulus_set, decode_image, image_array
from brainalign.errors import StimulusError

RNG = np.random.default_rng(0)
RGB8 = RNG.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
GRAY8 = RNG.integers(0, 256, size=(6, 7), dtype=np.uint8)


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 5))


# --- the rule on numpy arrays -------------------------------------------------------------

def test_uint8_uint16_bool_scale_by_their_range():
    np.testing.assert_allclose(image_array(RGB8), RGB8 / 255, atol=1e-7)
    a16 = (GRAY8.astype(np.uint16) * 257)
    np.testing.assert_allclose(image_array(a16)[..., 0], GRAY8 / 255, atol=1e-7)
    b = GRAY8 > 128
    np.testing.assert_array_equal(image_array(b)[..., 0], b.astype(np.float32))


def test_layouts_gray_alpha_rgba_and_channels_first():
    ref = image_array(RGB8)
    assert image_array(GRAY8).shape == (6, 7, 1)
    np.testing.assert_array_equal(image_array(GRAY8[..., None]), image_array(GRAY8))
    np.testing.assert_array_equal(image_array(np.moveaxis(RGB8, -1, 0)), ref)  # CHW
    np.testing.assert_array_equal(image_array(GRAY8[None]), image_array(GRAY8))  # 1×H×W
    rgba = np.concatenate([RGB8, np.zeros((6, 7, 1), np.uint8)], -1)
    np.testing.assert_array_equal(image_array(rgba), ref)  # alpha ignored, colour kept
    la = np.stack([GRAY8, np.full_like(GRAY8, 7)], -1)  # (H, W, 2): gray + alpha
    np.testing.assert_array_equal(image_array(la), image_array(GRAY8))
    with pytest.raises(StimulusError, match="'s7'.*shape"):
        image_array(np.zeros((6, 7, 5), np.uint8), where="stimulus 's7'")


def test_float_outside_unit_range_is_refused_unless_the_range_is_stated():
    f255 = RGB8.astype(np.float32)
    with pytest.raises(StimulusError, match="'cat'.*outside 0..1.*value_range"):
        image_array(f255, where="stimulus 'cat'")
    np.testing.assert_allclose(image_array(f255, value_range=(0, 255)), RGB8 / 255, atol=1e-6)
    with pytest.raises(StimulusError, match="outside the stated"):
        image_array(f255 * 2, value_range=(0, 255))
    with pytest.raises(StimulusError, match="NaN"):
        image_array(np.full((4, 4), np.nan, np.float32))
    with pytest.raises(StimulusError, match="int64.*value_range"):
        image_array(RGB8.astype(np.int64))
    np.testing.assert_allclose(image_array(RGB8.astype(np.int64), value_range=(0, 255)), RGB8 / 255, atol=1e-6)


# --- the rule on PIL images and decoded files ---------------------------------------------

@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "CMYK", "YCbCr", "1"])
def test_every_8bit_pil_mode_is_read_as_pil_converts_it(mode):
    src = Image.fromarray(RGB8).convert(mode)
    ref = np.asarray(src.convert("RGB")).astype(np.float32) / 255
    out = image_array(src)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, -1)
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_palette_with_transparency_reads_its_colours():
    p = Image.fromarray(RGB8).convert("P")
    p.info["transparency"] = 0
    ref = np.asarray(p.convert("RGBA"))[..., :3] / 255
    np.testing.assert_allclose(decode_image(io.BytesIO(_png(p)), "x") / 255, ref, atol=1e-7)


def test_16bit_png_keeps_its_16_bits():
    a16 = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    arr = decode_image(io.BytesIO(_png(Image.fromarray(a16))), "x")
    assert arr.dtype == np.uint16
    np.testing.assert_allclose(image_array(arr)[..., 0], a16 / 65535, atol=1e-6)


def test_float_and_32bit_int_pil_images():
    f = Image.fromarray((GRAY8 / 255).astype(np.float32), mode="F")
    np.testing.assert_allclose(image_array(f)[..., 0], GRAY8 / 255, atol=1e-6)
    with pytest.raises(StimulusError, match="outside 0..1"):
        image_array(Image.fromarray(GRAY8.astype(np.float32), mode="F"))
    i32 = Image.fromarray(GRAY8.astype(np.int32), mode="I")
    with pytest.raises(StimulusError, match="int32"):
        image_array(i32)
    np.testing.assert_allclose(image_array(i32, value_range=(0, 255))[..., 0], GRAY8 / 255, atol=1e-6)


def test_16bit_png_in_a_stimulus_zip_is_not_white(tmp_path):
    # Before: convert("RGB") clipped 16-bit values at 255: almost every pixel came out white.
    a16 = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        zf.writestr("imgs/a.png", _png(Image.fromarray(a16)))
        zf.writestr("imgs/b.png", _png(Image.fromarray(RGB8)))
    stim = read_zip_images(lambda f: tmp_path / f, name="z", file="s.zip")
    x = image_array(stim.image(0))
    np.testing.assert_allclose(x[..., 0], a16 / 65535, atol=1e-6)
    assert abs(float(x.mean()) - 0.5) < 0.01
    model = ba.wrap(_tiny_net(), "tiny", input_size=16, mean=(0, 0, 0), std=(1, 1, 1))
    t = model.preprocess(stim.image(0))
    np.testing.assert_allclose(t[0].numpy(), torch.nn.functional.interpolate(
        torch.from_numpy(a16 / 65535).float()[None, None], size=(16, 16), mode="bilinear",
        antialias=True, align_corners=False)[0, 0].numpy(), atol=1e-5)
    assert set(StimulusSet.from_zip("z", tmp_path / "s.zip").ids) == {"a", "b"}


# --- stimulus forms ------------------------------------------------------------------------

@pytest.fixture
def images():
    return [RNG.integers(0, 256, size=(20, 24, 3), dtype=np.uint8) for _ in range(4)]


def test_every_form_gives_the_same_activations(tmp_path, images):
    model = ba.wrap(_tiny_net(), "tiny", input_size=16)
    folder = tmp_path / "stims"
    folder.mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"img{i}.png")
    paths = sorted(folder.glob("*.png"))
    stack = np.stack(images)
    forms = {
        "folder": folder, "folder-str": str(folder), "paths": paths,
        "pil": [Image.fromarray(im) for im in images], "arrays": list(images),
        "nhwc-uint8": stack, "nchw-uint8": np.moveaxis(stack, -1, 1),
        "nhwc-float01": stack / 255.0, "nchw-float255": (np.moveaxis(stack, -1, 1).astype(np.float32), (0, 255)),
    }
    ref = ba.extract(model, StimulusSet.from_arrays("s", images), layers=["3"])["3"].values
    for label, form in forms.items():
        value_range = None
        if isinstance(form, tuple):
            form, value_range = form
        stim = as_stimulus_set(form, value_range=value_range)
        acts = ba.extract(model, stim if value_range else form, layers=["3"])["3"]
        np.testing.assert_allclose(acts.values, ref, atol=1e-5, err_msg=label)
        ids = list(acts["stimulus_id"].values)
        expect = [f"img{i}" for i in range(4)] if label in ("folder", "folder-str", "paths") else \
            [f"stim_{i:04d}" for i in range(4)]
        assert ids == expect, label


def test_float_255_array_is_refused_naming_the_stimulus(images):
    arr = np.stack(images).astype(np.float32)
    arr[0] /= 255.0  # the first is in 0..1, the second is not
    with pytest.raises(StimulusError, match="'stim_0001'.*value_range=\\(0, 255\\)"):
        ba.extract(ba.wrap(_tiny_net(), "tiny", input_size=16), arr)


def test_gray_alpha_images_extract_like_gray(images):
    model = ba.wrap(_tiny_net(), "tiny", input_size=16)
    gray = [im[..., 0] for im in images]
    la = [np.stack([g, np.full_like(g, 255)], -1) for g in gray]  # (H, W, 2)
    a = ba.extract(model, la, layers=["3"])["3"].values
    b = ba.extract(model, gray, layers=["3"])["3"].values
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_ambiguous_or_bad_forms_are_named_errors(tmp_path):
    with pytest.raises(StimulusError, match="ambiguous"):
        as_stimulus_set(np.zeros((20, 24, 3), np.uint8))
    with pytest.raises(StimulusError, match="no image files"):
        as_stimulus_set(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(RGB8).save(tmp_path / "a" / "x.png")
    Image.fromarray(RGB8).save(tmp_path / "b" / "x.png")
    with pytest.raises(StimulusError, match="share the id 'x'"):
        as_stimulus_set(tmp_path)
    with pytest.raises(StimulusError, match="cannot use a dict"):
        as_stimulus_set({"a": 1})
    with pytest.raises(StimulusError, match="no such folder"):
        as_stimulus_set(tmp_path / "missing")
    s = as_stimulus_set(np.zeros((5, 8, 8), np.uint8))  # N×H×W gray stack
    assert len(s) == 5 and s.ids[:2] == ("stim_0000", "stim_0001")
    # one C×H×W image (a torchvision transform's output) or three gray images? It was read as three.
    chw = RNG.integers(0, 256, size=(3, 32, 30), dtype=np.uint8)
    with pytest.raises(StimulusError, match=r"ambiguous: one \(C, H, W\) image or 3 grayscale images"):
        as_stimulus_set(chw)
    one = as_stimulus_set(chw, channels="first")
    assert len(one) == 1
    np.testing.assert_array_equal(one.image(0), np.moveaxis(chw, 0, -1) / np.float32(255))
    assert len(as_stimulus_set(np.moveaxis(chw, 0, -1), channels="last")) == 1
    assert len(as_stimulus_set(chw[..., None])) == 3  # the gray stack, said as N×H×W×1
    with pytest.raises(StimulusError, match="For one image say channels='first'"):
        as_stimulus_set(chw)
    with pytest.raises(StimulusError, match="For one image say channels='last'"):
        as_stimulus_set(np.moveaxis(chw, 0, -1))
    assert len(as_stimulus_set(chw[:1])) == 1  # 1×H×W: one gray image either way


def test_a_layout_that_reads_both_ways_is_refused_until_channels_says_which():
    """3×3×3×3 is three 3×3 RGB images channels last or channels first: refused, not guessed;
    ``channels=`` picks, and a stated layout the shape does not have is refused too."""
    arr = RNG.integers(0, 256, size=(3, 3, 3, 3), dtype=np.uint8)
    with pytest.raises(StimulusError, match=r"shape \(3, 3, 3, 3\) is ambiguous.*channels='last'"):
        as_stimulus_set(arr)
    with pytest.raises(StimulusError, match="ambiguous"):
        ba.extract(ba.wrap(nn.Sequential(nn.Flatten()), name="flat", input_size=3), arr)
    first, last = as_stimulus_set(arr, channels="first"), as_stimulus_set(arr, channels="last")
    for i in range(3):
        np.testing.assert_array_equal(first.image(i), np.moveaxis(arr[i], 0, -1) / np.float32(255))
        np.testing.assert_array_equal(last.image(i), arr[i] / np.float32(255))
    # the same for a list of images, naming the stimulus
    with pytest.raises(StimulusError, match="stimulus 'b': shape \\(3, 3, 3\\) is ambiguous"):
        as_stimulus_set([RGB8, arr[0]], ids=["a", "b"])
    both = as_stimulus_set([np.moveaxis(RGB8, -1, 0), arr[0]], channels="first")
    np.testing.assert_array_equal(both.image(0), RGB8 / np.float32(255))
    np.testing.assert_array_equal(both.image(1), np.moveaxis(arr[0], 0, -1) / np.float32(255))
    # unambiguous shapes read as before; a stated layout must be the array's
    nchw = RNG.integers(0, 256, size=(2, 3, 8, 9), dtype=np.uint8)
    np.testing.assert_array_equal(as_stimulus_set(nchw).image(1), np.moveaxis(nchw[1], 0, -1) / np.float32(255))
    np.testing.assert_array_equal(as_stimulus_set(nchw, channels="first").image(1),
                                  as_stimulus_set(nchw).image(1))
    with pytest.raises(StimulusError, match=r"is not N×H×W×C .*channels='last'"):
        as_stimulus_set(nchw, channels="last")
    with pytest.raises(StimulusError, match="expected \\(H, W\\) or \\(H, W, C\\)"):
        as_stimulus_set([np.moveaxis(RGB8, -1, 0)], channels="last").image(0)
    with pytest.raises(StimulusError, match="channels='rgb'"):
        as_stimulus_set(nchw, channels="rgb")


def test_pil_palette_images_in_a_stimulus_set_give_colours_not_indices():
    pal = Image.fromarray(RGB8).convert("P")
    s = StimulusSet.from_arrays("p", [pal])
    np.testing.assert_array_equal(s.image(0), np.asarray(pal.convert("RGB")))


def test_float_255_in_a_stimulus_set_is_refused_at_extraction_and_accepted_with_its_range(images):
    # Before: went into the model unscaled (normalised inputs of 54..1079).
    model = ba.wrap(_tiny_net(), "tiny", input_size=16)
    f255 = StimulusSet.from_arrays("f", [im.astype(np.float64) for im in images])
    with pytest.raises(StimulusError, match="'f/0000'.*outside 0..1.*value_range=\\(0, 255\\)"):
        ba.extract(model, f255)
    ok = ba.extract(model, as_stimulus_set(f255, value_range=(0, 255)), layers=["3"])["3"]
    ref = ba.extract(model, StimulusSet.from_arrays("u", images), layers=["3"])["3"]
    np.testing.assert_allclose(ok.values, ref.values, atol=1e-5)
    assert list(ok["stimulus_id"].values) == [f"f/{i:04d}" for i in range(4)]
