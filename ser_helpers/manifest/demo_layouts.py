"""Copy a few clips of a manifest into the two label-folder layouts, to demonstrate `build_manifest`.

Taught in notebook 02 (`02_folder_manifest.ipynb`, split layout against flat layout).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common import display_name
from .base import SPLITS


def make_demo_layouts(manifest_dir, work_dir, per_label: int = 3) -> dict:
    """Copy a few clips of a manifest into the seed's two layouts, for a demonstration.

    `work_dir/split_layout/{train,val,test}/<LABEL WORD>/` keeps the manifest's (speaker-independent)
    splits; `work_dir/flat_layout/<label word>/<file_id>.wav` has label folders only. Returns both paths.
    """
    import shutil
    from ..common import read_manifest
    manifest_dir, work_dir = Path(manifest_dir), Path(work_dir)
    out = {"split_layout": work_dir / "split_layout", "flat_layout": work_dir / "flat_layout"}
    for s in SPLITS:
        df = read_manifest(manifest_dir / f"{s}.csv")
        for lab, grp in df.groupby("label"):
            picks = np.unique(np.linspace(0, len(grp) - 1, min(per_label, len(grp))).round().astype(int))
            for _, row in grp.iloc[picks].iterrows():  # spread over the split's speakers
                src = Path(row["path"])
                name = f"{row['file_id']}{src.suffix}" if "file_id" in row and row["file_id"] else src.name
                for dst in (out["split_layout"] / s / display_name(lab).upper() / name,
                            out["flat_layout"] / display_name(lab) / name):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dst)
    return out
