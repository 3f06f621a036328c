"""The generated corpus's settings: sizes, speakers and voices, emotion prosody, wording shares.

Taught in notebook 00 (`00_make_demo_corpus.ipynb`, which prints the prosody table and explains
where emotion lives in the generated speech). The word lists themselves are data files
(`words/en.json`, `words/zh.json`, loaded by `corpus.words`).
"""
from __future__ import annotations

GENERATOR_VERSION = 3

# ----------------------------------------------------------------------------- sizes
#: per size: utterances per IEMOCAP session and clips per CASIA speaker x emotion
SIZES: dict[str, dict] = {
    "dryrun": {"iemocap_per_session": 7, "casia_per_emotion": 1, "dialog_len": 4},  # ser_helpers.dryrun
    "smoke": {"iemocap_per_session": 30, "casia_per_emotion": 4, "dialog_len": 8},
    "default": {"iemocap_per_session": 500, "casia_per_emotion": 70, "dialog_len": 20},
    "large": {"iemocap_per_session": 1200, "casia_per_emotion": 150, "dialog_len": 24},
}

SESSIONS = [1, 2, 3, 4, 5]
CASIA_SPEAKERS = ["liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang"]
CASIA_EMOTIONS = ["angry", "fear", "happy", "neutral", "sad", "surprise"]
IEMOCAP_CODES = ["neu", "hap", "exc", "sad", "ang", "fru", "sur", "xxx"]

#: shares of the IEMOCAP codes (real IEMOCAP: xxx 25 %, fru 18 %, neu 17 %, exc 10 %, ang 11 %, sad 11 %,
#: hap 6 %, sur 1 %); xxx and fru are scaled down a little so that the 4-class subset is larger.
CODE_SHARES: dict[str, float] = {"neu": 0.20, "hap": 0.08, "exc": 0.12, "sad": 0.13, "ang": 0.13,
                                 "fru": 0.15, "sur": 0.02, "xxx": 0.17}
IMPRO_SHARE = 0.55
SCRIPTS = ["script01_1", "script01_2", "script02_1", "script02_2", "script03_1", "script03_2"]

# ----------------------------------------------------------------------------- voices and prosody
#: (gender letter, espeak variant, base pitch 0-99, base rate wpm, base range, gain dB) per session speaker
EN_SPEAKERS: dict[int, dict[str, tuple]] = {
    1: {"F": ("f1", 52, 190, 50, 0.0), "M": ("m1", 42, 185, 45, -1.0)},
    2: {"F": ("f2", 58, 200, 55, -2.0), "M": ("m2", 38, 180, 40, 1.0)},
    3: {"F": ("f3", 48, 180, 45, 1.5), "M": ("m3", 46, 195, 50, -0.5)},
    4: {"F": ("f4", 55, 205, 60, -1.0), "M": ("m4", 40, 190, 42, 0.5)},
    5: {"F": ("f5", 50, 195, 52, 0.5), "M": ("m7", 44, 188, 48, -1.5)},
}
ZH_SPEAKERS: dict[str, tuple] = {
    "liuchanhg": ("f2", 54, 205, 50, 0.0),
    "wangzhe": ("m2", 40, 198, 45, -1.0),
    "zhaoquanyin": ("f4", 50, 212, 55, 1.0),
    "ZhaoZuoxiang": ("m3", 44, 196, 42, -0.5),
}
#: emotion prosody relative to the speaker's baseline:
#: (pitch offset, rate factor, loudness dB, pitch-range offset). Arousal differs a lot, valence little.
PROSODY: dict[str, tuple[float, float, float, float]] = {
    "neu": (0.0, 1.00, 0.0, 0.0),
    "sad": (-5.0, 0.90, -2.5, -10.0),
    "ang": (12.0, 1.20, 6.0, 30.0),
    "hap": (14.0, 1.16, 5.0, 36.0),
    "exc": (17.0, 1.22, 6.0, 40.0),
    "fru": (6.0, 1.08, 2.5, 14.0),
    "sur": (18.0, 1.06, 4.0, 40.0),
    "fea": (12.0, 1.14, 1.0, 20.0),
}
#: per-utterance jitter (standard deviations): pitch, rate (relative), loudness dB, range
JITTER = (4.0, 0.06, 1.5, 8.0)
#: emotional intensity per utterance ~ U(lo, hi) scales the emotion's prosody offsets
INTENSITY = (0.5, 1.2)
SNR_DB = (12.0, 30.0)
SILENCE_SEC = (0.05, 0.4)
MAX_CLIP_SEC = 12.0
ESPEAK_SR = 22050

# ----------------------------------------------------------------------------- wording (the word lists: words/*.json)
#: P(wording category | emotion). Categories: neutral, pos, ang (anger words), sad (sadness words),
#: sur (surprise words), fea (fear words).
WORDING: dict[str, dict[str, float]] = {
    "neu": {"neutral": 0.82, "pos": 0.07, "sad": 0.06, "ang": 0.05},
    "hap": {"pos": 0.64, "neutral": 0.30, "sur": 0.03, "sad": 0.03},
    "exc": {"pos": 0.66, "neutral": 0.28, "sur": 0.06},
    "sad": {"sad": 0.45, "neutral": 0.33, "ang": 0.16, "pos": 0.06},
    "ang": {"ang": 0.45, "neutral": 0.33, "sad": 0.16, "pos": 0.06},
    "fru": {"ang": 0.45, "sad": 0.20, "neutral": 0.35},
    "sur": {"sur": 0.55, "neutral": 0.30, "pos": 0.15},
    "fea": {"fea": 0.55, "neutral": 0.35, "sad": 0.10},
}
CASIA_CODE = {"angry": "ang", "fear": "fea", "happy": "hap", "neutral": "neu", "sad": "sad", "surprise": "sur"}

#: share of emotionally worded sentences that open with one of the emotion's key phrases (`words.KEY_OPENERS`)
KEY_SHARE = 0.8

#: the corpus's default speaker-independent split (IEMOCAP sessions, CASIA speakers), used by the checks
SPLIT_GROUPS = {"train": ["Session1", "Session2", "Session3", "liuchanhg", "wangzhe"],
                "val": ["Session4", "zhaoquanyin"], "test": ["Session5", "ZhaoZuoxiang"]}
