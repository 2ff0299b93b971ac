"""Fine-tuning speed: images/s of one training step for each downstream head, against peers.

What is timed is the body of ``downstream.finetune.finetune``'s loop (forward, the task's loss,
backward, AdamW step, OneCycle step) at the ``cpu`` profile's sizes (echocare-small, 64 px,
batch 32; cine clips of 8 frames count as 8 images), for

* ``classification`` (pooled feature -> linear), ``cine classification`` (frames averaged),
  ``segmentation / unetr`` (the SwinUNETR-style head to full resolution) and
  ``segmentation / unetr-lite`` (stride-4 logits upsampled), each in ``full`` mode (encoder
  trained, the paper's protocol) and ``frozen`` mode (head only, on encodings computed once,
  the ``cpu`` profile's protocol; the one-off encoding pass is timed separately);

and, in the same interleaved rounds (ABAB..., medians), two named peers:

* **timm ``SwinTransformer``** of the same size with its own classifier (plain timm training
  step): the peer of our classification steps, so ``ours / timm`` is the cost of our wrapper
  (mask token path, four-stage output, grayscale handling);
* **MONAI ``SwinUNETR``** (2-D, its default patch 2 and feature size 24, 64 px): the standard
  UNETR-style segmentation network, the peer of our segmentation steps.

    .venv/bin/python benchmarks/bench_finetune.py           # ~3-6 min on 2 cores
    .venv/bin/python benchmarks/bench_finetune.py --quick   # ~1 min

Results go to ``benchmarks/results/finetune.json``. The machine may be shared: the load average
before and after is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pretraining import _header  # noqa: E402  (shared machine/version header)

from echocare_lib.downstream.finetune import _loss, encode_frozen, take_encoded  # noqa: E402
from echocare_lib.downstream.heads import DownstreamModel  # noqa: E402
from echocare_lib.downstream.zoo import build_encoder  # noqa: E402
from echocare_lib.models.encoder import PRESETS  # noqa: E402
from echocare_lib.paths import project_root  # noqa: E402
from echocare_lib.profiles import get_profile  # noqa: E402

RESULTS = project_root() / "benchmarks" / "results" / "finetune.json"
FRAMES = 8


class Step:
    """One training step of a model on a fixed batch; ``images`` per call (frames counted)."""

    def __init__(self, name: str, model: torch.nn.Module, forward, y: torch.Tensor, kind: str,
                 images: int) -> None:
        self.name, self.model, self.forward, self.y, self.kind = name, model, forward, y, kind
        self.images = images
        params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=1e-4,
                                                         total_steps=10_000)

    def __call__(self) -> None:
        loss = _loss(self.forward(), self.y, self.kind)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()


def build_steps(batch: int, heads: list[str]) -> tuple[list[Step], dict]:
    prof = get_profile("cpu")
    size = prof.image_size
    torch.manual_seed(0)
    x = torch.rand(batch, 1, size, size)
    clips = torch.rand(batch, FRAMES, 1, size, size)
    y_cls = torch.arange(batch) % 4
    y_seg = (torch.rand(batch, size, size) > 0.7).long()
    steps, encode_s = [], {}
    for head in heads:
        kind = "classification" if "classification" in head else "segmentation"
        seg_head = head.split("/")[-1].strip() if kind == "segmentation" else "unetr"
        inp = clips if head.startswith("cine") else x
        y = y_cls if kind == "classification" else y_seg
        n_cls = 4 if kind == "classification" else 2
        imgs = batch * (FRAMES if inp.ndim == 5 else 1)
        full = DownstreamModel(build_encoder("echocare", profile=prof), kind, n_cls, seg_head)
        full.train()
        steps.append(Step(f"{head} | full", full, lambda m=full, i=inp: m(i), y, kind, imgs))
        frozen = DownstreamModel(build_encoder("echocare", profile=prof), kind, n_cls, seg_head)
        frozen.encoder.requires_grad_(False)
        t = time.perf_counter()
        enc = encode_frozen(frozen, inp)
        encode_s[head] = imgs / (time.perf_counter() - t)
        frozen.train()
        frozen.encoder.eval()
        idx = torch.arange(batch)
        steps.append(Step(f"{head} | frozen", frozen,
                          lambda m=frozen, e=enc, i=inp: m.decode(take_encoded(e, idx), i),
                          y, kind, imgs))
    return steps, encode_s


def build_peers(batch: int) -> list[Step]:
    from monai.networks.nets import SwinUNETR
    from timm.models.swin_transformer import SwinTransformer

    prof = get_profile("cpu")
    cfg = PRESETS[prof.encoder]
    size = prof.image_size
    x = torch.rand(batch, 1, size, size)
    timm_swin = SwinTransformer(img_size=size, patch_size=cfg.patch_size, in_chans=1,
                                num_classes=4, embed_dim=cfg.embed_dim, depths=cfg.depths,
                                num_heads=cfg.num_heads, window_size=cfg.window_size,
                                drop_path_rate=cfg.drop_path_rate).train()
    unetr = SwinUNETR(in_channels=1, out_channels=2, spatial_dims=2).train()
    return [Step("peer timm SwinTransformer (classification)", timm_swin,
                 lambda: timm_swin(x), torch.arange(batch) % 4, "classification", batch),
            Step("peer MONAI SwinUNETR 2-D (segmentation)", unetr, lambda: unetr(x),
                 (torch.rand(batch, size, size) > 0.7).long(), "segmentation", batch)]


def run(steps: list[Step], rounds: int) -> dict[str, float]:
    """Median images/s of each step over interleaved rounds (one warm-up call each first)."""
    times: dict[str, list[float]] = {s.name: [] for s in steps}
    for s in steps:
        s()
    for _ in range(rounds):
        for s in steps:
            t = time.perf_counter()
            s()
            times[s.name].append(time.perf_counter() - t)
    return {s.name: s.images / statistics.median(times[s.name]) for s in steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few rounds only")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    batch = get_profile("cpu").finetune_batch_size
    rounds = 3 if a.quick else 8
    heads = ["classification", "cine classification", "segmentation / unetr",
             "segmentation / unetr-lite"]
    results = {**_header(), "quick": a.quick, "batch": batch, "frames_per_clip": FRAMES,
               "rounds": rounds, "load_average_start": os.getloadavg()}
    print(f"fine-tuning speed, cpu profile sizes, batch {batch}, {rounds} interleaved rounds, "
          f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")
    steps, encode_ips = build_steps(batch, heads)
    peers = build_peers(batch)
    ips = run(steps + peers, rounds)
    timm_ips = ips[peers[0].name]
    unetr_ips = ips[peers[1].name]
    rows = []
    for s in steps:
        head, mode = [p.strip() for p in s.name.split("|")]
        peer_name, peer_ips = ((peers[0].name, timm_ips) if "classification" in head
                               else (peers[1].name, unetr_ips))
        rows.append({"head": head, "mode": mode, "images_per_s": ips[s.name],
                     "peer": peer_name, "peer_images_per_s": peer_ips,
                     "ratio_vs_peer": ips[s.name] / peer_ips,
                     "encode_once_images_per_s": encode_ips[head] if mode == "frozen" else None})
    results["rows"] = rows
    results["load_average_end"] = os.getloadavg()
    print(f"\n{'head':28s} {'mode':7s} {'img/s':>8s}  {'x peer':>7s}  peer")
    for r in rows:
        print(f"{r['head']:28s} {r['mode']:7s} {r['images_per_s']:8.1f}  "
              f"{r['ratio_vs_peer']:7.2f}  {r['peer']} ({r['peer_images_per_s']:.1f} img/s)")
    print("(frozen mode also pays one encoding pass per encoder and data set: "
          + ", ".join(f"{h} {v:.0f} img/s" for h, v in encode_ips.items()) + ")")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
