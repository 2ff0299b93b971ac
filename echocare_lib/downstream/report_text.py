"""Text side of ultrasound report generation (paper sections 4.3 and 4.5.7: USreport Liver).

* :class:`Tokenizer`: word-level vocabulary built from the *training* reports only.
* :func:`nlg_metrics`: BLEU-1..4, METEOR, ROUGE-L and CIDEr with ``pycocoevalcap`` (the
  scorers R2Gen and its successors use).
* :func:`ce_metrics`: clinical-efficacy (CE) metrics over the 14 key entities of the paper,
  with the keyword rules of :func:`echocare_lib.sim.tasks.report.entity_vector`.
* :func:`diff_segments` and :func:`plot_report_examples`: word-level comparison of a generated
  report with the ground truth, coloured as in the paper's Fig. 7b.

>>> from echocare_lib.downstream.report_text import Tokenizer, nlg_metrics, ce_metrics
>>> tok = Tokenizer.build(train_reports)           # never the validation / test reports
>>> ids = tok.encode(report, max_len=160)          # [<bos>, ..., <eos>], truncated
>>> text = tok.decode(generated_ids)               # stops at <eos>
>>> nlg_metrics(test_reports, generated)["BLEU-4"]   # fractions; the notebook shows x 100
>>> ce_metrics(test_reports, generated)["F1"]

Design choices
--------------

**Tokenisation** (:func:`tokenize`). Lower-case; decimal numbers stay one token ("12.5");
words keep inner hyphens and apostrophes ("ill-defined", "normal-sized"); every other
non-space character is its own token (". , ; : ( ) /" ...). Line breaks are whitespace (the
tokenizer has no newline token), so ``decode(encode(t))`` equals ``t`` lower-cased with its
whitespace collapsed, for text written with ordinary spacing (no space before ". , ; : )",
none after "(", none around "/").

**Normalisation before NLG scoring** (:func:`normalize_for_scoring`). The COCO protocol first
runs the Stanford PTBTokenizer (lower-case, split punctuation, drop punctuation tokens). It
works offline here, but it starts a second JVM and writes a temporary file into the installed
package, and it would make BLEU, ROUGE-L and CIDEr depend on Java. We instead apply the same
steps in Python, as R2Gen does (it passes its own tokenised reports to the scorers without
PTBTokenizer): :func:`tokenize`, then drop the tokens without a letter or digit. On the
simulated reports (80 checked) the result is identical to PTBTokenizer's except in two
places: PTBTokenizer leaves parentheses as "-lrb-" / "-rrb-" tokens (its punctuation list
holds only the upper-case forms, a known quirk), which we drop, and it keeps "ceus/ct" as
one token, which we score as "ceus ct".

**METEOR and Java.** ``pycocoevalcap``'s METEOR runs ``meteor-1.5.jar`` in a JVM (Java 8+;
about 8 s to start on an idle 2-core machine, 20-30 s under load, and about 1.2 GB of
memory: it loads a 60 MB paraphrase table; scoring itself is fast). The process is always
closed (stdin closed, killed, reaped, pipes closed) in a ``finally`` block, even on errors. Where
``java`` is not on ``PATH`` (or the JVM fails), the choice is: METEOR is NaN with a
``RuntimeWarning`` and the six Java-free metrics are still returned, because a missing
optional system package should not hide BLEU/ROUGE/CIDEr; ``require_java=True`` turns this
into a ``RuntimeError`` for runs whose tables must be complete. ``meteor=False`` skips the
JVM (NaN), e.g. for per-epoch validation.

**Aggregation** (pycocoevalcap conventions, unchanged): BLEU-n is corpus-level (clipped n-gram
counts summed over all reports, one brevity penalty ``exp(1 - r/c)`` when the total
hypothesis length ``c`` is below the total closest-reference length ``r``); METEOR is the
jar's corpus-level aggregate; ROUGE-L (LCS F-measure, beta = 1.2) and CIDEr are means over
reports. CIDEr is CIDEr-D (Gaussian length penalty sigma = 6, clipped counts) scaled by 10,
so it lies in [0, 10], not [0, 1], and its n-gram IDF weights come from the evaluated set's
references: it is 0 for a single report and depends on which reports are scored together.
Every other value is a fraction in [0, 1].

**Clinical efficacy.** Each report becomes a 0/1 vector over the 14 entities (1 = the report
mentions it, negated or not, as the paper defines). Following the CheXpert-labeler CE
convention of R2Gen (Chen et al., EMNLP 2020), precision, recall and F1 are *micro*-averaged
over all (report, entity) decisions (scikit-learn ``precision_recall_fscore_support``,
``zero_division=0``). ``ACC`` is the label-wise accuracy: the mean over reports and entities
of exact agreement, i.e. ``1 - Hamming loss`` (an entity absent from both reports counts as
agreement). ``exact_match`` is the stricter subset accuracy (what scikit-learn's
``accuracy_score`` returns for multi-label input): the fraction of reports whose whole vector
matches. ``F1[<entity>]`` is the per-entity F1 (0 when an entity is absent from both the
references and the hypotheses, by the same ``zero_division=0``).
"""
from __future__ import annotations

