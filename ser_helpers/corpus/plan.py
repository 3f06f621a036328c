"""Planning the corpus: every utterance's text, code, speaker and rendering settings (all randomness here).

Taught in notebook 00 (`00_make_demo_corpus.ipynb`): prosody mostly separates arousal, wording
mostly valence. Everything is drawn up front from `seed`, so the same size and seed give the same plan.
"""
from __future__ import annotations

import re
import zlib
from collections import Counter

import numpy as np

from ..common import SERError
from .settings import (CASIA_CODE, CASIA_EMOTIONS, CASIA_SPEAKERS, CODE_SHARES, EN_SPEAKERS, IMPRO_SHARE, INTENSITY,
                       JITTER, KEY_SHARE, PROSODY, SCRIPTS, SESSIONS, SILENCE_SEC, SIZES, SNR_DB, WORDING, ZH_SPEAKERS)
from .words import EN_OPENERS, EN_SLOTS, EN_TEMPLATES, KEY_OPENERS, ZH_SLOTS, ZH_TEMPLATES


def _quota(n: int, shares: dict[str, float], rng: np.random.Generator) -> list[str]:
    """Exactly n codes in the given shares (largest remainder), shuffled."""
    keys = list(shares)
    p = np.array([shares[k] for k in keys], float)
    p = p / p.sum()
    exact = p * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    codes = [k for k, c in zip(keys, counts) for _ in range(c)]
    rng.shuffle(codes)
    return codes


class _SentenceMaker:
    """Fill sentence templates; never returns a sentence it returned before (unless `reuse`)."""

    def __init__(self, templates, slots, rng, lang):
        self.templates, self.slots, self.rng, self.lang = templates, slots, rng, lang
        self.used: set[str] = set()

    def one(self, category: str) -> str:
        self._category = category
        for _ in range(200):
            tpl = self.templates[category][self.rng.integers(len(self.templates[category]))]
            text = re.sub(r"\{(\w+)\}", lambda m: self._fill(m.group(1)), tpl)
            if self.lang == "en":
                text = text[0].upper() + text[1:]
            if text not in self.used:
                self.used.add(text)
                return text
        raise SERError(f"ran out of distinct {self.lang} '{category}' sentences; use a smaller corpus size")

    def _fill(self, slot):
        keys = KEY_OPENERS[self.lang].get(self._category)
        if slot == "o" and keys and self.rng.random() < KEY_SHARE:
            return keys[self.rng.integers(len(keys))]
        options = EN_OPENERS if (slot == "o" and self.lang == "en") else self.slots[slot]
        return options[self.rng.integers(len(options))]


