"""Models: masking, the encoder interface, the hierarchy-coherent loss and L_MIM's masking.

Everything runs on the CPU with the ``echocare-tiny`` preset at 64 px, so the file takes a
few seconds.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from echocare_lib.models import (
    EchoCareEncoder,
    EchoCarePretrainer,
    EncoderConfig,
    Hierarchy,
    ancestor_matrix_from_parents,
    get_preset,
    mim_loss,
    pixel_mask,
    random_mask,
    to_grayscale,
)
from echocare_lib.ontology import load_ontology

ONTO = load_ontology()
TINY = get_preset("echocare-tiny")
S = TINY.image_size          # 64
P = TINY.mask_patch_size     # 8


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors on 2 shared cores: intra-op threads only spin and wait (5x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rand_images(b, c=1, size=S, seed=0):
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(seed))


def _model(decoder="simmim", variant="echocare", seed=0):
    torch.manual_seed(seed)
    return EchoCarePretrainer("echocare-tiny", variant=variant, decoder=decoder,
                              ancestors=ONTO.ancestor_matrix()).eval()


# ------------------------------------------------------------------------------ masking
@pytest.mark.parametrize("image_size,unit", [(64, 8), (256, 8), (32, 4), (64, 16), (48, 8)])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9])
def test_random_mask_masks_exactly_round_ratio_units(image_size, unit, ratio):
    side = image_size // unit
    units = side * side
    g = torch.Generator().manual_seed(123)
    m = random_mask(5, image_size, unit, ratio, generator=g)
    assert m.shape == (5, side, side)
    assert m.dtype == torch.float32
    assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
    expected = int(round(ratio * units))
    assert m.sum(dim=(1, 2)).tolist() == [float(expected)] * 5


def test_random_mask_reproducible_and_random():
    a = random_mask(8, 64, 8, 0.5, generator=torch.Generator().manual_seed(7))
    b = random_mask(8, 64, 8, 0.5, generator=torch.Generator().manual_seed(7))
    c = random_mask(8, 64, 8, 0.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Images of one batch get different masks, and over many draws every unit gets masked
    # sometimes and unmasked sometimes (the choice is not a fixed pattern).
    assert len({tuple(r.flatten().tolist()) for r in a}) == 8
    many = random_mask(400, 64, 8, 0.5, generator=torch.Generator().manual_seed(0))
    freq = many.mean(0)
    assert bool((freq > 0.3).all()) and bool((freq < 0.7).all())


def test_random_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mask_ratio"):
        random_mask(1, 64, 8, 1.0)
    with pytest.raises(ValueError, match="mask_ratio"):
        random_mask(1, 64, 8, -0.1)
    with pytest.raises(ValueError, match="multiple"):
        random_mask(1, 60, 8, 0.5)


@pytest.mark.parametrize("unit,side", [(8, 8), (4, 3), (16, 2)])
def test_pixel_mask_upsamples_units_to_pixels(unit, side):
    m = random_mask(3, unit * side, unit, 0.5, generator=torch.Generator().manual_seed(1))
    pm = pixel_mask(m, unit)
    assert pm.shape == (3, 1, unit * side, unit * side)
    ys = torch.arange(unit * side) // unit
    expected = m[:, ys][:, :, ys]  # pixel (y, x) belongs to unit (y // unit, x // unit)
    assert torch.equal(pm[:, 0], expected)
    assert torch.equal(pm.sum(dim=(1, 2, 3)), m.sum(dim=(1, 2)) * unit * unit)


# ------------------------------------------------------------------------------ hierarchy
def _brute_ancestors(parent):
    n = len(parent)
    A = np.zeros((n, n), dtype=bool)
    for i in range(n):
        j = i
        while j >= 0:
            A[i, j] = True
            j = parent[j]
    return A


@st.composite
def random_trees(draw, max_nodes=12):
    """A random forest as a parent array, nodes in random order (parents need not precede)."""
    n = draw(st.integers(1, max_nodes))
    topo_parent = [-1] + [draw(st.integers(-1, i - 1)) for i in range(1, n)]
    perm = draw(st.permutations(range(n)))  # new position of the node topo-numbered k
    parent = [0] * n
    for k, p in enumerate(topo_parent):
        parent[perm[k]] = -1 if p < 0 else perm[p]
    return parent


_F32_MAX = float(torch.finfo(torch.float32).max)
_LOGIT = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 2.5]),  # ties
    st.floats(-20, 20, width=32),
    st.floats(-1e30, 1e30),                    # large magnitudes (sigmoid saturates)
    st.sampled_from([_F32_MAX, -_F32_MAX]),    # the extremes of float32
)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_hierarchy_is_coherent_on_random_trees(data):
    parent = data.draw(random_trees())
    n = len(parent)
    A = ancestor_matrix_from_parents(parent)
    assert np.array_equal(A, _brute_ancestors(parent))
    b = data.draw(st.integers(1, 3))
    z = torch.tensor(data.draw(st.lists(_LOGIT, min_size=b * n, max_size=b * n)),
                     dtype=torch.float32).view(b, n)
    h = Hierarchy(A)
    pos, neg = h.positive_logits(z), h.negative_logits(z)
    assert bool((pos <= z).all()) and bool((z <= neg).all())
    # positive logit = min over ancestors-or-self, negative = max over descendants-or-self
    for i in range(n):
        assert torch.equal(pos[:, i], z[:, A[i]].amin(1))
        assert torch.equal(neg[:, i], z[:, A[:, i]].amax(1))
    p = h.probabilities(z)
    assert bool(((p >= 0) & (p <= 1)).all())
    for i, pi in enumerate(parent):
        if pi >= 0:
            assert bool((p[:, i] <= p[:, pi]).all()), (parent, z, p)


def test_hierarchy_coherence_is_bitwise_across_tensor_positions():
    # Regression (found by the property test above): CPU sigmoid kernels round the same value
    # differently by 1 ulp in the vector body and the scalar tail of a tensor, so
    # sigmoid(min over ancestors) put a child 1 ulp above its parent. A star: root 0 with
    # logit 0.99999, 32 children with logit 1.0, so every child's coherent logit is the root's.
    n = 33
    h = Hierarchy(ancestor_matrix_from_parents([-1] + [0] * (n - 1)))
    z = torch.ones(3, n)
    z[:, 0] = 0.99999
    p = h.probabilities(z)
    assert bool((p[:, 1:] <= p[:, :1]).all())
    assert torch.allclose(p, torch.sigmoid(torch.tensor(0.99999)).expand(3, n))


def test_ancestor_matrix_from_parents_matches_ontology_and_rejects_cycles():
    assert np.array_equal(ancestor_matrix_from_parents(ONTO.parent_index), ONTO.ancestor_matrix())
    with pytest.raises(ValueError, match="cycle"):
        ancestor_matrix_from_parents([1, 2, 0])
    with pytest.raises(ValueError, match="square"):
        Hierarchy(np.zeros((3, 3), dtype=bool))  # diagonal must be True


@pytest.mark.parametrize("scale", [1.0, 10.0, 1e4])
def test_hierarchy_probabilities_coherent_on_the_real_ontology(scale):
    g = torch.Generator().manual_seed(int(scale))
    z = torch.randn(64, len(ONTO), generator=g) * scale
    h = Hierarchy.from_ontology(ONTO)
    raw = torch.sigmoid(z).numpy()
    assert not ONTO.is_coherent(raw)             # plain sigmoids are not (test is not vacuous)
    p = h.probabilities(z).numpy()
    assert ONTO.is_coherent(p, tol=0.0)
    # The classifier head of the pretrainer gives coherent probabilities too.
    m = _model()
    with torch.no_grad():
        logits = m.classifier(torch.randn(4, m.encoder.pooled_dim, generator=g) * scale)
    assert ONTO.is_coherent(m.classifier.hierarchy.probabilities(logits).numpy(), tol=0.0)


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_hierarchy_loss_matches_hand_computation():
    # Tree: 0 is the root, 1 and 2 its children, 3 a child of 1.
    h = Hierarchy(ancestor_matrix_from_parents([-1, 0, 0, 1]))
    z = torch.tensor([[2.0, -1.0, 0.5, 3.0],
                      [0.3, -2.0, 1.5, 0.7]])
    y = torch.tensor([[1.0, 1.0, 0.0, 1.0],    # path 0 -> 1 -> 3
                      [1.0, 0.0, 1.0, 0.0]])   # path 0 -> 2

    def pos(v):   # -log sigmoid(v)
        return -math.log(_sig(v))

    def neg(v):   # -log(1 - sigmoid(v))
        return -math.log(1.0 - _sig(v))

    # image 0: class 0 positive, min(z0) = 2.0; class 1 positive, min(z1, z0) = -1.0;
    # class 2 negative, max(z2) = 0.5; class 3 positive, min(z3, z1, z0) = -1.0
    row0 = [pos(2.0), pos(-1.0), neg(0.5), pos(-1.0)]
    # image 1: class 0 positive, 0.3; class 1 negative, max(z1, z3) = max(-2.0, 0.7) = 0.7;
    # class 2 positive, min(z2, z0) = min(1.5, 0.3) = 0.3; class 3 negative, max(z3) = 0.7
    row1 = [pos(0.3), neg(0.7), pos(0.3), neg(0.7)]
    total = sum(row0) + sum(row1)
    assert float(h.loss(z, y, reduction="sum")) == pytest.approx(total, rel=1e-6)
    assert float(h.loss(z, y)) == pytest.approx(total / 8, rel=1e-6)
    assert float(h.loss(z, y, reduction="mean")) == pytest.approx(total / 8, rel=1e-6)

    # A label mask hiding the deepest level (class 3) for every image ([N], broadcast) ...
    hide3 = torch.tensor([True, True, True, False])
    kept = sum(row0[:3]) + sum(row1[:3])
    assert float(h.loss(z, y, hide3, reduction="sum")) == pytest.approx(kept, rel=1e-6)
    assert float(h.loss(z, y, hide3)) == pytest.approx(kept / 6, rel=1e-6)
    # ... and a per-image mask: image 1 only labelled at the root level.
    per = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    kept = sum(row0) + row1[0]
    assert float(h.loss(z, y, per, reduction="sum")) == pytest.approx(kept, rel=1e-6)
    assert float(h.loss(z, y, per)) == pytest.approx(kept / 5, rel=1e-6)
    # Nothing labelled: zero, not NaN.
    assert float(h.loss(z, y, torch.zeros(4, dtype=torch.bool))) == 0.0
    with pytest.raises(ValueError, match="reduction"):
        h.loss(z, y, reduction="max")


def test_hierarchy_loss_is_stable_for_huge_logits():
    h = Hierarchy(ancestor_matrix_from_parents([-1, 0, 0, 1]))
    z = torch.tensor([[1e4, -1e4, 1e4, -1e4]], requires_grad=True)
    y = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    loss = h.loss(z, y, reduction="sum")
    loss.backward()
    # classes 1 and 3 score -1e4 (positive) and class 2 scores 1e4 (negative): 3e4 in total.
    assert loss.item() == pytest.approx(3e4, rel=1e-6)
    assert bool(torch.isfinite(z.grad).all())


# ------------------------------------------------------------------------------ L_MIM
def test_mim_loss_only_sees_masked_pixels():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 1, S, S, generator=g)
    target = torch.rand(3, 1, S, S, generator=g)
    pm = pixel_mask(random_mask(3, S, P, 0.5, generator=g), P)
    keep = pm.bool()
    expected = (pred - target).abs()[keep].mean()
    loss = mim_loss(pred, target, pm)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    # Any change of pred (or target) at unmasked pixels changes nothing.
    noise = torch.rand(3, 1, S, S, generator=g) * 100
    assert torch.equal(mim_loss(torch.where(keep, pred, noise), target, pm), loss)
    assert torch.equal(mim_loss(pred, torch.where(keep, target, noise), pm), loss)
    # ... while a change at masked pixels does.
    assert not torch.equal(mim_loss(torch.where(keep, noise, pred), target, pm), loss)
    # Gradient: exactly zero at unmasked pixels, +-1/n_masked at masked ones.
    p = pred.clone().requires_grad_(True)
    mim_loss(p, target, pm).backward()
    assert bool((p.grad[~keep] == 0).all())
    assert torch.allclose(p.grad[keep].abs(), torch.full_like(p.grad[keep], 1.0 / keep.sum()))
    # No masked pixel: loss 0 (not NaN).
    assert float(mim_loss(pred, target, torch.zeros_like(pm))) == 0.0


@pytest.mark.parametrize("decoder", ["simmim", "unetr"])
def test_masked_pixels_cannot_reach_the_model(decoder):
    """Changing pixels inside masked units leaves features, reconstruction and logits
    bitwise unchanged (no skip connection carries masked pixels); changing unmasked pixels
    changes them."""
    m = _model(decoder)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, S, S, generator=g)
    mask = random_mask(2, S, P, 0.5, generator=g)
    keep = pixel_mask(mask, P).bool()
    other = torch.rand(2, 1, S, S, generator=g)
    n_lab = len(ONTO)
    y = torch.from_numpy(np.stack([ONTO.encode(ONTO.ids[-1]), ONTO.encode(ONTO.ids[0])]))
    ym = torch.ones(2, n_lab, dtype=torch.bool)
    with torch.no_grad():
        ref = m(x, mask, y, ym)
        in_masked = m(torch.where(keep, other, x), mask, y, ym)
        in_unmasked = m(torch.where(keep, x, other), mask, y, ym)
    assert ref.reconstruction.shape == (2, 1, S, S)
    assert ref.logits.shape == (2, n_lab)
    for a, b in zip(ref.encoded.features, in_masked.encoded.features):
        assert torch.equal(a, b)
    assert torch.equal(ref.encoded.pooled, in_masked.encoded.pooled)
    assert torch.equal(ref.reconstruction, in_masked.reconstruction)
    assert torch.equal(ref.logits, in_masked.logits)
    assert torch.equal(ref.hie, in_masked.hie)
    assert not torch.equal(ref.mim, in_masked.mim)  # the target did change
    for a, b in zip(ref.encoded.features, in_unmasked.encoded.features):
        assert not torch.equal(a, b)
    assert not torch.equal(ref.reconstruction, in_unmasked.reconstruction)
    assert not torch.equal(ref.logits, in_unmasked.logits)
    # Without a mask token the masked pixels would matter: the mask is really applied.
    with torch.no_grad():
        plain = m.encoder(x)
    assert not torch.equal(plain.pooled, ref.encoded.pooled)
    # L_PRE = L_MIM + L_HIE, the reconstruction a grayscale value in [0, 1].
    assert float(ref.loss) == pytest.approx(float(ref.mim + ref.hie), rel=1e-6)
    assert 0.0 <= float(ref.reconstruction.min()) and float(ref.reconstruction.max()) <= 1.0


def test_pretrainer_variants():
    x = _rand_images(2)
    mask = random_mask(2, S, P, 0.5, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(2, len(ONTO))
    ym = torch.ones(2, len(ONTO), dtype=torch.bool)
    mim = _model(variant="mim-only")
    assert mim.classifier is None
    with torch.no_grad():
        out = mim(x, mask)
    assert out.hie is None and out.logits is None and torch.equal(out.loss, out.mim)
    hie = _model(variant="hie-only")
    assert hie.decoder is None
    with torch.no_grad():
        out = hie(x, None, y, ym)
        # hie-only ignores a mask: the encoder sees the whole image.
        assert torch.equal(hie(x, mask, y, ym).logits, out.logits)
    assert out.mim is None and out.reconstruction is None and torch.equal(out.loss, out.hie)
    with pytest.raises(ValueError, match="mask"):
        _model()(x, None, y, ym)
    with pytest.raises(ValueError, match="hierarchy"):
        _model()(x, mask)
    with pytest.raises(ValueError, match="ancestor"):
        EchoCarePretrainer("echocare-tiny")
    with pytest.raises(ValueError, match="variant"):
        EchoCarePretrainer("echocare-tiny", variant="nope", ancestors=ONTO.ancestor_matrix())
    with pytest.raises(ValueError, match="decoder"):
        EchoCarePretrainer("echocare-tiny", decoder="nope", ancestors=ONTO.ancestor_matrix())


# ------------------------------------------------------------------------------ encoder
@pytest.mark.parametrize("chans", [1, 3])
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_interface(chans, masked):
    torch.manual_seed(0)
    enc = EchoCareEncoder("echocare-tiny").eval()
    assert enc.stage_channels == (32, 64, 128, 256)
    assert enc.config.stage_strides == (4, 8, 16, 32)
    x = _rand_images(2, chans)
    mask = random_mask(2, S, P, 0.5, generator=torch.Generator().manual_seed(0)) if masked else None
    with torch.no_grad():
        out = enc(x, mask)
    assert len(out.features) == 4
    for f, c, s in zip(out.features, enc.stage_channels, enc.config.stage_strides):
        assert f.shape == (2, c, S // s, S // s)  # NCHW
        assert f.is_contiguous()
        assert bool(torch.isfinite(f).all())
    assert out.pooled.shape == (2, enc.pooled_dim) == (2, 256)
    assert torch.allclose(out.pooled, out.features[-1].mean(dim=(2, 3)))


def test_encoder_three_channels_are_luminance():
    torch.manual_seed(0)
    enc = EchoCareEncoder("echocare-tiny").eval()
    rgb = _rand_images(2, 3)
    gray = to_grayscale(rgb)
    expected = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    assert torch.allclose(gray, expected, atol=1e-6)
    with torch.no_grad():
        a, b = enc(rgb), enc(gray)
    for fa, fb in zip(a.features, b.features):
        assert torch.allclose(fa, fb, atol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        enc(_rand_images(1, 2))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        enc(torch.rand(1, S, S))


def test_encoder_rejects_mismatched_mask_grid():
    enc = EchoCareEncoder("echocare-tiny").eval()
    x = _rand_images(1)
    bad = random_mask(1, 32, 8, 0.5)  # 4 x 4 units for a 64-px image that has 8 x 8
    with pytest.raises(ValueError, match=r"mask grid \(4, 4\).*expected 8 x 8"):
        enc(x, bad)


def test_encoder_config_round_trip_and_presets():
    for name in ("echocare-tiny", "echocare-small", "echocare-base", "echocare-large"):
        cfg = get_preset(name)
        assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
        assert cfg.stage_strides == (4, 8, 16, 32)
        assert cfg.mask_patch_size == 2 * cfg.patch_size  # a unit = 2 x 2 model tokens
    assert get_preset("echocare-base").image_size == 256
    assert get_preset("echocare-base").window_size == 8
    with pytest.raises(ValueError, match="Unknown encoder preset"):
        get_preset("swin-huge")
    with pytest.raises(ValueError, match="unknown field"):
        EncoderConfig.from_dict({**TINY.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="divisible"):
        EchoCareEncoder(TINY.replace(image_size=48))
    with pytest.raises(ValueError, match="multiple"):
        EchoCareEncoder(TINY.replace(mask_patch_size=6))


def test_classifier_starts_at_the_label_prior_of_each_level():
    """The bias starts at logit(1/n) for a level of n classes (no pull towards a constant
    feature; see hierarchy.prior_logits): on a zero feature the classifier predicts about one
    region, one meta-object type and one anatomical type per image."""
    from echocare_lib.models.hierarchy import HierarchicalClassifier

    head = HierarchicalClassifier(16, ONTO.ancestor_matrix())
    raw = torch.sigmoid(head(torch.zeros(1, 16)))[0]
    for level in ("region", "meta", "anatomical"):
        sl = ONTO.level_slice(level)
        n = sl.stop - sl.start
        assert torch.allclose(raw[sl], torch.full((n,), 1.0 / n))
        assert raw[sl].sum().item() == pytest.approx(1.0)