import atexit

import difflib
import math
import re
import shutil
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
NLG_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")

# decimal numbers first, then words (inner hyphens / apostrophes kept), then any other char
_TOKEN_RE = re.compile(r"\d+(?:\.\d+)+|[a-z0-9]+(?:['\-][a-z0-9]+)*|[^\sa-z0-9]")
_ALNUM_RE = re.compile(r"[a-z0-9]")
#: Tokens written without a space before them, and tokens followed by no space.
_NO_SPACE_BEFORE = frozenset({".", ",", ";", ":", ")", "]", "!", "?", "%", "/"})
_NO_SPACE_AFTER = frozenset({"(", "[", "/"})


# --------------------------------------------------------------------------- tokenisation
def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``, punctuation split off, decimals kept whole."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _TOKEN_RE.findall(text.lower())


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens readably: no space before ". , ; : ) / %", none after "( /"."""
    out: list[str] = []
    prev = None
    for tok in tokens:
        if out and tok not in _NO_SPACE_BEFORE and prev not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append(tok)
        prev = tok
    return "".join(out)


def normalize_for_scoring(text: str) -> str:
    """What the NLG scorers see: :func:`tokenize`, punctuation tokens dropped, one space apart
    (our Python stand-in for pycocoevalcap's PTBTokenizer; see the module notes)."""
    return " ".join(t for t in tokenize(text) if _ALNUM_RE.search(t))


class Tokenizer:
    """Word-level report tokenizer: ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3,
    then the training vocabulary by decreasing count, ties alphabetical (deterministic)."""

    def __init__(self, itos: Sequence[str]):
        itos = list(itos)
        if tuple(itos[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"the vocabulary must start with {SPECIAL_TOKENS}")
        if len(set(itos)) != len(itos):
            raise ValueError("the vocabulary has duplicate tokens")
        if not all(isinstance(t, str) and t for t in itos):
            raise ValueError("vocabulary tokens must be non-empty strings")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(itos)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(len(SPECIAL_TOKENS))

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> "Tokenizer":
        """Vocabulary of the tokens seen at least ``min_count`` times in ``texts`` (pass the
        training reports only)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of reports, not one str")
        if not isinstance(min_count, (int, np.integer)) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        counts: Counter = Counter()
        n = 0
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
            counts.update(tokenize(t))
            n += 1
        if n == 0:
            raise ValueError("texts is empty")
        words = sorted((w for w, c in counts.items() if c >= min_count and
                        w not in SPECIAL_TOKENS), key=lambda w: (-counts[w], w))
        return cls(list(SPECIAL_TOKENS) + words)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, Tokenizer) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} tokens)"

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """``[<bos>, tokens..., <eos>]``; longer than ``max_len`` (which counts ``<bos>`` and
        ``<eos>``): the tokens are cut so that ``<eos>`` stays last. Unknown words: ``<unk>``.
        Not padded (pad with :attr:`pad_id` = 0 when batching)."""
        ids = [self.stoi.get(t, self.unk_id) for t in tokenize(text)]
        if max_len is not None:
            if max_len < 2:
                raise ValueError(f"max_len must be >= 2 (<bos> and <eos>), got {max_len}")
            ids = ids[:max_len - 2]
        return [self.bos_id] + ids + [self.eos_id]

    def decode(self, ids: Iterable) -> str:
        """Readable text of ``ids`` (ints, or a 1-D array / tensor): stops at the first
        ``<eos>``, skips ``<bos>`` and ``<pad>``; ``<unk>`` is written as "<unk>"."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        toks = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"token id {i} is outside the vocabulary (size {len(self)})")
            if i == self.eos_id:
                break
            if i in (self.bos_id, self.pad_id):
                continue
            toks.append(self.itos[i])
        return detokenize(toks)

    def to_dict(self) -> dict:
        """JSON-serialisable description (:meth:`from_dict` restores it)."""
        return {"kind": "echocare_lib.downstream.report_text.Tokenizer", "version": 1,
                "lowercase": True, "itos": list(self.itos)}

    @classmethod
    def from_dict(cls, d: dict) -> "Tokenizer":
        if not isinstance(d, dict) or "itos" not in d:
            raise ValueError("not a Tokenizer dict (no 'itos')")
        if d.get("version", 1) != 1:
            raise ValueError(f"unsupported Tokenizer dict version {d.get('version')!r}")
        return cls(d["itos"])


# --------------------------------------------------------------------------- input checks
def _check_pairs(references, hypotheses, *, allow_empty_reference: bool) -> None:
    for name, seq in (("references", references), ("hypotheses", hypotheses)):
        if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
            raise TypeError(f"{name} must be a list of str, got {type(seq).__name__}")
        for i, t in enumerate(seq):
            if not isinstance(t, str):
                raise TypeError(f"{name}[{i}] is {type(t).__name__}, not str")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if len(references) == 0:
        raise ValueError("no reports to score (empty lists)")
    if not allow_empty_reference:
        empty = [i for i, r in enumerate(references) if not normalize_for_scoring(r)]
        if empty:
            raise ValueError(f"references {empty[:5]} have no words to score against")


# --------------------------------------------------------------------------- NLG metrics
def _close_meteor(m) -> str:
    """Close the METEOR JVM of ``m`` (stdin, kill, reap, pipes); returns the end of its
    stderr, for error messages."""
    lock = getattr(m, "lock", None)
    if lock is not None and lock.locked():  # an error inside compute_score left it held;
        lock.release()                      # Meteor.__del__ would then block forever
    p = getattr(m, "meteor_p", None)
    if p is None:
        return ""
    try:
        p.stdin.close()
    except (OSError, ValueError):
        pass
    if p.poll() is None:
        p.kill()
    p.wait()
    err = ""
    try:
        err = p.stderr.read().decode(errors="replace").strip()[-400:]
    except (OSError, ValueError):
        pass
    for f in (p.stdout, p.stderr):
        try:
            f.close()
        except (OSError, ValueError):
            pass
    return err


def _meteor(gts: dict, res: dict, *, require_java: bool) -> tuple[float, list[float]]:
    """Corpus METEOR and per-report scores; (NaN, NaNs) with a warning when Java is missing
    or fails, unless ``require_java``."""
    n = len(gts)

    def unavailable(why: str):
        msg = f"METEOR unavailable: {why}"
        if require_java:
            raise RuntimeError(msg)
        warnings.warn(msg + "; METEOR is NaN (the other metrics do not need Java)",
                      RuntimeWarning, stacklevel=3)
        return math.nan, [math.nan] * n

    if shutil.which("java") is None:
        return unavailable("no 'java' on PATH (pycocoevalcap runs meteor-1.5.jar; install a "
                           "Java runtime >= 8, e.g. apt-get install default-jre-headless)")
    global _METEOR
    from pycocoevalcap.meteor.meteor import Meteor

    try:
        if _METEOR is None:
            # one JVM per process (starting it costs ~8 s, and a notebook scores every
            # trial); closed at interpreter exit, or at once after a failure
            _METEOR = Meteor()
            atexit.register(_shutdown_meteor)
        score, scores = _METEOR.compute_score(gts, res)
        return float(score), [float(s) for s in scores]
    except (OSError, ValueError) as e:  # JVM did not start / died: broken or empty output
        err = _shutdown_meteor()
        return unavailable(f"the METEOR JVM failed ({type(e).__name__}: {e})"
                           + (f"; stderr: {err}" if err else ""))


_METEOR = None


def _shutdown_meteor() -> str:
    """Close the shared METEOR JVM, if one runs (returns the end of its stderr)."""
    global _METEOR
    m, _METEOR = _METEOR, None
    return _close_meteor(m) if m is not None else ""


def nlg_metrics(references: Sequence[str], hypotheses: Sequence[str], *, meteor: bool = True,
                require_java: bool = False, return_per_report: bool = False):
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr of ``hypotheses`` against one reference each.

    Texts go through :func:`normalize_for_scoring` first. Returns a dict with exactly the keys
    :data:`NLG_KEYS`, fractions in [0, 1] except CIDEr (CIDEr-D x 10, in [0, 10]); with
    ``return_per_report=True`` also a DataFrame of the per-report scores (sentence BLEU,
    METEOR, ROUGE-L, CIDEr; one row per report), e.g. for paired tests. An empty hypothesis
    scores 0. ``meteor=False`` skips the JVM (METEOR NaN); see the module notes for
    ``require_java``."""
    _check_pairs(references, hypotheses, allow_empty_reference=False)
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: [normalize_for_scoring(r)] for i, r in enumerate(references)}
    res = {i: [normalize_for_scoring(h)] for i, h in enumerate(hypotheses)}
    bleu, bleu_each = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_each = Rouge().compute_score(gts, res)
    cider, cider_each = Cider().compute_score(gts, res)
    if meteor:
        met, met_each = _meteor(gts, res, require_java=require_java)
    else:
        met, met_each = math.nan, [math.nan] * len(gts)
    out = {f"BLEU-{k + 1}": float(bleu[k]) for k in range(4)}
    out.update({"METEOR": float(met), "ROUGE-L": float(rouge), "CIDEr": float(cider)})
    if not return_per_report:
        return out
    import pandas as pd

    per = pd.DataFrame({f"BLEU-{k + 1}": np.asarray(bleu_each[k], float) for k in range(4)})
    per["METEOR"] = np.asarray(met_each, float)
    per["ROUGE-L"] = np.asarray(rouge_each, float)
    per["CIDEr"] = np.asarray(cider_each, float)
    per.index.name = "report"
    return out, per


# --------------------------------------------------------------------------- CE metrics
def entity_matrix(texts: Sequence[str]) -> np.ndarray:
    """[n, 14] 0/1 matrix: :func:`~echocare_lib.sim.tasks.report.entity_vector` per text."""
    from ..sim.tasks.report import ENTITIES, entity_vector

    if len(texts) == 0:
        return np.zeros((0, len(ENTITIES)), np.uint8)
    return np.stack([entity_vector(t) for t in texts]).astype(np.uint8)


def ce_metrics(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    """Clinical-efficacy metrics over the 14 entities (definitions in the module notes):
    ``ACC`` (label-wise accuracy), ``exact_match``, micro ``precision`` / ``recall`` / ``F1``
    and ``F1[<entity>]`` for each entity; fractions in [0, 1]."""
    from sklearn.metrics import precision_recall_fscore_support

    from ..sim.tasks.report import ENTITIES

    _check_pairs(references, hypotheses, allow_empty_reference=True)
    y_true = entity_matrix(references)
    y_pred = entity_matrix(hypotheses)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="micro",
                                                 zero_division=0)
    _, _, f_each, _ = precision_recall_fscore_support(
        y_true, y_pred, average=None, labels=list(range(len(ENTITIES))), zero_division=0)
    out = {"ACC": float((y_true == y_pred).mean()),
           "exact_match": float((y_true == y_pred).all(axis=1).mean()),
           "precision": float(p), "recall": float(r), "F1": float(f)}
    out.update({f"F1[{e}]": float(v) for e, v in zip(ENTITIES, f_each)})
    return out


# --------------------------------------------------------------------------- diff
def _token_diff(reference: str, hypothesis: str) -> list[tuple[str, list[str]]]:
    """(label, tokens) runs of the alignment of the two token sequences."""
    a, b = tokenize(reference), tokenize(hypothesis)
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out: list[tuple[str, list[str]]] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            out.append(("match", a[i1:i2]))
            continue
        if i2 > i1:  # "delete" or "replace": reference-only words first
            out.append(("missing", a[i1:i2]))
        if j2 > j1:  # "insert" or "replace": then the over-generated words
            out.append(("extra", b[j1:j2]))
    return out


def diff_segments(reference: str, hypothesis: str) -> list[tuple[str, str]]:
    """Ordered ``(label, text)`` segments of a word-level alignment (``difflib.SequenceMatcher``
    on :func:`tokenize` tokens, punctuation included, no auto-junk): "match" (in both),
    "missing" (reference only) and "extra" (hypothesis only, over-generated). Where a stretch
    differs, its missing segment comes before its extra one. The match + missing segments
    spell the tokenised reference, the match + extra segments the tokenised hypothesis."""
    if not isinstance(reference, str) or not isinstance(hypothesis, str):
        raise TypeError("reference and hypothesis must be str")
    return [(lab, detokenize(toks)) for lab, toks in _token_diff(reference, hypothesis)]


# --------------------------------------------------------------------------- figure
def _diff_colours() -> dict:
    from ..session import OKABE_ITO

    return {"match": OKABE_ITO[0], "missing": "#999999", "extra": OKABE_ITO[3]}


_LEGEND_TEXT = {"match": "in both reports", "missing": "missing (ground truth only)",
                "extra": "over-generated (prediction only)"}


def _layout_lines(tokens: list[tuple[str, str]], width_pt: float, measure) -> list[list]:
    """Greedy line breaking of (token, label) pairs to ``width_pt``; punctuation stays glued to
    its word. Returns lines of runs ``[x_pt, text, label]`` (x from the line's left).

    Lines are filled with the widths of the unbreakable groups plus spaces (each group measured
    once), then each line's same-label runs are measured as whole strings to place them."""
    groups: list[list[tuple[str, str]]] = []  # a word with the punctuation glued to it
    prev = None
    for tok, lab in tokens:
        if groups and (tok in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER):
            groups[-1].append((tok, lab))
        else:
            groups.append([(tok, lab)])
        prev = tok
    space = measure(" ", "match")

    def group_width(g: list[tuple[str, str]]) -> float:
        w, k = 0.0, 0
        while k < len(g):  # same-label stretches of the group, each measured as one string
            j = k
            while j < len(g) and g[j][1] == g[k][1]:
                j += 1
            w += measure(detokenize(t for t, _ in g[k:j]), g[k][1])
            k = j
        return w

    def place(toks: list[tuple[str, str]]) -> list[list]:
        runs: list[list] = []  # [tokens, label, space_before]
        prev_tok = None
        for k, (tok, lab) in enumerate(toks):
            glued = tok in _NO_SPACE_BEFORE or prev_tok in _NO_SPACE_AFTER
            if runs and runs[-1][1] == lab:
                runs[-1][0].append(tok)
            else:
                runs.append([[tok], lab, k > 0 and not glued])
            prev_tok = tok
        x, out = 0.0, []
        for toks_, lab, sp in runs:
            x += space if sp else 0.0
            text = detokenize(toks_)
            out.append([x, text, lab])
            x += measure(text, lab)
        return out

    lines: list[list] = []
    current: list[tuple[str, str]] = []
    used = 0.0
    limit = 0.99 * width_pt  # 1 % for kerning between groups measured apart
    for g in groups:
        w = group_width(g)
        if current and used + space + w > limit:
            lines.append(place(current))
            current, used = [], 0.0
        used += (space if current else 0.0) + w
        current = current + g
    if current:
        lines.append(place(current))
    return lines


def plot_report_examples(cases: Sequence[dict], *, title: str | None = None,
                         width_in: float = 7.2, fontsize: float = 8.5):
    """Ground-truth vs generated reports, word by word (the paper's Fig. 7b).

    ``cases``: ``[{"case_id": str, "reference": str, "predictions": {model: str}}, ...]``.
    One row per (case, model): left the ground truth, right the model's report, both as
    wrapped lower-case text (the tokenizer's view). Words in both are dark blue; ground-truth
    words the model missed are light grey (left); over-generated words are bold reddish
    purple (right). Text is wrapped by measuring every run with Matplotlib's Agg text
    metrics, so nothing overlaps. Returns the figure (not saved)."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import Patch, Rectangle

    if isinstance(cases, dict) or not isinstance(cases, Sequence) or not cases:
        raise ValueError("cases must be a non-empty list of dicts")
    rows = []
    for k, c in enumerate(cases):
        if not isinstance(c, dict) or not {"case_id", "reference", "predictions"} <= set(c):
            raise ValueError(f"cases[{k}] needs 'case_id', 'reference' and 'predictions'")
        if not isinstance(c["predictions"], dict) or not c["predictions"]:
            raise ValueError(f"cases[{k}]['predictions'] must be a non-empty dict")
        for model, pred in c["predictions"].items():
            rows.append((str(c["case_id"]), str(model), c["reference"], pred))

    colours = _diff_colours()
    props = {"match": FontProperties(size=fontsize),
             "missing": FontProperties(size=fontsize),
             "extra": FontProperties(size=fontsize, weight="bold")}
    # Text widths in points, measured with Agg at the screen and print resolutions and the
    # largest kept: hinting makes glyphs slightly wider at low dpi (about +10 % at 72 dpi), so
    # runs placed with these widths neither overlap nor leave gaps at any of them.
    dpis = {100.0, 200.0}
    for key in ("figure.dpi", "savefig.dpi"):
        v = plt.rcParams[key]
        if isinstance(v, (int, float)):
            dpis.add(float(v))
    renderers = [(RendererAgg(8, 8, d), 72.0 / d) for d in sorted(dpis)]
    cache: dict = {}

    def width(text: str, prop) -> float:
        return max(r.get_text_width_height_descent(text, prop, ismath=False)[0] * k
                   for r, k in renderers)

    def measure(text: str, lab: str) -> float:
        key = (text, lab)
        if key not in cache:
            cache[key] = (width("a a", props[lab]) - width("aa", props[lab]) if text == " "
                          else width(text, props[lab]))
        return cache[key]

    # geometry, in points
    margin, gap, pad = 0.15 * 72, 0.2 * 72, 5.0
    col_w = (width_in * 72 - 2 * margin - gap) / 2
    text_w = col_w - 2 * pad
    line_h = fontsize * 1.4
    head_h = fontsize * 1.9
    row_gap = fontsize * 1.2
    laid = []
    for case_id, model, ref, pred in rows:
        diff = _token_diff(ref, pred)
        left = [(t, lab) for lab, toks in diff if lab != "extra" for t in toks]
        right = [(t, lab) for lab, toks in diff if lab != "missing" for t in toks]
        ll, rl = _layout_lines(left, text_w, measure), _layout_lines(right, text_w, measure)
        h = head_h + max(len(ll), len(rl), 1) * line_h + 2 * pad
        laid.append((case_id, model, ll, rl, h))
    top_h = (fontsize * 2.6 if title else 0.0) + fontsize * 2.8  # title + legend
    total_h = top_h + sum(r[4] for r in laid) + row_gap * (len(laid) - 1) + margin
    fig = plt.figure(figsize=(width_in, total_h / 72))
    W, H = width_in * 72, total_h

    if title:
        fig.text(0.5, 1 - fontsize * 0.6 / H, title, ha="center", va="top",
                 fontsize=fontsize + 2, fontweight="bold")
    handles = [Patch(facecolor=colours[k], edgecolor="none", label=_LEGEND_TEXT[k])
               for k in ("match", "missing", "extra")]
    fig.legend(handles=handles, loc="upper center", ncol=3, frameon=False,
               fontsize=fontsize, bbox_to_anchor=(0.5, 1 - (top_h - fontsize * 2.8) / H),
               handlelength=1.2, columnspacing=1.5)

    y = top_h
    for case_id, model, ll, rl, h in laid:
        for j, (lines, head) in enumerate(((ll, f"Case {case_id}: ground truth"),
                                           (rl, f"Case {case_id}: {model}"))):
            x0 = margin + j * (col_w + gap)
            ax = fig.add_axes((x0 / W, 1 - (y + h) / H, col_w / W, h / H))
            ax.set_axis_off()
            ax.set_xlim(0, col_w)
            ax.set_ylim(h, 0)  # points, y down from the panel's top
            ax.add_patch(Rectangle((0, 0), col_w, h, facecolor="white",
                                   edgecolor="#CCCCCC", linewidth=0.6, zorder=0))
            ax.text(pad, pad, head, ha="left", va="top", fontsize=fontsize + 0.5,
                    fontweight="bold", color="black")
            for i, line in enumerate(lines):
                base = pad + head_h + (i + 0.8) * line_h
                for x, text, lab in line:
                    ax.text(pad + x, base, text, ha="left", va="baseline",
                            fontproperties=props[lab], color=colours[lab])
        y += h + row_gap
    return fig


__all__ = ["SPECIAL_TOKENS", "NLG_KEYS", "Tokenizer", "tokenize", "detokenize",
           "normalize_for_scoring", "nlg_metrics", "entity_matrix", "ce_metrics",
           "diff_segments", "plot_report_examples"]
