"""Generate an IEMOCAP-format fixture (raw release layout, real line formats) from per-session code counts.

The 4-class counts per session are the published ones (REFERENCE_RESULTS.md: 5531 = neu 1708,
hap 595 + exc 1041, ang 1103, sad 1084; sessions 1085/1023/1151/1031/1241). The dropped codes
(xxx fru sur fea oth dis) have the corpus totals (2507 1849 107 40 3 2) spread over sessions.
Traps built in: header and annotator lines, CRLF (Session2), latin-1 bytes (Session3),
`Categorical/ Attribute/ Self-evaluation/` subfolders and `._*` files holding lines in the
summary format, and dialogs of one gender holding utterances of the other
(`Ses01F_impro01_M000` is the male speaker of Session 1).
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np

FOUR_CLASS_CODES = ("neu", "hap", "exc", "ang", "sad")
DROPPED_CODES = ("xxx", "fru", "sur", "fea", "oth", "dis")

IEMOCAP_COUNTS = {  # session -> code -> utterances
    1: {"ang": 229, "exc": 143, "hap": 135, "neu": 384, "sad": 194,
        "xxx": 480, "fru": 278, "sur": 16, "fea": 5, "oth": 1, "dis": 0},
    2: {"ang": 137, "exc": 210, "hap": 117, "neu": 362, "sad": 197,
        "xxx": 420, "fru": 325, "sur": 22, "fea": 8, "oth": 0, "dis": 1},
    3: {"ang": 240, "exc": 151, "hap": 135, "neu": 320, "sad": 305,
        "xxx": 560, "fru": 481, "sur": 25, "fea": 6, "oth": 1, "dis": 0},
    4: {"ang": 327, "exc": 238, "hap": 65, "neu": 258, "sad": 143,
        "xxx": 520, "fru": 303, "sur": 27, "fea": 19, "oth": 0, "dis": 1},
    5: {"ang": 170, "exc": 299, "hap": 143, "neu": 384, "sad": 245,
        "xxx": 527, "fru": 462, "sur": 17, "fea": 2, "oth": 1, "dis": 0},
}
IMPRO_4CLASS_TOTAL = 2943  # of the 5531 4-class utterances (2588 scripted)

SMALL_COUNTS = {s: {"ang": 2, "exc": 1, "hap": 1, "neu": 3, "sad": 2, "xxx": 2, "fru": 1, "sur": 1,
                    "fea": 0, "oth": 0, "dis": 0} for s in range(1, 6)}

_CODE_WORD = {"neu": "Neutral", "hap": "Happiness", "exc": "Excited", "ang": "Anger", "sad": "Sadness",
              "fru": "Frustration", "sur": "Surprise", "fea": "Fear", "oth": "Other", "dis": "Disgust",
              "xxx": "Other"}


def _impro_counts(counts: dict, impro_total: int | None) -> dict:
    """(session, code) -> number of impro utterances; 4-class cells sum to impro_total."""
    cells = [(s, c) for s in sorted(counts) for c in counts[s]]
    out = {cell: counts[cell[0]][cell[1]] // 2 for cell in cells}
    if impro_total is not None:
        four = [cell for cell in cells if cell[1] in FOUR_CLASS_CODES]
        n4 = sum(counts[s][c] for s, c in four)
        share = impro_total / n4
        for s, c in four:
            out[(s, c)] = int(counts[s][c] * share)
        rest = impro_total - sum(out[cell] for cell in four)
        for s, c in sorted(four, key=lambda sc: -counts[sc[0]][sc[1]]):
            if rest == 0:
                break
            if out[(s, c)] < counts[s][c]:
                out[(s, c)] += 1
                rest -= 1
    return out


def write_iemocap_fixture(root, counts: dict = IEMOCAP_COUNTS, impro_total: int | None = IMPRO_4CLASS_TOTAL,
                          with_audio: bool = False, seed: int = 0, crlf_session: int = 2,
                          latin1_session: int = 3, sr: int = 16000,
                          dur_range: tuple = (0.6, 9.0)) -> dict:
    """Write `root/Session{n}/...`; return the spec: per-session counts, impro counts, utterance ids.

    With `with_audio`, every utterance gets a short 16 kHz wav at the real path
    `Session{n}/sentences/wav/<dialog>/<utt>.wav` whose length matches its timestamps.
    """
    root = Path(root)
    rng = random.Random(seed)
    impro = _impro_counts(counts, impro_total)
    spec = {"utterances": {}, "impro": {}, "counts": counts}
    for s in sorted(counts):
        sdir = root / f"Session{s}"
        eval_dir = sdir / "dialog" / "EmoEvaluation"
        trans_dir = sdir / "dialog" / "transcriptions"
        for d in (eval_dir, trans_dir, eval_dir / "Categorical", eval_dir / "Attribute",
                  eval_dir / "Self-evaluation"):
            d.mkdir(parents=True, exist_ok=True)
        impro_dialogs = [f"Ses{s:02d}{g}_impro0{k}" for k in range(1, 4) for g in "FM"]
        script_dialogs = [f"Ses{s:02d}{g}_script0{j}_{m}" for j in (1, 2) for m in (1, 2) for g in "FM"]
        items = []  # (dialog_type, code)
        for code, n in counts[s].items():
            n_impro = impro[(s, code)]
            items += [("impro", code)] * n_impro + [("script", code)] * (n - n_impro)
        rng.shuffle(items)
        dialogs: dict[str, list[str]] = {d: [] for d in impro_dialogs + script_dialogs}
        cursor = {"impro": 0, "script": 0}
        for dtype, code in items:
            pool = impro_dialogs if dtype == "impro" else script_dialogs
            dialogs[pool[cursor[dtype] % len(pool)]].append(code)
            cursor[dtype] += 1
        for did, codes in dialogs.items():
            eval_lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            trans_lines = []
            t = rng.uniform(1.0, 5.0)
            per_gender = {"F": 0, "M": 0}
            for i, code in enumerate(codes):
                g = "FM"[(i + (1 if "M_" in did[:7] else 0)) % 2]
                utt = f"{did}_{g}{per_gender[g]:03d}"
                per_gender[g] += 1
                dur = round(rng.uniform(*dur_range), 4)
                start, end = round(t, 4), round(t + dur, 4)
                t = end + rng.uniform(0.1, 2.0)
                vad = f"[{rng.uniform(1, 5):.4f}, {rng.uniform(1, 5):.4f}, {rng.uniform(1, 5):.4f}]"
                eval_lines.append(f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t{vad}")
                word = _CODE_WORD[code]
                eval_lines += [f"C-E1:\t{word};\t()", f"C-E2:\t{word}; Frustration;\t(annoyed)",
                               f"C-F1:\tNeutral;\t()", "A-E1:\tval 3; act 2; dom  2;\t()",
                               "A-F1:\tval 2; act 3; dom  3;\t(mildly aggravated, attitude)", ""]
                text = f"Utterance {i} of {did} said with {word.lower()}."
                if s == latin1_session and i == 0:
                    text = "Un café, déjà vu, s'il vous plaît."
                trans_lines.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {text}")
                if i % 7 == 3:
                    trans_lines.append(f"{did}_{g}XX{i % 10} [{start:08.4f}-{end:08.4f}]: [LAUGHTER]")
                spec["utterances"][utt] = {"session": s, "code": code, "dialog_id": did, "text": text,
                                           "dialog_type": "impro" if "_impro" in did else "script",
                                           "start": start, "end": end}
                if with_audio:
                    _write_wav(sdir / "sentences" / "wav" / did / f"{utt}.wav", end - start, sr, rng)
            if s == latin1_session:
                eval_lines.insert(1, "% annotator note: r\u00e9sum\u00e9 na\u00efve")
            nl = "\r\n" if s == crlf_session else "\n"
            enc = "latin-1" if s == latin1_session else "utf-8"
            (eval_dir / f"{did}.txt").write_bytes((nl.join(eval_lines) + nl).encode(enc))
            (trans_dir / f"{did}.txt").write_bytes((nl.join(trans_lines) + nl).encode(enc))
            # traps: summary-format lines outside the top-level evaluation files
            first = eval_lines[2] if len(eval_lines) > 2 else ""
            for sub, suffix in (("Categorical", "_e1_cat"), ("Attribute", "_e1_atr"),
                                ("Self-evaluation", "_self")):
                (eval_dir / sub / f"{did}{suffix}.txt").write_text(first + "\n" + first + "\n")
            (eval_dir / f"._{did}.txt").write_bytes(
                b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X\n" + first.encode() + b"\n")
    spec["n_impro_4class"] = sum(v for (s, c), v in impro.items() if c in FOUR_CLASS_CODES)
    return spec


def _write_wav(path: Path, dur: float, sr: int, rng: random.Random):
    import soundfile as sf
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(int(dur * sr), 1)
    t = np.arange(n) / sr
    noise = np.random.default_rng(len(str(path))).standard_normal(n)
    x = 0.1 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.01 * noise
    sf.write(str(path), x.astype(np.float32), sr, subtype="PCM_16")


def expected_4class(counts: dict = IEMOCAP_COUNTS) -> dict:
    """Per-session and per-label totals of the 4-class preset (exc merged into hap)."""
    per_session = {f"Session{s}": sum(counts[s][c] for c in FOUR_CLASS_CODES) for s in counts}
    per_label = {"ang": 0, "hap": 0, "neu": 0, "sad": 0}
    for s in counts:
        for c in FOUR_CLASS_CODES:
            per_label["hap" if c == "exc" else c] += counts[s][c]
    dropped = {c: sum(counts[s][c] for s in counts) for c in DROPPED_CODES}
    return {"per_session": per_session, "per_label": per_label,
            "dropped": {c: n for c, n in dropped.items() if n}}
