"""The fusion networks: MLP and gated fusion, ensembles of them, logits.

Taught in notebook 07 (07_train_late_fusion.ipynb).
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Sequence

import numpy as np

from .config import FusionConfig


# ============================================================================ networks
def _torch():
    import torch
    return torch


@contextlib.contextmanager
def single_thread():
    """Run tiny-network torch work on one thread: on a busy 2-core machine extra threads make it ~50x slower."""
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_network(arch: dict):
    """An ensemble (mean logits) of `arch['n_members']` MLP or gated fusion networks."""
    torch = _torch()
    nn = torch.nn

    class MLPFusion(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(arch["input_dim"], arch["hidden_size"]), nn.ReLU(),
                                     nn.Dropout(arch["dropout"]), nn.Linear(arch["hidden_size"], arch["n_classes"]))

        def forward(self, x):
            return self.net(x), None

    class GatedFusion(nn.Module):
        """Audio and text branches each give logits; a gate g(x) in (0, 1) weighs audio vs text per example."""

        def __init__(self):
            super().__init__()
            h, c, p = arch["hidden_size"], arch["n_classes"], arch["dropout"]
            self.register_buffer("audio_idx", torch.tensor(arch["audio_idx"], dtype=torch.long))
            self.register_buffer("text_idx", torch.tensor(arch["text_idx"], dtype=torch.long))
            self.audio = nn.Sequential(nn.Linear(len(arch["audio_idx"]), h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, c))
            self.text = nn.Sequential(nn.Linear(len(arch["text_idx"]), h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, c))
            self.gate = nn.Sequential(nn.Linear(arch["input_dim"], arch["gate_hidden_size"]), nn.ReLU(),
                                      nn.Linear(arch["gate_hidden_size"], 1))

        def forward(self, x):
            la = self.audio(x.index_select(1, self.audio_idx))
            lt = self.text(x.index_select(1, self.text_idx))
            g = torch.sigmoid(self.gate(x))
            return g * la + (1 - g) * lt, g.squeeze(1)

    class Ensemble(nn.Module):
        def __init__(self):
            super().__init__()
            cls = GatedFusion if arch["type"] == "gated" else MLPFusion
            self.members = nn.ModuleList([cls() for _ in range(arch.get("n_members", 1))])

        def forward(self, x):
            outs = [m(x) for m in self.members]
            logits = torch.stack([o[0] for o in outs]).mean(0)
            gate = None if outs[0][1] is None else torch.stack([o[1] for o in outs]).mean(0)
            return logits, gate

    return Ensemble()


def make_arch(cfg: FusionConfig, feature_names: Sequence[str], n_classes: int) -> dict:
    arch_type = cfg.fusion_arch
    audio_idx = [i for i, c in enumerate(feature_names) if c.startswith("audio_") or c == "lang_is_zh"]
    text_idx = [i for i, c in enumerate(feature_names) if not c.startswith("audio_")]
    if arch_type == "gated" and (not any(c.startswith("audio_") for c in feature_names)
                                 or all(c.startswith("audio_") or c == "lang_is_zh" for c in feature_names)):
        warnings.warn(f"mode {cfg.mode!r} has a single modality; the gated arch falls back to mlp", stacklevel=2)
        arch_type = "mlp"
    return {"type": arch_type, "requested_type": cfg.fusion_arch, "input_dim": len(feature_names),
            "hidden_size": int(cfg.hidden_size), "gate_hidden_size": int(cfg.gate_hidden_size),
            "dropout": float(cfg.dropout), "n_classes": int(n_classes), "audio_idx": audio_idx,
            "text_idx": text_idx, "n_members": 1}




def _stack_members(arch: dict, members: list):
    """One Ensemble module holding trained single networks."""
    ens = build_network(dict(arch, n_members=len(members)))
    for slot, m in zip(ens.members, members):
        slot.load_state_dict(m.members[0].state_dict())
    ens.eval()
    return ens


def _logits(net, X: np.ndarray, device: str = "cpu"):
    torch = _torch()
    net = net.to(device)
    with torch.no_grad():
        logits, gate = net(torch.tensor(np.array(X, dtype=np.float32), device=device))
    return logits.double().cpu().numpy(), (None if gate is None else gate.double().cpu().numpy())
