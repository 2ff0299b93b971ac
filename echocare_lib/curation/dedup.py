"""Curation step 4: de-duplication (exact and near-duplicate) at millions of images.

Section 2 of the paper: "preliminary deduplication was performed by comparing download URLs
and computing image hash values for efficiency", and "Following deduplication, 100 potential
duplicate datasets were manually assessed using a predefined similarity threshold
($\\geq 95\\%$), verifying their redundancy." This module gives both halves as code:

* **exact** duplicates: :func:`pixel_hash` (sha256 of the *decoded* pixels, their shape and
  dtype, so a PNG and a BMP of the same pixels match) and :func:`url_hash` (sha256 of a
  normalised download link);
* **near** duplicates: :func:`phash`, a 64-bit DCT perceptual hash (the ``imagehash``
  package) of the grey field-of-view crop from step 2, compared at similarity
  ``1 - hamming / 64 >= 0.95``, i.e. at most :func:`max_bits_for` ``(0.95) == 3`` differing
  bits. The paper states its threshold for the manual check of candidate duplicates; reading
  it as a perceptual-hash similarity is this compendium's interpretation.

:class:`NearDuplicateIndex` finds all pairs within ``max_bits`` without comparing all pairs:
multi-index hashing (Norouzi et al., CVPR 2012). The 64 bits are split into
``max_bits + 1`` disjoint blocks; two hashes that differ in at most ``max_bits`` bits cannot
differ in every block (pigeonhole), so they agree exactly on at least one block. Sorting the
block values (packed with the position into one word, so numpy's fast sort applies) puts
such hashes next to each other; candidate pairs come only from equal runs and are verified
with a popcount of the XOR. With 16-bit
blocks the chance candidates grow as n**2 / 2**17 per block, which dominates past ~10^5
hashes; so for large n the index uses ``max_bits + t`` blocks, of which a near pair shares
at least ``t``, and buckets by every ``t``-subset (:func:`choose_shared_blocks`): longer keys,
almost no chance candidates, near-linear time. Everything is vectorised numpy: 10^6 hashes
take about a second on one core. Identical hashes are collapsed first (blank images all hash
alike), and a bucket larger than ``max_bucket`` is not expanded into its quadratic number of
pairs but reported in :attr:`NearDuplicateIndex.capped_buckets`.

The search is global, not distributed: run the hashing per file on Dask, then gather the
(id, pixel_hash, phash) columns, 8 bytes of pHash per image, and call :func:`deduplicate`.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

__all__ = [
    "pixel_hash", "url_hash", "normalise_url", "phash", "grey_fov", "hamming", "similarity",
    "max_bits_for", "as_uint64", "Pairs", "NearDuplicateIndex", "brute_force_pairs",
    "representatives", "deduplicate", "choose_shared_blocks", "NBITS", "PAPER_SIMILARITY",
]

#: Bits in a perceptual hash (8 x 8 DCT coefficients).
NBITS = 64
#: The paper's near-duplicate threshold (section 2: "a predefined similarity threshold (>= 95%)").
PAPER_SIMILARITY = 0.95
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


# ----------------------------------------------------------------------------- exact hashes
def _as_array(image: Any) -> np.ndarray:
    """Decoded pixels as an array; PIL images are converted (palette images to RGB/RGBA)."""
    if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
        if image.mode in ("P", "PA"):
            image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA"
                                  else "RGB")
        return np.asarray(image)
    arr = np.asarray(image)
    if arr.dtype == object:
        raise TypeError(f"expected an image array or a PIL image, got {type(image).__name__}")
    return arr


def pixel_hash(image: Any) -> str:
    """sha256 (hex) of the decoded pixels, their shape and dtype.

    Two files are exact duplicates when their decoded pixels are equal, whatever the format
    (PNG, BMP, lossless DICOM) or the encoder's choices. Byte order is normalised to
    little-endian, so a big-endian DICOM and its little-endian copy match; shape and dtype are
    part of the hash, so an 8-bit grey image and its RGB expansion do not."""
    arr = _as_array(image)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def normalise_url(url: str) -> str:
    """A download link in canonical form, for comparing links.

    Lower-case scheme and host, default port dropped (80/443/21), trailing slashes of the path
    removed, fragment dropped, surrounding whitespace stripped. The query string and the
    path's case are kept: they can select a different file."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"expected a download link such as 'https://zenodo.org/records/1', "
                         f"got {url!r}")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute link (no scheme or host); write it in "
                         f"full, e.g. 'https://{url.strip().lstrip('/')}'")
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(f"{url!r} has an invalid port: {err}") from None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    if parts.username is not None:
        user = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{user}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


