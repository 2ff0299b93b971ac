"""The meta-object classifier and the hierarchy-coherent loss (paper section 3.1, eqs. 2-3).

The classifier has N_p + N_o + N_a outputs (regions, meta-object types, anatomical types; the
class order of :mod:`echocare_lib.ontology`). Labels are ancestor-closed multi-hot vectors.

Eq. (2), in the form of C-HMCNN's max-constraint (Giunchiglia & Lukasiewicz, NeurIPS 2020),
computed on logits (sigmoid is monotonic, so min/max commute with it and the loss can use
the numerically stable ``softplus`` form of binary cross-entropy):

* a class labelled **positive** is scored by the *minimum* over the class and its ancestors,
  so a positive child can only score high if its whole path scores high;
* a class labelled **negative** is scored by the *maximum* over the class and its
  descendants, so a negative parent is only scored low if its whole subtree is low.

Eq. (3), binary cross-entropy on those scores, is averaged over the labelled (image, class)
entries of the batch; classes of levels a data set does not label are left out by
``label_mask``. The paper writes a bare sum. We average because L_PRE = L_MIM + L_HIE adds the
two with equal weight and L_MIM is a mean absolute error in [0, 1]: summed over ~150 classes,
L_HIE would start ~100x larger than L_MIM and swamp the pixel branch, which the paper's
unweighted sum clearly does not intend. ``reduction="sum"`` gives the literal eq. (3).

Inference returns the coherent probabilities ``sigmoid(min over ancestors-or-self)``: a child's
ancestor set contains its parent's, so a child never exceeds its parent.

No library implements this loss; it is written here (a few tensor lines).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def ancestor_matrix_from_parents(parent_index) -> np.ndarray:
    """Bool [N, N] with A[i, j] True iff j is i or an ancestor of i (parents precede children
    is *not* required)."""
    parent = np.asarray(parent_index, dtype=int)
    n = len(parent)
    A = np.eye(n, dtype=bool)
    for i in range(n):
        j, seen = parent[i], 0
        while j >= 0:
            A[i, j] = True
            j, seen = parent[j], seen + 1
            if seen > n:
                raise ValueError("parent_index has a cycle")
    return A


def _padded_index(sel: torch.Tensor) -> torch.Tensor:
    """Long [N, K]: row i lists the columns j with sel[i, j], padded with N (K = max count)."""
    n = sel.shape[0]
    idx = torch.full((n, int(sel.sum(1).max())), n, dtype=torch.long)
    for i in range(n):
        cols = sel[i].nonzero().flatten()
        idx[i, : len(cols)] = cols
    return idx


class Hierarchy(nn.Module):
    """Holds the ancestor matrix as buffers; computes coherent logits, loss and probabilities."""

    def __init__(self, ancestors) -> None:
        super().__init__()
        A = torch.as_tensor(np.asarray(ancestors, dtype=bool))
        if A.ndim != 2 or A.shape[0] != A.shape[1] or not bool(A.diagonal().all()):
            raise ValueError("ancestors must be a square bool matrix with a true diagonal "
                             "(each class is its own ancestor-or-self)")
        self.register_buffer("anc", A, persistent=False)        # [N, N]: i -> ancestors-or-self
        self.register_buffer("desc", A.T.clone(), persistent=False)  # i -> descendants-or-self
        # The same sets as padded column lists [N, K] (pad = N, a column of +-max appended to
        # z): reductions gather K columns (K = 3 and 32 on the ontology) instead of N = 149.
        self.register_buffer("anc_idx", _padded_index(A), persistent=False)
        self.register_buffer("desc_idx", _padded_index(A.T), persistent=False)

    @classmethod
    def from_ontology(cls, onto) -> "Hierarchy":
        return cls(onto.ancestor_matrix())

    @property
    def n_classes(self) -> int:
        return self.anc.shape[0]

    @staticmethod
    def _reduce(z: torch.Tensor, idx: torch.Tensor, how: str) -> torch.Tensor:
        # z [B, N] -> [B, N]: reduce z over the classes listed in row i of `idx` [N, K], padded
        # with N, which indexes an appended column of +-max (never selected by min/max over a
        # non-empty set, as the masked_fill of a dense [B, N, N] copy was; same values).
        big = torch.finfo(z.dtype).max
        pad = z.new_full((z.shape[0], 1), big if how == "min" else -big)
        zz = torch.cat([z, pad], 1).index_select(1, idx.flatten()).view(z.shape[0], *idx.shape)
        if how == "min":
            return zz.amin(dim=-1)
        return zz.amax(dim=-1)

    def positive_logits(self, z: torch.Tensor) -> torch.Tensor:
        """min over each class and its ancestors (eq. 2, positive case)."""
        return self._reduce(z, self.anc_idx, "min")

    def negative_logits(self, z: torch.Tensor) -> torch.Tensor:
        """max over each class and its descendants (eq. 2, negative case)."""
        return self._reduce(z, self.desc_idx, "max")

    def loss(self, z: torch.Tensor, labels: torch.Tensor,
             label_mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
        """L_HIE (eq. 3): mean over labelled (image, class) entries, or their sum."""
        labels = labels.to(z.dtype)
        pos = F.softplus(-self.positive_logits(z))   # -log sigmoid(z_pos)
        neg = F.softplus(self.negative_logits(z))    # -log(1 - sigmoid(z_neg))
        per = labels * pos + (1.0 - labels) * neg
        if label_mask is None:
            label_mask = torch.ones_like(per)
        label_mask = label_mask.to(per.dtype).expand_as(per)
        total = (per * label_mask).sum()
        if reduction == "sum":
            return total
        if reduction != "mean":
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        return total / label_mask.sum().clamp_min(1.0)

    def probabilities(self, z: torch.Tensor) -> torch.Tensor:
        """Coherent probabilities: a child never exceeds its parent.

        sigmoid(min over ancestors-or-self of z), computed as the min of the sigmoids (equal,
        as sigmoid is monotonic) so that it holds bitwise: CPU kernels may round sigmoid of
        the same value differently by 1 ulp at different positions of a tensor."""
        return self._reduce(torch.sigmoid(z), self.anc_idx, "min")


def prior_logits(ancestors) -> torch.Tensor:
    """Initial bias [N]: logit(1 / n_d) for a class at depth d, n_d = classes at that depth.

    A zero bias starts every class at probability 0.5, while an image has ~4 positives among
    ~150 classes. Adam moves the one bias of a class by about the learning rate per step, so
    reaching the prior log-odds (about -4) takes thousands of steps; in the meantime the
    encoder finds the faster route of a large constant feature direction, and its pooled
    features collapse (measured: their spread across images fell from 0.60 to 0.006 in 20
    steps, L_HIE stalled at the label prior, and with it L_MIM in the joint variant). Starting
    at the prior removes that pull, as RetinaNet's prior-probability bias does (Lin et al.,
    ICCV 2017, section 4.1)."""
    depth = torch.as_tensor(np.asarray(ancestors, dtype=bool)).sum(1)
    n_at = torch.bincount(depth)[depth].double()
    return torch.log(1.0 / (n_at - 1).clamp_min(1.0)).float()


class HierarchicalClassifier(nn.Module):
    """Linear meta-object classifier on the pooled feature, with its hierarchy."""

    def __init__(self, in_dim: int, ancestors) -> None:
        super().__init__()
        self.hierarchy = Hierarchy(ancestors)
        self.fc = nn.Linear(in_dim, self.hierarchy.n_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)
        with torch.no_grad():
            self.fc.bias.copy_(prior_logits(ancestors))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(pooled)
