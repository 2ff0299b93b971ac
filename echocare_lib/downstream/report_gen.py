"""Two ultrasound images -> a free-text report (paper section 4.5.7, USreport / USData Liver).

The paper integrates its encoder into "an existing Transformer-based encoder-decoder report
generator, where the input is the global visual features extracted from ultrasound images".
R2Gen (Chen et al. 2020) is the field's reference generator: visual tokens from a CNN grid go
through a Transformer encoder-decoder, trained with cross-entropy under teacher forcing and
decoded with beam search (beam 3). Ours keeps that shape on our encoder interface:

* **visual memory**: for each of the two images, the last stage's feature grid (h x w tokens;
  2 x 2 at 64 px, 8 x 8 at 256 px) and the pooled vector (the "global feature"), each
  LayerNorm-ed (frozen features of different encoders have very different scales) and
  projected to ``d_model``, plus a learned embedding of which image (first / second view)
  and, for grid tokens, of their position. R2Gen's relational memory and memory-driven
  layer norm are left out: they are R2Gen's contribution, not the paper's, and the
  comparison here is between encoders under one generator;
* **text decoder**: ``torch.nn.TransformerDecoder`` (pre-norm), learned token and position
  embeddings, output projection tied to the token embedding;
* **training**: teacher-forced cross-entropy (padding ignored); the epoch with the best
  validation BLEU-4 under greedy decoding is kept;
* **decoding**: greedy, and beam search with ``beam_size`` beams (written here: torch has no
  generic beam search outside Hugging Face's ``generate``, which needs their model classes);
  the best finished hypothesis by total log-probability (divided by length^alpha if set).

In ``frozen`` mode (the ``cpu`` profile) the encoder's outputs for both images are computed
once per encoder and shared by the trials.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .zoo import encoder_channels


@dataclass(frozen=True)
class ReportConfig:
    epochs: int
    batch_size: int = 16
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    ff_dim: int = 256
    dropout: float = 0.1
    lr: float = 1e-3               # the decoder (and projections)
    lr_encoder: float = 5e-5       # full mode only
    weight_decay: float = 0.01
    max_len: int = 160             # tokens incl. <bos>/<eos>; longer reports are truncated
    beam_size: int = 3
    length_alpha: float = 0.0        # beam score: logp / length^alpha (R2Gen: no penalty)
    patience: int = 4
    #: validate every ``validate_every``-th epoch from ``validate_from`` (and the last epoch)
    validate_every: int = 1
    #: validation (greedy decoding + BLEU-4) starts at this fraction of the schedule: under
    #: the one-cycle schedule early epochs never win, and greedy decoding of an untrained
    #: decoder runs to ``max_len``, the costliest part of an epoch
    validate_from: float = 0.5
    mode: str = "full"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_profile(cls, prof) -> "ReportConfig":
        """The ``paper`` profile gets R2Gen's sizes (d 512, 3 layers, 8 heads); the CPU
        profiles a small decoder trained for more epochs than a probe (text needs them)."""
        if prof.name == "paper":
            return cls(epochs=prof.finetune_epochs, batch_size=prof.finetune_batch_size,
                       d_model=512, n_heads=8, n_layers=3, ff_dim=512, lr=1e-4,
                       mode=prof.finetune_mode, patience=10)
        epochs = getattr(prof, "report_epochs", 0) or 3 * prof.finetune_epochs
        # validation every second epoch from three quarters of the schedule (and the last):
        # the one-cycle schedule's best epochs come late (33-39 of 44 on the cpu profile,
        # 2026-11-29), and each validation decodes the validation reports greedily (a fifth
        # of a trial's time when every epoch from two thirds was validated)
        return cls(epochs=epochs, batch_size=16, lr=3e-3, mode=prof.finetune_mode,
                   validate_from=0.75, validate_every=2)


class VisualMemory(nn.Module):
    """Encoder outputs of the two images -> memory tokens [B, 2 (g + 1), d]."""

    def __init__(self, stage_dim: int, pooled_dim: int, d_model: int, max_grid: int = 256):
        super().__init__()
        self.norm_grid, self.norm_pooled = nn.LayerNorm(stage_dim), nn.LayerNorm(pooled_dim)
        self.grid = nn.Linear(stage_dim, d_model)
        self.pooled = nn.Linear(pooled_dim, d_model)
        self.view = nn.Embedding(2, d_model)
        self.pos = nn.Embedding(max_grid + 1, d_model)  # 0: the pooled token

    def forward(self, last: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """``last`` [B, 2, C, h, w] (the last stage), ``pooled`` [B, 2, P]."""
        b, v, c, h, w = last.shape
        tokens = self.grid(self.norm_grid(last.flatten(3).transpose(2, 3)))   # [B, 2, hw, d]
        glob = self.pooled(self.norm_pooled(pooled))[:, :, None]              # [B, 2, 1, d]
        mem = torch.cat([glob, tokens], 2)
        mem = mem + self.pos.weight[:h * w + 1] + self.view.weight[:, None]
        return mem.flatten(1, 2)


class ReportGenerator(nn.Module):
    def __init__(self, encoder: nn.Module, vocab_size: int, cfg: ReportConfig) -> None:
        super().__init__()
        self.encoder, self.cfg = encoder, cfg
        channels, pooled = encoder_channels(encoder)
        self.memory = VisualMemory(channels[-1], pooled, cfg.d_model)
        self.embed = nn.Embedding(vocab_size, cfg.d_model, padding_idx=0)
        # fixed sinusoidal positions (Vaswani et al.): nothing to learn, which matters with
        # a few hundred reports
        self.register_buffer("pos_table", _sinusoids(cfg.max_len, cfg.d_model),
                             persistent=False)
        layer = nn.TransformerDecoderLayer(cfg.d_model, cfg.n_heads, cfg.ff_dim, cfg.dropout,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, cfg.n_layers, norm=nn.LayerNorm(cfg.d_model))
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 2, 1, H, W] -> (last stage [B, 2, C, h, w], pooled [B, 2, P])."""
        b = images.shape[0]
        out = self.encoder(images.flatten(0, 1))
        last = out.features[-1]
        return last.view(b, 2, *last.shape[1:]), out.pooled.view(b, 2, -1)

    def logits(self, encoded, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``tokens`` [B, L] (starting with <bos>) -> next-token logits."""
        mem = self.memory(*encoded)
        n = tokens.shape[1]
        h = self.embed(tokens) + self.pos_table[:n]
        causal = torch.ones(n, n, dtype=torch.bool, device=tokens.device).triu(1)
        h = self.decoder(h, mem, tgt_mask=causal, tgt_is_causal=True,
                         tgt_key_padding_mask=tokens.eq(0))
        return h @ self.embed.weight.T + self.out_bias

    @torch.no_grad()
    def _step(self, mem: torch.Tensor, cache: list, last: torch.Tensor, pos: int):
        """Incremental decoding: the log-probabilities of the token after ``last`` [B] at
        position ``pos``, given ``cache`` (per layer, the pre-norm inputs of the earlier
        positions, [B, pos, d]). Written by hand because ``nn.TransformerDecoder`` has no
        key/value cache: it runs the *same* trained submodules on the newest position only
        (pre-norm layers: self-attention of that position over the cached normalised inputs,
        cross-attention over the memory, feed-forward), so a report of L tokens costs O(L)
        position updates instead of O(L^2). Equal to the full forward (a test checks it)."""
        x = self.embed(last)[:, None] + self.pos_table[pos]
        new_cache = []
        for layer, past in zip(self.decoder.layers, cache):
            xn = layer.norm1(x)
            kv = torch.cat([past, xn], 1)
            new_cache.append(kv)
            x = x + layer.self_attn(xn, kv, kv, need_weights=False)[0]
            y = layer.norm2(x)
            x = x + layer.multihead_attn(y, mem, mem, need_weights=False)[0]
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        h = self.decoder.norm(x)[:, 0]
        return (h @ self.embed.weight.T + self.out_bias).log_softmax(-1), new_cache

    def _empty_cache(self, b: int) -> list:
        return [torch.zeros(b, 0, self.cfg.d_model) for _ in self.decoder.layers]

    @torch.no_grad()
    def generate(self, encoded, bos: int, eos: int, *, beam_size: int = 1,
                 max_len: int | None = None, alpha: float | None = None) -> list[list[int]]:
        """Token ids per case (without <bos>/<eos>): greedy (``beam_size=1``) or beam search."""
        self.eval()
        max_len = min(max_len or self.cfg.max_len, self.cfg.max_len)
        alpha = self.cfg.length_alpha if alpha is None else alpha
        mem = self.memory(*encoded)
        self._banned = [0, bos]  # never generate <pad> or <bos>
        if beam_size <= 1:
            return self._greedy(mem, bos, eos, max_len)
        return self._beam(mem, bos, eos, max_len, beam_size, alpha)

    def _next(self, mem, cache, last, pos):
        logp, cache = self._step(mem, cache, last, pos)
        logp[:, self._banned] = float("-inf")
        return logp, cache

    def _greedy(self, mem, bos, eos, max_len) -> list[list[int]]:
        b = len(mem)
        last = torch.full((b,), bos, dtype=torch.long)
        cache, out = self._empty_cache(b), []
        done = torch.zeros(b, dtype=torch.bool)
        for pos in range(max_len - 1):
            logp, cache = self._next(mem, cache, last, pos)
            last = torch.where(done, torch.zeros_like(last), logp.argmax(-1))
            out.append(last)
            done |= last.eq(eos)
            if bool(done.all()):
                break
        rows = torch.stack(out, 1).tolist() if out else [[] for _ in range(b)]
        return [r[:r.index(eos)] if eos in r else [t for t in r if t != 0] for r in rows]

    def _beam(self, mem, bos, eos, max_len, k, alpha) -> list[list[int]]:
        # Beam search over a batch of cases at once, written by hand (see the module
        # docstring). Each case keeps its k best open hypotheses by summed log-probability
        # (the B * k rows share one incremental decoder pass per step); a hypothesis that
        # emits <eos> is finished and scored by logp / length^alpha (GNMT's length
        # normalisation; R2Gen's default alpha = 0 is plain summed log-probability); a case
        # stops when no open hypothesis can beat its best finished one, which is returned.
        b = len(mem)
        mem_k = mem.repeat_interleave(k, 0)
        scores = torch.full((b, k), float("-inf"))
        scores[:, 0] = 0.0                      # one live beam per case at the start
        seqs = [[[] for _ in range(k)] for _ in range(b)]
        finished: list[list[tuple[list[int], float]]] = [[] for _ in range(b)]
        done = [False] * b
        cache, last = self._empty_cache(b * k), torch.full((b * k,), bos, dtype=torch.long)
        for pos in range(max_len - 1):
            logp, cache = self._next(mem_k, cache, last, pos)
            v = logp.shape[1]
            top_s, top_i = (scores[:, :, None] + logp.view(b, k, v)).view(b, k * v).topk(
                2 * k, dim=1)
            src = torch.zeros(b, k, dtype=torch.long)
            tok = torch.zeros(b, k, dtype=torch.long)
            new_scores = torch.full((b, k), float("-inf"))
            new_seqs = [[[] for _ in range(k)] for _ in range(b)]
            for i in range(b):
                if done[i]:
                    continue
                j = 0
                for rank, (sc, flat) in enumerate(zip(top_s[i].tolist(), top_i[i].tolist())):
                    if sc == float("-inf"):
                        break
                    s_, t_ = divmod(flat, v)
                    if t_ == eos:
                        if rank >= k:  # as Hugging Face: only an <eos> among the k best ends
                            continue   # a hypothesis
                        n = len(seqs[i][s_]) + 1
                        finished[i].append((seqs[i][s_], sc / n ** alpha))
                    else:
                        src[i, j], tok[i, j], new_scores[i, j] = s_, t_, sc
                        new_seqs[i][j] = seqs[i][s_] + [t_]
                        j += 1
                    if j == k:
                        break
                # stop when no open hypothesis can still win: a sum of log-probabilities
                # only falls as tokens are added, and a negative sum divided by a length
                # ^alpha is at most the sum / max_len^alpha
                live = float(new_scores[i, :j].max()) if j else float("-inf")
                bound = live / max_len ** alpha if live < 0 else live
                done[i] = j == 0 or (bool(finished[i]) and
                                     max(f[1] for f in finished[i]) >= bound)
            if all(done):
                break
            gather = (torch.arange(b)[:, None] * k + src).flatten()
            cache = [c[gather] for c in cache]
            last, scores, seqs = tok.flatten(), new_scores, new_seqs
        out = []
        for i in range(b):
            if not finished[i]:  # ran out of length: the best open hypothesis
                finished[i] = [(q, float(sc) / max(len(q), 1) ** alpha)
                               for q, sc in zip(seqs[i], scores[i].tolist()) if q]
            out.append(max(finished[i], key=lambda f: f[1])[0] if finished[i] else [])
        return out


def _sinusoids(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-np.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
    table = torch.zeros(n, d)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return table


def _encode_all(model: ReportGenerator, images: torch.Tensor, batch_size: int = 32):
    model.encoder.eval()
    with torch.no_grad():
        parts = [model.encode(images[i:i + batch_size])
                 for i in range(0, len(images), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _take(encoded, idx):
    return encoded[0][idx], encoded[1][idx]


def train_report_generator(encoder: nn.Module, tokenizer, train: list[dict], val: list[dict],
                           cfg: ReportConfig, seed: int, *, encoded: tuple | None = None,
                           progress: bool = False, desc: str = "") -> tuple[ReportGenerator, dict]:
    """Fit the generator on ``train`` (samples with ``images`` [2, 1, H, W] and ``report``);
    keep the epoch with the best validation BLEU-4 (greedy decoding). ``encoded``: frozen
    (train, val) encodings from :func:`encode_reports` in ``frozen`` mode."""
    from .finetune import BestEpoch
    from .report_text import nlg_metrics

    torch.manual_seed(seed)
    model = ReportGenerator(encoder, len(tokenizer), cfg)
    frozen = cfg.mode == "frozen"
    decoder_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    if frozen:
        model.encoder.requires_grad_(False)
        groups = [{"params": decoder_params, "lr": cfg.lr}]
    else:
        groups = [{"params": model.encoder.parameters(), "lr": cfg.lr_encoder},
                  {"params": decoder_params, "lr": cfg.lr}]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, int(np.ceil(len(train) / cfg.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups],
                                                total_steps=steps, pct_start=0.1)
    x_tr = torch.as_tensor(np.stack([s["images"] for s in train]))
    x_va = torch.as_tensor(np.stack([s["images"] for s in val])) if val else None
    tok = torch.as_tensor([_padded(tokenizer.encode(s["report"], cfg.max_len), cfg.max_len)
                           for s in train])
    enc_tr, enc_va = encoded if (frozen and encoded is not None) else (None, None)
    if frozen and enc_tr is None:
        enc_tr = _encode_all(model, x_tr)
        enc_va = _encode_all(model, x_va) if x_va is not None else None
    refs_va = [s["report"] for s in val]
    gen = torch.Generator().manual_seed(seed)
    keeper, n_seen = BestEpoch(cfg.patience), 0
    t0 = time.perf_counter()
    for epoch in tqdm(range(cfg.epochs), desc=desc or "report generator", leave=False,
                      disable=not progress):
        model.train()
        if frozen:
            model.encoder.eval()
        for idx in torch.randperm(len(train), generator=gen).split(cfg.batch_size):
            t = tok[idx]
            t = t[:, :int(t.ne(0).sum(1).max())]
            enc = _take(enc_tr, idx) if frozen else model.encode(x_tr[idx])
            logits = model.logits(enc, t[:, :-1])
            loss = F.cross_entropy(logits.flatten(0, 1), t[:, 1:].flatten(), ignore_index=0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n_seen += len(idx)
        if not val:
            score = float(epoch)  # no validation data: keep the last epoch
        elif not _validated(epoch, cfg):
            continue  # patience counts validated epochs only
        else:
            enc_v = enc_va if frozen else _encode_all(model, x_va)
            hyps = decode_reports(model, tokenizer, enc_v, beam_size=1)
            score = nlg_metrics(refs_va, hyps, meteor=False)["BLEU-4"]
        if keeper.update(model, epoch, score):
            break
    keeper.restore(model)
    secs = time.perf_counter() - t0
    return model.eval(), {"best_epoch": keeper.epoch, "val_score": keeper.best, "seconds": secs,
                          "train_images_per_s": 2 * n_seen / secs if secs > 0 else float("nan")}


def _validated(epoch: int, cfg: ReportConfig) -> bool:
    """Whether ``epoch`` is validated: every ``validate_every``-th from ``validate_from`` of
    the schedule, and always the last one."""
    start = int(cfg.validate_from * cfg.epochs)
    if epoch == cfg.epochs - 1:
        return True
    return epoch >= start and (epoch - start) % max(1, cfg.validate_every) == 0


def _padded(ids: list[int], n: int) -> list[int]:
    return ids[:n] + [0] * (n - len(ids))


def encode_reports(model_or_encoder, images: torch.Tensor, cfg: ReportConfig, vocab_size: int = 8):
    """Frozen encodings of report cases' ``images`` [N, 2, 1, H, W] (for sharing across trials)."""
    model = (model_or_encoder if isinstance(model_or_encoder, ReportGenerator)
             else ReportGenerator(model_or_encoder, vocab_size, cfg))
    return _encode_all(model, images)


def decode_reports(model: ReportGenerator, tokenizer, encoded, *, beam_size: int = 1,
                   batch_size: int = 32) -> list[str]:
    """Generated report texts for frozen or fresh encodings (see :meth:`ReportGenerator.generate`)."""
    out = []
    n = len(encoded[0])
    for i in range(0, n, batch_size):
        ids = model.generate(_take(encoded, slice(i, i + batch_size)), tokenizer.bos_id,
                             tokenizer.eos_id, beam_size=beam_size)
        out += [tokenizer.decode(r) for r in ids]
    return out


def generate_reports(model: ReportGenerator, tokenizer, images: torch.Tensor, *,
                     beam_size: int = 1) -> list[str]:
    """Reports for cases ``images`` [N, 2, 1, H, W] (runs the encoder)."""
    return decode_reports(model, tokenizer, _encode_all(model, images), beam_size=beam_size)