def url_hash(url: str) -> str:
    """sha256 (hex) of :func:`normalise_url` ``(url)``: equal for links to the same download."""
    return hashlib.sha256(normalise_url(url).encode()).hexdigest()


# ----------------------------------------------------------------------------- perceptual hash
def grey_fov(image: Any, *, crop: bool = True, tol: int = 16) -> np.ndarray:
    """The image as grey uint8, optionally trimmed of its dark padding.

    Preprocessing shared by :func:`phash` and documented here:

    1. layout: ``[H, W]``, ``[H, W, C]`` (C = 1, 3, 4) or the project's ``[C, H, W]`` float
       schema (C <= 4 and H, W > 4) are accepted; PIL images too;
    2. grey: RGB(A) to luma with the ITU-R 601 weights (as PIL's ``"L"``), alpha dropped;
    3. 8 bits: uint8 as is; floats in [0, 1] times 255; anything else (uint16 DICOM, other
       float ranges) stretched linearly from its min..max to 0..255;
    4. padding trim (``crop=True``): the box spanned by the pixels brighter than the image's
       minimum plus ``tol`` grey levels. It removes black letterboxing and an export's black
       surround exactly (measured: a 4 % crop of a padded export hashes like the original),
       but where the field of view's own border is dark (fetal, contrast-enhanced images) the
       box moves with gain and JPEG noise and the hash with it (recall at 95 % drops from
       0.91-1.00 to 0.74-0.96 on the simulator's images). :func:`phash` therefore does not
       trim by default: in the pipeline it is given the field of view that step 2
       (``deid.crop_to_fov``) cut out, which is the actual FOV crop."""
    src = _as_array(image)
    arr = src
    if arr.ndim == 3 and arr.shape[0] <= 4 and arr.shape[1] > 4 and arr.shape[2] > 4:
        arr = np.moveaxis(arr, 0, -1)  # [C, H, W] -> [H, W, C]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[..., :3].astype(np.float32)
        arr = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
        if src.dtype == np.uint8:
            arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise ValueError(f"cannot hash an image of shape {src.shape}: expected a 2-D image "
                         f"[H, W], [H, W, C] or [C, H, W] (C in 1, 3, 4) of at least 2 x 2 "
                         f"pixels")
    if arr.dtype == np.uint8:
        g = arr
    else:
        a = arr.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())
        if np.issubdtype(arr.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
            a = a * 255.0
        elif hi > lo:
            a = (a - lo) * (255.0 / (hi - lo))
        else:
            a = np.zeros_like(a)
        g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if crop:
        content = g > int(g.min()) + tol
        r, c = np.flatnonzero(content.any(1)), np.flatnonzero(content.any(0))
        if r.size and r[-1] > r[0] and c[-1] > c[0]:
            g = g[r[0]:r[-1] + 1, c[0]:c[-1] + 1]
    return g


def phash(image: Any, *, crop_fov: bool = False) -> int:
    """64-bit DCT perceptual hash (``imagehash.phash``, 8 x 8) as an int in [0, 2**64).

    Give it the field-of-view crop (curation step 2). The image goes through :func:`grey_fov`
    first (grey, 8 bits; ``crop_fov=True`` also trims dark padding, for images that did not
    go through step 2, at some cost in stability), then ``imagehash`` resizes it to 32 x 32
    (Lanczos), takes the 2-D DCT, keeps the 8 x 8 lowest frequencies and sets a bit where a
    coefficient exceeds their median. Bits are read row-major, most significant first, so
    ``int(str(imagehash.phash(img)), 16)`` gives the same number."""
    import imagehash
    from PIL import Image

    g = grey_fov(image, crop=crop_fov)
    bits = imagehash.phash(Image.fromarray(g), hash_size=8).hash.reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def as_uint64(hashes: Any) -> np.ndarray:
    """Hashes as a uint64 array: accepts ints (including >= 2**63), numpy integers and hex
    strings (``str(imagehash)``)."""
    if isinstance(hashes, np.ndarray) and hashes.dtype == np.uint64:
        return hashes.reshape(-1)
    if isinstance(hashes, np.ndarray) and np.issubdtype(hashes.dtype, np.integer):
        if hashes.size and hashes.min() < 0:
            raise ValueError("hashes must be non-negative 64-bit values")
        return hashes.astype(np.uint64).reshape(-1)
    vals = list(hashes)
    out = np.empty(len(vals), dtype=np.uint64)
    for k, v in enumerate(vals):
        if isinstance(v, str):
            try:
                v = int(v, 16)
            except ValueError:
                raise ValueError(f"hash #{k} {v!r} is not a hexadecimal string") from None
        v = int(v)
        if not 0 <= v < 2 ** 64:
            raise ValueError(f"hash #{k} = {v} is outside 0 .. 2**64 - 1")
        out[k] = v
    return out


def hamming(a: Any, b: Any) -> np.ndarray | int:
    """Number of differing bits between 64-bit hashes (element-wise for arrays)."""
    d = np.bitwise_count(np.bitwise_xor(as_uint64(np.atleast_1d(a)), as_uint64(np.atleast_1d(b))))
    return int(d[0]) if np.ndim(a) == 0 and np.ndim(b) == 0 else d.astype(np.int64)


def similarity(bits: Any, nbits: int = NBITS) -> Any:
    """``1 - hamming / nbits``: 1.0 for equal hashes."""
    return 1.0 - np.asarray(bits, dtype=np.float64) / nbits


_similarity = similarity  # for functions whose keyword argument shadows the name


def max_bits_for(similarity: float = PAPER_SIMILARITY, nbits: int = NBITS) -> int:
    """Largest Hamming distance with ``1 - d / nbits >= similarity``: ``floor((1 - s) * nbits)``.

    The paper's 95 % gives 3 bits of 64 (3.2 rounded down; 4 bits would be 93.75 %)."""
    if not 0.0 <= similarity <= 1.0:
        raise ValueError(f"similarity must be within [0, 1], got {similarity}")
    return int(math.floor((1.0 - similarity) * nbits + 1e-9))


# ----------------------------------------------------------------------------- the index
class Pairs(NamedTuple):
    """Near-duplicate pairs: ``index`` [K, 2] (i < j, rows sorted) into the added hashes, and
    their Hamming ``distance`` [K]."""
    index: np.ndarray
    distance: np.ndarray

    @property
    def similarity(self) -> np.ndarray:
        return similarity(self.distance)


def _blocks(m: int, nbits: int = NBITS) -> list[tuple[int, int]]:
    """(shift, width) of ``m`` disjoint, nearly equal bit blocks, most significant first."""
    widths = [nbits // m + (1 if k < nbits % m else 0) for k in range(m)]
    out, top = [], nbits
    for w in widths:
        top -= w
        out.append((top, w))
    return out


def choose_shared_blocks(n: int, max_bits: int, nbits: int = NBITS) -> int:
    """How many blocks a pair must share, ``t``, for ``n`` distinct hashes (the search cost).

    With ``max_bits + t`` blocks, a pair within ``max_bits`` agrees exactly on at least ``t``
    of them, so bucketing by every ``t``-subset of blocks finds it. ``t = 1`` (the textbook
    ``max_bits + 1`` blocks) sorts n keys ``max_bits + 1`` times but draws about
    ``n**2 / 2**(width + 1)`` chance candidates per block, quadratic once n passes
    ``2**width`` (65,536 for 16-bit blocks). Larger ``t`` sorts more keys, C(max_bits + t, t),
    each ``t`` blocks wide, so chance candidates vanish. The estimate below picks the cheaper
    of t = 1..3 and keeps the search near-linear up to ~10^8 hashes."""
    if max_bits == 0 or n < 2:
        return 1
    best, best_cost = 1, math.inf
    for t in (1, 2, 3):
        m = max_bits + t
        if m > nbits:
            break
        widths = sorted(w for _, w in _blocks(m, nbits))
        bits = sum(widths[:t])
        cost = math.comb(m, t) * (n + n * n / 2.0 ** (bits + 1))
        if cost < best_cost * 0.9:  # prefer fewer keys unless clearly cheaper
            best, best_cost = t, cost
    return best


def _run_pairs(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All position pairs (p < q) inside each run [start, start + length) of a sorted array."""
    if lengths.size == 0:
        e = np.empty(0, np.int64)
        return e, e
    lengths = lengths.astype(np.int64)
    run = np.repeat(np.arange(lengths.size), lengths)
    off = np.arange(run.size, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cnt = lengths[run] - off - 1  # partners after each position in its run
    left = np.repeat(off, cnt)
    base = np.repeat(starts.astype(np.int64)[run], cnt)
    k = np.arange(left.size, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return base + left, base + left + 1 + k


def _chunks(pairs_per_run: np.ndarray, limit: int) -> list[slice]:
    """Consecutive slices of runs with at most ``limit`` pairs each (a run is never split)."""
    if pairs_per_run.size == 0:
        return []
    csum = np.cumsum(pairs_per_run)
    out, lo, done = [], 0, 0
    while lo < pairs_per_run.size:
        hi = int(np.searchsorted(csum, done + limit, side="right"))
        hi = max(hi, lo + 1)
        out.append(slice(lo, hi))
        done = int(csum[hi - 1])
        lo = hi
    return out


def _collapse(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First occurrence of every distinct hash (ascending positions), and each repeat with
    the position of its value's first occurrence. One fast sort when nothing repeats."""
    n = h.size
    s = np.sort(h)
    rep_vals = np.unique(s[1:][s[1:] == s[:-1]])
    if rep_vals.size == 0:
        e = np.empty(0, np.int64)
        return np.arange(n, dtype=np.int64), e, e
    pos = np.minimum(np.searchsorted(rep_vals, h), rep_vals.size - 1)
    sub = np.flatnonzero(rep_vals[pos] == h)  # items whose value repeats
    _, f, inv = np.unique(h[sub], return_index=True, return_inverse=True)
    first = sub[f][inv]
    is_dup = first != sub
    keep = np.ones(n, bool)
    keep[sub[is_dup]] = False
    return np.flatnonzero(keep), sub[is_dup], first[is_dup]


def _mih_pairs(u: np.ndarray, max_bits: int, shared: int, max_bucket: int, chunk_pairs: int
               ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Pairs (a < b) of *distinct* hashes ``u`` within ``max_bits``, by multi-index hashing
    over every ``shared``-subset of ``max_bits + shared`` blocks."""
    found_a, found_b, capped = [], [], []
    n = u.size
    if n < 2:
        e = np.empty(0, np.int64)
        return e, e, capped
    idx_bits = max(1, (n - 1).bit_length())
    blocks = _blocks(max_bits + shared)
    vals = [(u >> np.uint64(sh)) & np.uint64((1 << w) - 1) for sh, w in blocks]
    vals = [v.astype(np.uint32) if w <= 32 else v for v, (_, w) in zip(vals, blocks)]
    positions = np.arange(n, dtype=np.uint64)
    for subset in combinations(range(len(blocks)), shared):
        width = sum(blocks[k][1] for k in subset)
        packed = width + idx_bits <= 64  # key and position in one word: np.sort is ~5x
        key = vals[subset[0]].astype(np.uint64)  # faster than argsort
        for k in subset[1:]:
            key = (key << np.uint64(blocks[k][1])) | vals[k]
        if packed:
            srt = np.sort((key << np.uint64(idx_bits)) | positions)
            order = (srt & np.uint64((1 << idx_bits) - 1)).astype(np.int64)
            sk = srt >> np.uint64(idx_bits)
        else:
            order = np.argsort(key)
            sk = key[order]
        eq = np.flatnonzero(sk[1:] == sk[:-1])  # p with sk[p] == sk[p + 1]: usually few
        if eq.size == 0:
            continue
        new_run = np.r_[True, eq[1:] != eq[:-1] + 1]
        starts = eq[new_run]
        lengths = np.diff(np.r_[np.flatnonzero(new_run), eq.size]) + 1
        big = lengths > max_bucket
        if big.any():
            full_mask = sum(((1 << blocks[k][1]) - 1) << blocks[k][0] for k in subset)
            for st, ln in zip(starts[big], lengths[big]):
                capped.append({"blocks": subset, "mask": f"{full_mask:016x}",
                               "value": f"{int(u[order[st]]) & full_mask:016x}",
                               "size": int(ln)})
            starts, lengths = starts[~big], lengths[~big]
        per_run = lengths.astype(np.int64) * (lengths - 1) // 2
        for sl in _chunks(per_run, chunk_pairs):
            p, q = _run_pairs(starts[sl], lengths[sl])
            a, b = order[p], order[q]
            a, b = np.minimum(a, b), np.maximum(a, b)
            ok = np.bitwise_count(u[a] ^ u[b]) <= max_bits
            found_a.append(a[ok])
            found_b.append(b[ok])
    if not found_a:
        e = np.empty(0, np.int64)
        return e, e, capped
    key = np.unique(np.concatenate(found_a).astype(np.int64) * n + np.concatenate(found_b))
    return key // n, key % n, capped


class NearDuplicateIndex:
    """All pairs of 64-bit perceptual hashes within a Hamming radius, sub-quadratically.

    >>> index = NearDuplicateIndex(similarity=0.95)     # radius 3 bits
    >>> index.add(hashes, ids)                          # uint64 array, any id sequence
    >>> pairs = index.pairs()                           # Pairs(index [K, 2], distance [K])
    >>> labels = index.groups()                         # near-duplicate cluster per hash

    Identical hashes are collapsed before the search. :meth:`pairs` links each repeated
    hash to its first occurrence (a star, linear in n) and reports every pair between distinct
    hash values; ``expand=True`` lists every pair instead, like :func:`brute_force_pairs`.
    A block value shared by more than ``max_bucket`` distinct hashes is not expanded (that
    would be quadratic); it is listed in :attr:`capped_buckets` with a warning, and pairs that
    agree on no other block may then be missed."""

    def __init__(self, similarity: float = PAPER_SIMILARITY, *, max_bucket: int = 2000,
                 shared_blocks: int | None = None, chunk_pairs: int = 4_000_000) -> None:
        if max_bucket < 2:
            raise ValueError(f"max_bucket must be >= 2, got {max_bucket}")
        if shared_blocks is not None and not 1 <= shared_blocks <= 8:
            raise ValueError(f"shared_blocks must be None (automatic) or 1 .. 8, "
                             f"got {shared_blocks}")
        self.shared_blocks = shared_blocks
        self.last_search: dict[str, int] = {}
        self.max_bits = max_bits_for(similarity)
        self.max_bucket = int(max_bucket)
        self.chunk_pairs = int(chunk_pairs)
        self._parts: list[np.ndarray] = []
        self._ids: list[Any] = []
        self._hashes: np.ndarray | None = None
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._capped: dict[int, list[dict]] = {}

    def add(self, hashes: Any, ids: Sequence[Any] | None = None) -> None:
        """Append hashes (uint64 array, ints or hex strings) with their ids (default: their
        running position)."""
        h = as_uint64(hashes)
        if ids is None:
            ids = range(len(self), len(self) + h.size)
        ids = list(ids)
        if len(ids) != h.size:
            raise ValueError(f"got {h.size} hashes but {len(ids)} ids; pass one id per hash")
        self._parts.append(h)
        self._ids.extend(ids)
        self._hashes = None
        self._cache.clear()
        self._capped.clear()

    def __len__(self) -> int:
        return sum(p.size for p in self._parts)

    @property
    def hashes(self) -> np.ndarray:
        if self._hashes is None:
            self._hashes = np.concatenate(self._parts) if self._parts else np.empty(0, np.uint64)
        return self._hashes

    @property
    def ids(self) -> list[Any]:
        return self._ids

    def _search(self, max_bits: int):
        if max_bits not in self._cache:
            if not 0 <= max_bits < NBITS:
                raise ValueError(f"max_bits must be within 0 .. {NBITS - 1}, got {max_bits}")
            keep, dup_items, dup_first = _collapse(self.hashes)
            u = self.hashes[keep]
            shared = self.shared_blocks or choose_shared_blocks(u.size, max_bits)
            a, b, capped = _mih_pairs(u, max_bits, shared, self.max_bucket, self.chunk_pairs)
            self.last_search = {"max_bits": max_bits, "distinct": int(u.size),
                                "blocks": max_bits + shared, "shared_blocks": shared,
                                "keys": math.comb(max_bits + shared, shared)}
            self._capped[max_bits] = capped
            if capped:
                warnings.warn(
                    f"{len(capped)} hash bucket(s) exceed max_bucket={self.max_bucket} distinct "
                    f"hashes (largest {max(c['size'] for c in capped)}) and were not expanded; "
                    f"near-duplicate pairs that agree only on those blocks may be missed. "
                    f"Inspect NearDuplicateIndex.capped_buckets, or raise max_bucket if the "
                    f"memory allows.", RuntimeWarning, stacklevel=3)
            self._cache[max_bits] = (keep, dup_items, dup_first, keep[a], keep[b])
        return self._cache[max_bits]

    @property
    def capped_buckets(self) -> pd.DataFrame:
        """Buckets skipped by the ``max_bucket`` guard in the searches done so far: radius,
        the block ids, their bit mask and shared masked value (hex), and the number of
        distinct hashes in the bucket."""
        rows = [{"max_bits": r, **c} for r, cs in sorted(self._capped.items()) for c in cs]
        return pd.DataFrame(rows, columns=["max_bits", "blocks", "mask", "value", "size"])

    def pairs(self, max_bits: int | None = None, *, expand: bool = False) -> Pairs:
        """Pairs of added hashes within ``max_bits`` (default: the index's similarity).

        Indices refer to the order of :meth:`add`. Without ``expand``, repeated hashes are
        linked to their first occurrence only and distinct values through their first
        occurrences, which keeps the output linear and the clusters (:meth:`groups`) exact."""
        r = self.max_bits if max_bits is None else int(max_bits)
        keep, dup_items, dup_first, ia, ib = self._search(r)
        h = self.hashes
        dist_ab = np.bitwise_count(h[ia] ^ h[ib]).astype(np.int64)
        if not expand:
            left = np.concatenate([ia, dup_first])
            right = np.concatenate([ib, dup_items])
            dist = np.concatenate([dist_ab, np.zeros(dup_items.size, np.int64)])
        else:  # every pair: repeats of one value among themselves, and across near values
            _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
            order = np.argsort(inverse, kind="stable")  # items grouped by distinct hash
            start = np.r_[0, np.cumsum(counts)[:-1]]
            p, q = _run_pairs(start[counts >= 2], counts[counts >= 2])
            same_l, same_r = order[p], order[q]
            a, b = inverse[ia], inverse[ib]
            na, nb = counts[a], counts[b]
            tot = na * nb
            pair = np.repeat(np.arange(a.size), tot)
            k = np.arange(pair.size) - np.repeat(np.cumsum(tot) - tot, tot)
            x_l = order[start[a][pair] + k // nb[pair]]
            x_r = order[start[b][pair] + k % nb[pair]]
            left = np.concatenate([same_l, x_l])
            right = np.concatenate([same_r, x_r])
            dist = np.concatenate([np.zeros(same_l.size, np.int64), dist_ab[pair]])
        lo, hi = np.minimum(left, right), np.maximum(left, right)
        srt = np.lexsort((hi, lo))
        return Pairs(np.stack([lo[srt], hi[srt]], axis=1).astype(np.int64), dist[srt])

    def groups(self, max_bits: int | None = None) -> np.ndarray:
        """Cluster label per added hash: connected components of the near-duplicate graph
        (union-find via ``scipy.sparse.csgraph.connected_components``). Components chain:
        A ~ B ~ C puts A and C together even when they are further apart than ``max_bits``."""
        return _components(len(self), self.pairs(max_bits).index)


def _components(n: int, edges: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.empty(0, np.int64)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    g = coo_matrix((np.ones(len(e), np.int8), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1].astype(np.int64)


def brute_force_pairs(hashes: Any, max_bits: int) -> Pairs:
    """Every pair (i < j) within ``max_bits`` by comparing all pairs: the reference for tests.
    Quadratic; refuses more than 20,000 hashes."""
    h = as_uint64(hashes)
    if h.size > 20_000:
        raise ValueError(f"brute_force_pairs is quadratic; {h.size} hashes is too many (max "
                         f"20,000). Use NearDuplicateIndex.")
    li, lj, ld = [], [], []
    for s in range(0, h.size, 1024):
        blk = h[s:s + 1024]
        d = np.bitwise_count(blk[:, None] ^ h[None, :]).astype(np.int64)
        i, j = np.nonzero(d <= max_bits)
        i = i + s
        ok = j > i
        li.append(i[ok]), lj.append(j[ok]), ld.append(d[i[ok] - s, j[ok]])
    if not li:
        return Pairs(np.empty((0, 2), np.int64), np.empty(0, np.int64))
    i, j, d = np.concatenate(li), np.concatenate(lj), np.concatenate(ld)
    srt = np.lexsort((j, i))
    return Pairs(np.stack([i[srt], j[srt]], axis=1).astype(np.int64), d[srt])


def representatives(labels: np.ndarray, *, sizes: Any = None, keys: Any = None) -> np.ndarray:
    """Index of the image each cluster keeps, for every item.

    The rule: the largest image (``sizes``, e.g. pixel count) wins, ties go to the smallest
    stable key (``keys``, e.g. the id as a string), then to the first position. Independent of
    the order in which files arrived, so a re-run on a Dask cluster keeps the same images."""
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.size
    size = np.zeros(n) if sizes is None else np.asarray(sizes, dtype=np.float64)
    size = np.nan_to_num(size, nan=-np.inf)
    key_rank = np.zeros(n, np.int64) if keys is None else \
        np.unique(np.asarray([str(k) for k in keys], dtype=object), return_inverse=True)[1]
    order = np.lexsort((np.arange(n), key_rank, -size, labels))
    first = np.r_[True, labels[order][1:] != labels[order][:-1]]
    rep_of_label = np.empty(labels.max() + 1 if n else 0, np.int64)
    rep_of_label[labels[order][first]] = order[first]
    return rep_of_label[labels]


# ----------------------------------------------------------------------------- the table
def _column(df: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in df.columns:
        return None
    col = df[name]
    return None if col.isna().all() else col.to_numpy(dtype=object)


def deduplicate(records: pd.DataFrame | Iterable[Mapping[str, Any]], *,
                similarity: float = PAPER_SIMILARITY, size_col: str = "n_pixels",
                max_bucket: int = 2000) -> pd.DataFrame:
    """Mark every record as kept, an exact duplicate or a near duplicate of a representative.

    ``records`` has an ``id`` column and any of ``pixel_hash`` (:func:`pixel_hash`), ``phash``
    (:func:`phash`: int or hex string), ``url`` (the record's own download link; links are
    compared with :func:`normalise_url`) and ``size_col`` (pixel count, larger is kept).
    Records are linked when they share a pixel hash, share a link, or have pHashes within the
    similarity threshold; each connected cluster keeps one representative
    (:func:`representatives`: largest image, then smallest id). Do not pass one archive's or
    video's link for each image in it: that link is shared by design, not a duplicate.

    Returns one row per record, in input order: ``id``, ``keep``, ``status`` (``unique``,
    ``exact_dup``, ``url_dup``, ``near_dup``), ``duplicate_of`` (the representative's id,
    None when kept), ``cluster``, ``cluster_size``, ``hamming`` and ``similarity`` to the
    representative (NaN without pHashes; in a chained cluster it can fall below the
    threshold), and ``direct`` (True when within the threshold of the representative itself).
    """
    df = records.copy() if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if "id" not in df.columns:
        raise ValueError(f"records need an 'id' column; got columns {list(df.columns)}")
    ids = df["id"].to_numpy(dtype=object)
    n = len(df)
    if len(pd.unique(pd.Series(ids, dtype=object).astype(str))) != n:
        dup = pd.Series(ids).astype(str)
        raise ValueError(f"ids must be unique; repeated: {sorted(set(dup[dup.duplicated()]))[:5]}")
    max_bits = max_bits_for(similarity)
    edges = [np.empty((0, 2), np.int64)]

    def star(keys: np.ndarray | None) -> None:
        """Link every record to the first record with the same non-null key."""
        if keys is None:
            return
        s = pd.Series(keys, dtype=object)
        ok = s.notna().to_numpy()
        if not ok.any():
            return
        codes = pd.factorize(s[ok])[0]
        pos = np.flatnonzero(ok)
        first = pd.Series(pos).groupby(codes).transform("first").to_numpy()
        sel = first != pos
        edges.append(np.stack([first[sel], pos[sel]], axis=1))

    pix = _column(df, "pixel_hash")
    star(pix)
    urls = _column(df, "url")
    nurl = None
    if urls is not None:
        nurl = np.array([url_hash(u) if isinstance(u, str) and u.strip() else None
                         for u in urls], dtype=object)
        star(nurl)
    ph_col = _column(df, "phash")
    ph = None
    if ph_col is not None:
        has = pd.notna(pd.Series(ph_col, dtype=object)).to_numpy()
        ph = np.zeros(n, np.uint64)
        ph[has] = as_uint64(ph_col[has])
        pos = np.flatnonzero(has)
        index = NearDuplicateIndex(similarity, max_bucket=max_bucket)
        index.add(ph[has], pos)
        edges.append(pos[index.pairs(max_bits).index])
    labels = _components(n, np.concatenate(edges))
    sizes = df[size_col].to_numpy(dtype=np.float64) if size_col in df.columns else None
    rep = representatives(labels, sizes=sizes, keys=ids)

    is_rep = rep == np.arange(n)
    status = np.full(n, "near_dup", dtype=object)
    if nurl is not None:
        same = np.array([u is not None and u == nurl[r] for u, r in zip(nurl, rep)])
        status[same] = "url_dup"
    if pix is not None:
        same = np.array([p is not None and p == pix[r] for p, r in zip(pix, rep)])
        status[same] = "exact_dup"
    status[is_rep] = "unique"
    ham = np.full(n, np.nan)
    if ph is not None:
        both = has & has[rep]
        ham[both] = np.bitwise_count(ph[both] ^ ph[rep[both]])
    counts = np.bincount(labels)
    out = pd.DataFrame({
        "id": ids,
        "keep": is_rep,
        "status": status,
        "duplicate_of": np.where(is_rep, None, ids[rep]),
        "cluster": labels,
        "cluster_size": counts[labels],
        "hamming": pd.array(np.where(np.isnan(ham), pd.NA, ham), dtype="Int64"),
        "similarity": _similarity(ham),
        "direct": ~np.isnan(ham) & (np.nan_to_num(ham, nan=NBITS) <= max_bits),
    })
    return out
