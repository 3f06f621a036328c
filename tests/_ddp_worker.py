"""Worker for test_acoustic.test_ddp_two_processes_gloo (run under torchrun, 2 CPU processes, gloo).

Trains the tiny model for 2 epochs and writes rank{R}.json: world size, training sample indices this
rank saw per epoch, and a hash of its final weights.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

from transformers import TrainerCallback

from ser_helpers import acoustic
from ser_helpers.common import write_json_atomic

train, val, base, out = sys.argv[1:5]
rank = int(os.environ["RANK"])
seen: dict[int, list[int]] = defaultdict(list)
original_getitem = acoustic.ClipDataset.__getitem__


def logging_getitem(self, item):
    if self.train:
        index, epoch = item
        seen[epoch].append(index)
    return original_getitem(self, item)


acoustic.ClipDataset.__getitem__ = logging_getitem


class Record(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kw):
        import torch.distributed as dist
        h = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().numpy().tobytes())
        write_json_atomic(Path(out) / f"rank{rank}.json",
                          {"world_size": dist.get_world_size() if dist.is_initialized() else 1,
                           "seen": {str(k): v for k, v in seen.items()}, "weights_sha": h.hexdigest()})


acoustic.train_wav2vec2(train, val, out, base_model=base, epochs=2, batch_size=4, learning_rate=1e-3,
                        max_duration_sec=1.0, device="cpu", progress=False, plots=False, patience=0,
                        callbacks=[Record()])
