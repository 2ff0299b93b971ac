"""One trial of a generative application (enhancement, report generation) for ``run_trials``.

:func:`trials.run_trials` owns the loop over encoders, train fractions and trials, the
configuration hash and the cached result rows for every task; for the two generative kinds it
hands each trial to :class:`GenerativeTrials`, which trains with the kind's own loop
(:mod:`.enhance`, :mod:`.report_gen`) and evaluates with the kind's metrics. Frozen-mode
encodings are computed once per encoder and reused by all of its trials, as for the other
tasks.
"""
from __future__ import annotations

import numpy as np
import torch

from .enhance import EnhanceConfig, Enhancer, enhance, evaluate_enhancement, train_enhancer
from .report_gen import (ReportConfig, ReportGenerator, decode_reports, encode_reports,
                         train_report_generator)


class GenerativeTrials:
    def __init__(self, task, prof, train: list[dict], test: list[dict]) -> None:
        self.task, self.prof, self.train, self.test = task, prof, train, test
        self._encoded: tuple = ()  # frozen encodings of the encoder named by ``_key``
        self._key = None
        if task.kind == "enhancement":
            self.cfg = EnhanceConfig.for_profile(prof)
            self.low = torch.as_tensor(np.stack([s["image"] for s in train]))
            has = [i for i, s in enumerate(train) if s.get("target") is not None]
            self.high_rows = np.array(has, dtype=int)  # training images of the high domain
            self.high = torch.as_tensor(np.stack([train[i]["target"] for i in has]))
            self.test_low = torch.as_tensor(np.stack([s["image"] for s in test]))
            ref = [s["target"] for s in test if s.get("target") is not None]
            if not ref:
                raise ValueError("enhancement: the test split has no high-quality images to "
                                 "compute the Fréchet distance against")
            self.test_high = np.stack(ref)
        elif task.kind == "report":
            from .report_text import Tokenizer

            self.cfg = ReportConfig.for_profile(prof)
            # the vocabulary comes from the training split only
            self.tokenizer = Tokenizer.build([s["report"] for s in train])
            self.images = torch.as_tensor(np.stack([s["images"] for s in train]))
            self.test_images = torch.as_tensor(np.stack([s["images"] for s in test]))
        else:
            raise ValueError(f"not a generative task kind: {task.kind!r}")

    @property
    def frozen(self) -> bool:
        return self.cfg.mode == "frozen"

    def _frozen_encodings(self, encoder, enc_key):
        """Encodings of every image the trials need, once per encoder (``enc_key``)."""
        if self._key != enc_key:
            from .finetune import encode_frozen

            if self.task.kind == "enhancement":
                stub = Enhancer(encoder, width=self.cfg.width)
                self._encoded = (encode_frozen(stub, self.low), encode_frozen(stub, self.high),
                                 encode_frozen(stub, self.test_low))
            else:
                stub = ReportGenerator(encoder, len(self.tokenizer), self.cfg)
                self._encoded = (encode_reports(stub, self.images, self.cfg),
                                 encode_reports(stub, self.test_images, self.cfg))
            self._key = enc_key
        return self._encoded

    def trial(self, encoder, kept, val_idx, seed: int, *, enc_key=None, progress=False,
              desc="") -> tuple[dict, dict, dict]:
        """(test metrics, training info, arrays to keep for trial 0) of one trial."""
        if self.task.kind == "enhancement":
            return self._enhancement(encoder, kept, val_idx, seed, enc_key, progress, desc)
        return self._report(encoder, kept, val_idx, seed, enc_key, progress, desc)

    def _enhancement(self, encoder, kept, val_idx, seed, enc_key, progress, desc):
        from .finetune import take_encoded

        rows = np.concatenate([kept, val_idx]).astype(int)  # no model selection: train on both
        high_rows = np.flatnonzero(np.isin(self.high_rows, rows))
        enc = self._frozen_encodings(encoder, enc_key) if self.frozen else None
        encoded = ((take_encoded(enc[0], rows), take_encoded(enc[1], high_rows))
                   if enc is not None else None)
        model, info = train_enhancer(encoder, self.low[rows], self.high[high_rows], self.cfg,
                                     seed, encoded=encoded, progress=progress, desc=desc)
        out = enhance(model, self.test_low, enc[2] if enc is not None else None)
        res = evaluate_enhancement(out.numpy(), self.test_high)
        last = info["history"][-1] if info["history"] else {}
        meta = {"train_seconds": info["seconds"],
                "train_images_per_s": info["train_images_per_s"],
                **{f"loss_{k}": v for k, v in last.items()}}
        return res, meta, {"predictions": out.numpy().astype(np.float16)}

    def _report(self, encoder, kept, val_idx, seed, enc_key, progress, desc):
        from .report_gen import _take
        from .report_text import ce_metrics, nlg_metrics

        tr = [self.train[i] for i in kept]
        va = [self.train[i] for i in val_idx]
        enc = self._frozen_encodings(encoder, enc_key) if self.frozen else None
        encoded = ((_take(enc[0], torch.as_tensor(kept)), _take(enc[0], torch.as_tensor(val_idx)))
                   if enc is not None else None)
        model, info = train_report_generator(encoder, self.tokenizer, tr, va, self.cfg, seed,
                                             encoded=encoded, progress=progress, desc=desc)
        test_enc = enc[1] if enc is not None else encode_reports(model, self.test_images,
                                                                 self.cfg)
        hyps = decode_reports(model, self.tokenizer, test_enc, beam_size=self.cfg.beam_size)
        refs = [s["report"] for s in self.test]
        res = {**nlg_metrics(refs, hyps), **ce_metrics(refs, hyps)}
        meta = {"val_BLEU-4": info["val_score"], "best_epoch": info["best_epoch"],
                "train_seconds": info["seconds"],
                "train_images_per_s": info["train_images_per_s"]}
        return res, meta, {"predictions": np.array(hyps, dtype=str)}
