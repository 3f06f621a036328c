"""Write a curriculum notebook from a compact cell list (no outputs, one `parameters` cell).

    from tools.nbbuild import write_notebook
    write_notebook("notebooks/03_train_wav2vec2.ipynb", [
        ("md", "# 03 · Fine-tune wav2vec2\n..."),
        ("code", "import ser_helpers as ser\nser.nb_setup()"),
        ("params", 'run_dir = "outputs/cpu"\nseed = 42'),
        ("code", "result = ser.acoustic.train_wav2vec2(...)"),
    ])
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def write_notebook(path, cells) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    n_params = 0
    for kind, src in cells:
        src = src.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        elif kind == "code":
            nb.cells.append(nbformat.v4.new_code_cell(src))
        elif kind == "params":
            cell = nbformat.v4.new_code_cell(src)
            cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
            n_params += 1
        else:
            raise ValueError(f"unknown cell kind {kind!r}")
    if n_params != 1:
        raise ValueError(f"{path}: a notebook needs exactly one parameters cell, got {n_params}")
    for i, cell in enumerate(nb.cells):  # stable ids: clean diffs
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


if __name__ == "__main__":  # pragma: no cover
    print(__doc__, file=sys.stderr)