def _pick(rng, dist: dict[str, float]) -> str:
    keys = list(dist)
    p = np.array([dist[k] for k in keys], float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def _wording(rng, code: str) -> str:
    if code == "xxx":  # annotators disagreed: any wording
        return _pick(rng, {"neutral": 0.45, "pos": 0.2, "ang": 0.2, "sad": 0.15})
    return _pick(rng, WORDING[code])


def _utterance_text(maker, rng, code) -> str:
    """One sentence, sometimes two or three (longer clips, so length bucketing matters)."""
    n = 1 if rng.random() < 0.9 else (2 if rng.random() < 0.7 else 3)
    wording = _wording(rng, code)
    return " ".join(maker.one(wording) for _ in range(n))


def _prosody(rng, code, speaker: tuple, lang: str) -> dict:
    variant, pitch0, rate0, range0, gain0 = speaker
    d_pitch, rate_f, loud_db, d_range = PROSODY["neu" if code == "xxx" else code]
    if code == "xxx":  # ambiguous: a random mild mixture
        k = rng.uniform(-0.5, 0.8)
        d_pitch, rate_f, loud_db, d_range = 10 * k, 1 + 0.1 * k, 3 * k, 25 * k
    k = rng.uniform(*INTENSITY)
    pitch = pitch0 + k * d_pitch + rng.normal(0, JITTER[0])
    rate = rate0 * (1 + k * (rate_f - 1)) * (1 + rng.normal(0, JITTER[1]))
    gain = gain0 + k * loud_db + rng.normal(0, JITTER[2])
    prange = range0 + k * d_range + rng.normal(0, JITTER[3])
    base = "en-us" if lang == "en" else "cmn"
    return {"voice": f"{base}+{variant}", "pitch": int(np.clip(round(pitch), 0, 99)),
            "rate": int(np.clip(round(rate), 90, 320)), "range": int(np.clip(round(prange), 0, 99)),
            "gain_db": round(float(gain), 3), "snr_db": round(float(rng.uniform(*SNR_DB)), 3),
            "lead": round(float(rng.uniform(*SILENCE_SEC)), 3), "trail": round(float(rng.uniform(*SILENCE_SEC)), 3)}


def _n_script_dialogs(n_script: int, dialog_len: int) -> int:
    return max(2, min(2 * len(SCRIPTS), 2 * round(n_script / (2 * dialog_len))))


def _plan(size: str, seed: int) -> tuple[list[dict], list[dict], dict]:
    """Every utterance of the corpus with its text and rendering settings (no audio yet)."""
    cfg = SIZES[size]
    rng = np.random.default_rng([seed, 7])  # one stream, drawn in this order: scripts, English, Mandarin
    en_maker = _SentenceMaker(EN_TEMPLATES, EN_SLOTS, rng, "en")
    zh_maker = _SentenceMaker(ZH_TEMPLATES, ZH_SLOTS, rng, "zh")
    script_lines = _plan_scripts(cfg, en_maker, rng)
    en = [job for s in SESSIONS for job in _plan_session(s, cfg, script_lines, en_maker, rng)]
    zh = _plan_casia(cfg, zh_maker, rng)
    for job in en + zh:
        job["noise_seed"] = [seed, zlib.crc32(job["rel"].encode())]
    settings = {"prosody": PROSODY, "jitter": JITTER, "intensity": INTENSITY, "snr_db": SNR_DB,
                "silence_sec": SILENCE_SEC, "wording": WORDING, "code_shares": CODE_SHARES,
                "impro_share": IMPRO_SHARE, "en_speakers": EN_SPEAKERS, "zh_speakers": ZH_SPEAKERS}
    return en, zh, settings


def _plan_scripts(cfg: dict, en_maker: _SentenceMaker, rng) -> dict[str, list[tuple[str, str]]]:
    """The scripts: fixed lines (intended emotion + text), shared by every session as in IEMOCAP."""
    n_script = cfg["iemocap_per_session"] - round(cfg["iemocap_per_session"] * IMPRO_SHARE)
    per_script = max(4, int(np.ceil(n_script / _n_script_dialogs(n_script, cfg["dialog_len"]))))
    script_lines = {}
    for name in SCRIPTS:
        intended = _quota(per_script, {k: v for k, v in CODE_SHARES.items() if k != "xxx"}, rng)
        script_lines[name] = [(c, _utterance_text(en_maker, rng, c)) for c in intended]
    return script_lines


def _plan_session(s: int, cfg: dict, script_lines: dict, en_maker: _SentenceMaker, rng) -> list[dict]:
    """One IEMOCAP session: improvised and scripted dialogs, each utterance spoken by F or M."""
    n = cfg["iemocap_per_session"]
    n_impro = round(n * IMPRO_SHARE)
    n_script = n - n_impro
    impro_codes = _quota(n_impro, CODE_SHARES, rng)
    n_impro_dialogs = max(2, 2 * round(n_impro / (2 * cfg["dialog_len"])))
    n_script_dialogs = _n_script_dialogs(n_script, cfg["dialog_len"])
    impro_names = [f"Ses{s:02d}{lead}_impro{(i // 2) + 1:02d}" for i, lead in
                   zip(range(n_impro_dialogs), "FM" * n_impro_dialogs)]
    script_names = [f"Ses{s:02d}{lead}_{SCRIPTS[(i // 2) % len(SCRIPTS)]}" for i, lead in
                    zip(range(n_script_dialogs), "FM" * n_script_dialogs)]
    rows = []
    for i, code in enumerate(impro_codes):
        rows.append((impro_names[i * n_impro_dialogs // n_impro], "impro", code,
                     _utterance_text(en_maker, rng, code)))
    for j, dialog in enumerate(script_names):
        lo, hi = j * n_script // n_script_dialogs, (j + 1) * n_script // n_script_dialogs
        lines = script_lines[dialog.split("_", 1)[1]]
        for k in range(hi - lo):
            intended, text = lines[k % len(lines)]
            if rng.random() < CODE_SHARES["xxx"]:  # annotators disagreed on this performance
                code = "xxx"
            elif rng.random() < 0.8:
                code = intended
            else:
                code = _pick(rng, {k: v for k, v in CODE_SHARES.items() if k != "xxx"})
            rows.append((dialog, "script", code, text))
    en: list[dict] = []
    counters: Counter = Counter()
    for dialog, dtype, code, text in rows:
        gender = "F" if rng.random() < 0.5 else "M"
        utt = f"{dialog}_{gender}{counters[(dialog, gender)]:03d}"
        counters[(dialog, gender)] += 1
        job = {"lang": "en", "session": s, "dialog": dialog, "dialog_type": dtype, "utt_id": utt,
               "code": code, "text": text, "gender": gender,
               "rel": f"iemocap_raw/Session{s}/sentences/wav/{dialog}/{utt}.wav"}
        job.update(_prosody(rng, code, EN_SPEAKERS[s][gender], "en"))
        en.append(job)
    return en


def _plan_casia(cfg: dict, zh_maker: _SentenceMaker, rng) -> list[dict]:
    """The Mandarin clips: every CASIA speaker x emotion, `casia_per_emotion` each."""
    zh: list[dict] = []
    for spk in CASIA_SPEAKERS:
        for emo in CASIA_EMOTIONS:
            code = CASIA_CODE[emo]
            for i in range(cfg["casia_per_emotion"]):
                fid = f"{spk}_{emo}_{i + 1:03d}"
                text = zh_maker.one(_wording(rng, code))
                job = {"lang": "zh", "speaker": spk, "emotion": emo, "code": code, "file_id": fid, "text": text,
                       "rel": f"casia_raw/{spk}/{emo}/{fid}.wav"}
                job.update(_prosody(rng, code, ZH_SPEAKERS[spk], "zh"))
                zh.append(job)
    return zh
