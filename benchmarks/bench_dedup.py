"""De-duplication (curation step 4): near-duplicate search time and hashing throughput.

(a) All pairs within 3 bits (the paper's >= 95 % similarity) among 10^4, 10^5 and 10^6 random
    64-bit hashes with ~1 % planted near duplicates: our multi-index search
    (``NearDuplicateIndex``, one process), its growth exponent between sizes (near-linear is
    the target), side by side with the peer, the ``imagededup`` package, on the same hashes
    (``PHash().find_duplicates(encoding_map=..., max_distance_threshold=3)``, with its default
    Cython brute force on all cores and its BK-tree). The peer's runs are skipped once their
    predicted time would break a ~2 minute budget; the skipped sizes are listed with the
    estimate.
(b) pHash throughput (images/s) of ``dedup.phash`` against imagededup's
    ``PHash().encode_image(image_array=...)`` on the same simulator images.

Results and machine info go to ``benchmarks/results/dedup.json``. ``--quick`` runs small sizes
only (a smoke test of the script).
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import sys
import time
import warnings
from datetime import date
from importlib.metadata import version

import numpy as np

from echocare_lib.curation.dedup import (NearDuplicateIndex, brute_force_pairs, max_bits_for,
                                         phash, pixel_hash)
from echocare_lib.paths import project_root
from echocare_lib.sim.tasks import generate

MAX_BITS = max_bits_for(0.95)  # 3
PEER_BUDGET_S = 120.0
HASH_TASKS = ("breast_birads", "abdomen_organ_seg", "fetal_4ch_detection",
              "fetal_brain_landmarks", "vessel_seg", "thyroid_nodule_seg", "enhancement",
              "liver_report", "liver_lesion_ceus", "echo_ef")


def planted_hashes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random hashes; 1 % of them replaced by a copy of another with 1-3 bits flipped."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2 ** 64 - 1, n, dtype=np.uint64, endpoint=True)
    k = max(1, n // 100)
    perm = rng.permutation(n)  # sources are never overwritten themselves
    dst, src = perm[:k], perm[k:2 * k]
    flips = np.zeros(dst.size, np.uint64)
    for j in range(dst.size):
        for b in rng.choice(64, int(rng.integers(1, MAX_BITS + 1)), replace=False):
            flips[j] |= np.uint64(1) << np.uint64(b)
    h[dst] = h[src] ^ flips
    return h, np.stack([np.minimum(src, dst), np.maximum(src, dst)], 1)


def time_ours(h: np.ndarray, repeats: int) -> tuple[float, np.ndarray, dict]:
    best, pairs, info = math.inf, None, {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        index = NearDuplicateIndex(0.95)
        index.add(h)
        p = index.pairs()
        best = min(best, time.perf_counter() - t0)
        pairs, info = p.index, dict(index.last_search)
    return best, pairs, info


def time_peer(h: np.ndarray, method: str) -> tuple[float, set]:
    from imagededup.methods import PHash

    enc = {str(i): f"{int(x):016x}" for i, x in enumerate(h)}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = PHash(verbose=False).find_duplicates(encoding_map=enc,
                                                   max_distance_threshold=MAX_BITS,
                                                   search_method=method)
    dt = time.perf_counter() - t0
    pairs = {(min(int(a), int(b)), max(int(a), int(b))) for a, dups in res.items() for b in dups}
    return dt, pairs


def growth(n1: int, t1: float, n2: int, t2: float) -> float:
    return math.log(t2 / t1) / math.log(n2 / n1)


def bench_search(quick: bool) -> tuple[list[dict], list[str]]:
    sizes = (1_000, 3_000, 10_000) if quick else (1_000, 3_000, 10_000, 100_000, 1_000_000)
    peer_sizes = (1_000, 3_000) if quick else (1_000, 3_000, 10_000, 100_000)
    rows, notes, spent = [], [], 0.0
    peer_last: dict[str, tuple[int, float]] = {}
    print(f"\n(a) near-duplicate search: all pairs within {MAX_BITS} bits (similarity >= 0.95) "
          f"among n random 64-bit hashes with ~1 % planted near duplicates")
    hdr = (f"{'n':>10} {'ours s':>9} {'growth':>7} {'keys':>5} {'pairs':>7} {'planted':>8} "
           f"{'idd cython s':>13} {'idd bktree s':>13} {'ours/cython':>12} {'ours/bktree':>12}")
    print(hdr)
    prev = None
    for n in sizes:
        h, planted = planted_hashes(n, seed=n)
        t, pairs, info = time_ours(h, repeats=3 if n <= 100_000 else 2)
        found = {tuple(p) for p in pairs.tolist()}
        planted_found = sum(tuple(p) in found for p in planted.tolist())
        if n <= 10_000:  # cross-check with brute force
            assert np.array_equal(pairs, brute_force_pairs(h, MAX_BITS).index)
        row = {"n": n, "ours_s": t, "pairs": len(found), "planted": len(planted),
               "planted_found": planted_found, "search": info,
               "growth_exponent": growth(prev[0], prev[1], n, t) if prev else None}
        prev = (n, t)
        for method in ("brute_force_cython", "bktree"):
            key = f"imagededup_{method}_s"
            row[key] = None
            if n not in peer_sizes:
                continue
            if method in peer_last:  # predict from the last size (these searches are ~n^2)
                n0, t0 = peer_last[method]
                predicted = t0 * (n / n0) ** 2
                if spent + predicted > PEER_BUDGET_S:
                    notes.append(f"imagededup {method} at n={n:,} not run: predicted "
                                 f"{predicted:,.0f} s from n={n0:,} ({t0:.1f} s) at n^2, "
                                 f"over the {PEER_BUDGET_S:.0f} s budget")
                    row[f"imagededup_{method}_predicted_s"] = predicted
                    continue
            tp, ppairs = time_peer(h, method)
            spent += tp
            peer_last[method] = (n, tp)
            row[key] = tp
            row[f"imagededup_{method}_same_pairs"] = ppairs == found
            if ppairs != found:
                notes.append(f"imagededup {method} at n={n:,} found {len(ppairs)} pairs, "
                             f"ours {len(found)}")
        rows.append(row)

        def f(x, w=13, fmt="{:.3f}"):
            return f"{fmt.format(x):>{w}}" if x is not None else f"{'-':>{w}}"
        gr = row["growth_exponent"]
        c, b = row["imagededup_brute_force_cython_s"], row["imagededup_bktree_s"]
        print(f"{n:>10,} {t:>9.4f} {f(gr, 7, '{:.2f}')} {info.get('keys', 0):>5} "
              f"{len(found):>7} {planted_found:>4}/{len(planted):<4}{f(c)}{f(b)}"
              f"{f(t / c if c else None, 12, '{:.5f}')}{f(t / b if b else None, 12, '{:.5f}')}")
    for method in ("brute_force_cython", "bktree"):
        runs = [(r["n"], r[f"imagededup_{method}_s"]) for r in rows
                if r.get(f"imagededup_{method}_s")]
        if len(runs) >= 2:
            (n1, t1), (n2, t2) = runs[-2], runs[-1]
            notes.append(f"imagededup {method} growth exponent {growth(n1, t1, n2, t2):.2f} "
                         f"(n={n1:,} -> {n2:,})")
    big = [r for r in rows if r["n"] >= 10_000]
    if len(big) >= 2:
        notes.append("ours growth exponent " + ", ".join(
            f"{a['n']:,}->{b['n']:,}: {growth(a['n'], a['ours_s'], b['n'], b['ours_s']):.2f}"
            for a, b in zip(big, big[1:])))
    for s in notes:
        print("  note: " + s)
    return rows, notes


def bench_hashing(n_images: int) -> dict:
    from imagededup.methods import PHash

    per_task = math.ceil(n_images / len(HASH_TASKS))
    t0 = time.perf_counter()
    imgs = []
    for task in HASH_TASKS:
        for s in generate(task, per_task, size=128, seed=1, n_jobs=os.cpu_count() or 1):
            imgs.append(np.clip(np.rint(s["image"][0] * 255), 0, 255).astype(np.uint8))
    imgs = imgs[:n_images]
    t_sim = time.perf_counter() - t0
    peer = PHash(verbose=False)
    out = {"images": len(imgs), "size_px": 128, "simulate_s": t_sim}
    fns = {"ours_phash": lambda a: phash(a),
           "imagededup_phash": lambda a: peer.encode_image(image_array=a),
           "ours_pixel_hash": lambda a: pixel_hash(a)}
    hashes = {}
    for name, fn in fns.items():
        fn(imgs[0])  # warm up imports
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            hs = [fn(a) for a in imgs]
            best = min(best, time.perf_counter() - t0)
        hashes[name] = hs
        out[f"{name}_img_per_s"] = len(imgs) / best
    ours = np.array(hashes["ours_phash"], dtype=np.uint64)
    theirs = np.array([int(x, 16) for x in hashes["imagededup_phash"]], dtype=np.uint64)
    out["ratio_ours_over_imagededup_throughput"] = (out["ours_phash_img_per_s"]
                                                    / out["imagededup_phash_img_per_s"])
    d = np.bitwise_count(ours ^ theirs)
    out["hamming_ours_vs_imagededup_median"] = float(np.median(d))
    print(f"\n(b) hashing throughput, {len(imgs)} simulator images of 128 px (one process):")
    print(f"  ours phash (imagehash)       {out['ours_phash_img_per_s']:>9,.0f} images/s")
    print(f"  imagededup PHash.encode_image {out['imagededup_phash_img_per_s']:>8,.0f} images/s"
          f"   ratio ours/imagededup {out['ratio_ours_over_imagededup_throughput']:.2f}")
    print(f"  ours pixel_hash (sha256)     {out['ours_pixel_hash_img_per_s']:>9,.0f} images/s")
    print(f"  (the two pHash variants differ: imagededup leaves the DC term out of the median; "
          f"median {out['hamming_ours_vs_imagededup_median']:.0f} bits apart)")
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    logging.disable(logging.INFO)  # imagededup logs every search at INFO
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    import imagededup.methods  # noqa: F401  (slow first import, kept out of the timings)
    t_import = time.perf_counter() - t0
    rows, notes = bench_search(quick)
    hashing = bench_hashing(100 if quick else 500)
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.0f} s (imagededup import {t_import:.0f} s)")
    if quick:
        print("--quick: results not written")
        return
    out = project_root() / "benchmarks" / "results" / "dedup.json"
    out.write_text(json.dumps({
        "date": str(date.today()), "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("numpy", "scipy", "ImageHash", "imagededup")},
        "max_bits": MAX_BITS, "similarity": 0.95,
        "peer": "imagededup.methods.PHash.find_duplicates(encoding_map, max_distance_threshold=3)"
                ", default num_dist_workers=cpu_count; ours: one process",
        "search": rows, "notes": notes, "hashing": hashing, "total_s": total}, indent=1,
        default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")
    print(f"results -> {out}")


if __name__ == "__main__":
    main()
