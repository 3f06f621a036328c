"""The generated emotional-speech corpus (notebook 00, `ser synth-corpus`).

Real corpora (IEMOCAP, CASIA) are licensed, so the default run speaks its own corpus with the
espeak-ng synthesizer (PyPI `espeakng-loader`, driven through ctypes) and writes it in the REAL raw
layouts, so the same parsers serve generated and real data:

* `iemocap_raw/Session1..5/dialog/EmoEvaluation/<dialog>.txt`, `.../dialog/transcriptions/<dialog>.txt`,
  `.../sentences/wav/<dialog>/<utt_id>.wav` (English, one female + one male speaker per session,
  improvised and scripted dialogs, codes neu hap exc sad ang fru sur xxx);
* `casia_raw/<speaker>/<emotion>/<file_id>.wav` + `casia_raw/transcripts.csv` (Mandarin, voice `cmn`);
* `corpus_info.json` (size, seed, counts, generator settings).

Emotion lives where it lives in real speech: prosody (pitch level and range, rate, loudness) mostly
separates AROUSAL (angry/happy vs sad/neutral) with only weak valence cues; the WORDING mostly
separates valence, and a good share of sentences has neutral wording. Every speaker has its own voice
and baseline; every utterance gets prosodic jitter, background noise at a random SNR and
leading/trailing silence. It is not real speech: it is a stand-in that lets every stage run offline.

Determinism: espeak-ng keeps state between calls, so each utterance is rendered in a fresh forked
process (`maxtasksperchild=1`) after `espeak_ng_SetRandSeed`; all random choices are made up front
from `seed`, so the same size and seed give byte-identical files.
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import io
import json
import multiprocessing as mp
import os
import re
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import SAMPLE_RATE, SERError, atomic_dir, read_json, write_json_atomic

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

# ----------------------------------------------------------------------------- wording
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

EN_OPENERS = ["", "", "", "", "", "", "", "Well, ", "Okay, ", "Look, ", "So, ", "Honestly, ", "You know, ", "I mean, ",
              "Listen, ", "Right, ", "Hey, ", "Oh, ", "Anyway, ", "And ", "But "]
EN_SLOTS: dict[str, list[str]] = {
    "time": ["this morning", "yesterday", "on Tuesday", "after lunch", "around noon", "last week",
             "before work", "on the way home", "last night", "on Friday", "at the weekend", "earlier today"],
    "place": ["post office", "library", "bank", "office", "train station", "grocery store", "pharmacy",
              "garage", "bakery", "hardware store", "dentist", "airport", "gym", "city hall", "laundromat",
              "parking lot", "museum", "gas station"],
    "goto": ["went to", "stopped by", "drove to", "walked over to", "passed the", "called the"],
    "thing": ["meeting", "package", "train", "bus", "report", "appointment", "class", "delivery", "ferry",
              "interview", "inspection", "shuttle"],
    "clock": ["four thirty", "nine", "half past two", "ten fifteen", "seven", "noon", "eight forty",
              "three o'clock", "eleven"],
    "task": ["check the mail", "call the landlord", "move the car", "print the forms", "pay the phone bill",
             "return the books", "book the room", "water the plants", "fill in the forms",
             "pick up the keys", "change the filter", "renew the license", "sort the files"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend", "the end of the month"],
    "rel": ["brother", "sister", "cousin", "neighbor", "roommate", "boss", "aunt", "uncle", "colleague",
            "landlord"],
    "nact": ["moved the couch", "fixed the sink", "changed the tires", "sorted the papers",
             "painted the fence", "bought a ladder", "cleaned the garage", "read the manual",
             "measured the window", "ordered new shelves", "took the bus"],
    "box": ["drawer", "blue folder", "top cabinet", "car", "kitchen", "hallway closet", "back room"],
    "num": ["ten", "fifteen", "twenty", "thirty", "forty", "five"],
    "info": ["phone number", "address", "name", "flight number", "zip code", "account number"],
    # positive
    "pexcl": ["Oh wow, ", "Yes, ", "Guess what, ", "Great news, ", "Hooray, ", ""],
    "pverb": ["got", "won", "passed", "finished", "found", "landed"],
    "good": ["job", "scholarship", "exam", "tickets", "promotion", "award", "apartment", "contract",
             "prize", "internship"],
    "padj": ["wonderful", "amazing", "perfect", "fantastic", "beautiful", "brilliant", "lovely", "awesome",
             "marvelous", "delightful"],
    "pfeel": ["happy", "thrilled", "excited", "glad", "delighted", "proud", "grateful", "overjoyed"],
    "pevent": ["got married", "bought the house", "won the game", "got engaged", "had the baby",
               "found a great place", "got the funding", "made the team"],
    "fun": ["celebrate", "go dancing", "see the ocean", "travel together", "have a party", "go to the concert"],
    "pbest": ["best", "happiest", "greatest", "nicest", "most wonderful"],
    "pspan": ["day", "week", "summer", "year", "evening"],
    # anger
    "bad": ["lied to me", "took my car", "forgot the rent", "broke the lock", "read my messages",
            "ignored my calls", "lost my keys", "blamed me", "wrecked the kitchen", "cheated", "stole my idea",
            "hung up on me"],
    "aadj": ["ridiculous", "unacceptable", "outrageous", "absurd", "insulting", "disgusting", "a joke"],
    "aexcuse": ["excuses", "lies", "attitude", "stupid games", "nonsense", "threats", "complaining"],
    "ahome": ["house", "office", "room", "car", "life", "sight"],
    "aruin": ["ruined", "wrecked", "destroyed", "messed up", "trashed"],
    "insult": ["idiot", "liar", "jerk", "selfish fool", "coward", "moron"],
    "afeel": ["furious", "angry", "mad", "fed up", "livid", "sick and tired"],
    # sadness
    "who": ["my mother", "my father", "my grandmother", "him", "her", "my old friends", "my dog",
            "home", "my brother", "the old days"],
    "sfeel": ["lonely", "empty", "hopeless", "lost", "heartbroken", "miserable", "sad", "down"],
    "sevent": ["birthday", "party", "wedding", "graduation", "show", "game"],
    "loss": ["job", "apartment", "savings", "best friend", "scholarship", "house", "dog"],
    "sadj": ["falling apart", "gone", "hopeless", "so hard", "broken", "too much", "so empty"],
    # surprise / fear
    "sq": ["you did what", "he is here", "she said yes", "they moved out", "it was you", "we won",
           "the store closed", "you knew all along"],
    "fthing": ["someone is outside", "the lights went out", "I heard a noise", "the door was open",
               "the car is following us", "the floor is shaking"],
}
EN_TEMPLATES: dict[str, list[str]] = {
    "neutral": [
        "{o}I {goto} {place} {time}.", "{o}The {thing} is at {clock}.", "{o}did you {task} {time}?",
        "{o}we need to {task} before {day}.", "{o}my {rel} {nact} {time}.",
        "{o}can you tell me where the {place} is?", "{o}I think the {thing} papers are in the {box}.",
        "{o}it takes about {num} minutes to get to the {place}.", "{o}let me write down your {info}.",
        "{o}they said the {thing} would start at {clock}.", "{o}the {place} closes at {clock} on {day}.",
        "{o}I will {task} on {day}.", "{o}my {rel} is at the {place} {time}.",
        "{o}please {task} when you get a chance.", "{o}I need your {info} for the {thing}.",
    ],
    "pos": [
        "{o}{pexcl}I {pverb} the {good}!", "{o}this is the {pbest} {pspan} I have had in years.",
        "{o}I am so {pfeel} about the {good}.", "{o}we finally {pevent}, it is {padj}!",
        "{o}I can't wait to {fun} with you.", "{o}thank you so much, this is {padj}.",
        "{o}I love it, the {good} is {padj}.", "{o}you made me so {pfeel} {time}.",
        "{o}everything went {padj}, we {pevent}!", "{o}I feel {pfeel}, let's {fun}!",
    ],
    "ang": [
        "{o}I can't believe you {bad} again.", "{o}this is {aadj}, I want to see the manager.",
        "{o}don't you dare tell me you {bad}!", "{o}I am sick of your {aexcuse}.",
        "{o}get out of my {ahome} right now!", "{o}you {aruin} everything, you {insult}.",
        "{o}I am so {afeel} with you.", "{o}why the hell have you {bad}?",
        "{o}shut up, I am {afeel} with your {aexcuse}.", "{o}you {bad}, that is {aadj}!",
    ],
    "sad": [
        "{o}I miss {who} so much.", "{o}I feel so {sfeel} since {time}.", "{o}nobody came to my {sevent}.",
        "{o}I lost my {loss} and I don't know what to do.", "{o}it's over, {who} is not coming back.",
        "{o}I just want to cry, everything is {sadj}.", "{o}I'm sorry, I couldn't save my {loss}.",
        "{o}I still think about {who} every night.", "{o}I feel {sfeel}, my {loss} is gone.",
        "{o}it hurts, I never said goodbye to {who}.",
    ],
    "sur": ["{o}wait, {sq}? I had no idea!", "{o}no way, {sq}?", "{o}really, {sq}? I never expected that.",
            "{o}what, {sq}? Since when?"],
    "fea": ["{o}I'm scared, {fthing}.", "{o}please help, {fthing}!", "{o}I'm afraid {fthing}."],
}

ZH_SLOTS: dict[str, list[str]] = {
    "time": ["今天上午", "昨天", "星期二", "午饭以后", "上个星期", "下班以后", "刚才", "昨天晚上", "周末", "早上"],
    "place": ["邮局", "图书馆", "银行", "办公室", "火车站", "超市", "药店", "修车厂", "面包店", "五金店", "机场",
              "体育馆", "市政府", "洗衣店", "停车场", "博物馆"],
    "goto": ["去了", "路过了", "开车去了", "走到了"],
    "thing": ["会议", "快递", "火车", "公交车", "报告", "预约", "课", "面试", "检查", "班车"],
    "clock": ["四点半", "九点", "两点半", "十点一刻", "七点", "中午", "八点四十", "三点", "十一点"],
    "task": ["取快递", "给房东打电话", "挪车", "打印表格", "交电费", "还书", "订房间", "浇花", "填表",
             "拿钥匙", "换滤网", "整理文件"],
    "day": ["星期一", "星期三", "星期四", "星期五", "周末", "月底"],
    "rel": ["哥哥", "姐姐", "表弟", "邻居", "室友", "老板", "阿姨", "叔叔", "同事"],
    "nact": ["搬了沙发", "修了水管", "换了轮胎", "整理了文件", "刷了栅栏", "买了梯子", "打扫了车库",
             "看了说明书", "量了窗户", "坐了公交车"],
    "num": ["十", "十五", "二十", "三十", "四十", "五"],
    "info": ["电话号码", "地址", "名字", "航班号", "邮编"],
    "pexcl": ["太好了，", "哇，", "真棒，", "天哪，", ""],
    "pverb": ["拿到了", "赢得了", "通过了", "得到了"],
    "good": ["工作", "奖学金", "考试", "门票", "升职机会", "大奖", "合同", "实习"],
    "padj": ["美好", "棒", "完美", "精彩", "漂亮", "幸福"],
    "pfeel": ["高兴", "开心", "激动", "快乐", "满意", "自豪"],
    "pevent": ["结婚", "买房子", "赢了比赛", "订婚", "找到好地方", "拿到资金"],
    "fun": ["庆祝一下", "去跳舞", "去看海", "一起旅行", "开个派对"],
    "bad": ["对我撒谎", "开走我的车", "忘了交房租", "弄坏了门锁", "偷看我的短信", "不接我电话", "弄丢了钥匙",
            "怪我", "骗我", "偷了我的主意"],
    "aadj": ["太过分", "太离谱", "荒唐", "不可理喻", "欺人太甚"],
    "aexcuse": ["借口", "谎话", "态度", "把戏", "废话", "威胁"],
    "ahome": ["我家", "办公室", "房间", "我的车"],
    "aruin": ["毁了", "搞砸了", "弄坏了"],
    "insult": ["混蛋", "骗子", "白痴", "自私鬼", "胆小鬼"],
    "afeel": ["气死了", "火大", "受够了", "烦透了", "愤怒"],
    "who": ["妈妈", "爸爸", "奶奶", "他", "她", "老朋友", "我的狗", "家乡", "哥哥"],
    "sfeel": ["孤独", "空虚", "绝望", "失落", "心碎", "难过", "伤心"],
    "sevent": ["生日", "聚会", "婚礼", "毕业典礼", "演出"],
    "loss": ["工作", "房子", "积蓄", "好朋友", "奖学金", "狗"],
    "sadj": ["完了", "没了", "没有希望", "太难了", "碎了"],
    "sq": ["你做了什么", "他来了", "她答应了", "他们搬走了", "原来是你", "我们赢了", "商店关门了"],
    "fthing": ["外面好像有人", "灯突然灭了", "我听到奇怪的声音", "门是开着的", "有车在跟着我们", "地在晃"],
    "o": ["", "", "", "嗯，", "好吧，", "你看，", "其实，", "我说，", "对了，", "那个，"],
}
ZH_TEMPLATES: dict[str, list[str]] = {
    "neutral": ["{o}我{time}{goto}{place}。", "{o}{thing}在{clock}开始。", "{o}你{time}{task}了吗？",
                "{o}我们得在{day}之前{task}。", "{o}我{rel}{time}{nact}。", "{o}请问{place}在哪儿？",
                "{o}去{place}大概要{num}分钟。", "{o}请把你的{info}写下来。", "{o}{place}{day}{clock}关门。",
                "{o}我{day}去{task}。", "{o}我{rel}{time}在{place}。", "{o}{thing}需要你的{info}。"],
    "pos": ["{o}{pexcl}我{pverb}{good}！", "{o}今天是我这几年最{pfeel}的一天。", "{o}我真的好{pfeel}，{good}有了！",
            "{o}我们终于{pevent}了，真是太{padj}了！", "{o}我等不及要和你{fun}了。", "{o}谢谢你，这真是太{padj}了。",
            "{o}你让我{time}特别{pfeel}。", "{o}一切都很{padj}，我们{pevent}了！"],
    "ang": ["{o}你怎么又{bad}？", "{o}这简直{aadj}了，我要找你们经理！", "{o}我受够了你的{aexcuse}！",
            "{o}马上从{ahome}滚出去！", "{o}你把一切都{aruin}，你这个{insult}！", "{o}我真的{afeel}！",
            "{o}你居然{bad}，{aadj}！", "{o}闭嘴，我对你的{aexcuse}{afeel}！"],
    "sad": ["{o}我好想{who}。", "{o}从{time}起我就觉得好{sfeel}。", "{o}没有人来参加我的{sevent}。",
            "{o}我丢了{loss}，不知道该怎么办。", "{o}{who}走了，再也不会回来了。", "{o}我只想哭，一切都{sadj}。",
            "{o}我每天晚上都想起{who}。", "{o}我好{sfeel}，我的{loss}没了。"],
    "sur": ["{o}什么？{sq}？我完全不知道！", "{o}真的吗？{sq}？", "{o}天哪，{sq}？真没想到。"],
    "fea": ["{o}我好害怕，{fthing}。", "{o}快来帮帮我，{fthing}！", "{o}我怕{fthing}。"],
}

#: emotion key phrases that open most emotionally worded sentences (what a text model can learn)
KEY_OPENERS: dict[str, dict[str, list[str]]] = {
    "en": {"pos": ["Oh, I'm so happy, ", "This is great, ", "I love this, ", "Wonderful, ", "How lovely, "],
           "ang": ["Damn it, ", "I hate this, ", "This is ridiculous, ", "How dare you, ", "I'm so angry, ",
                   "This is terrible, ", "I can't take this anymore, "],
           "sad": ["I'm so sad, ", "It hurts, ", "I feel awful, ", "Oh no, ", "I can't stop crying, ",
                   "This is terrible, ", "I can't take this anymore, "],
           "sur": ["Wow, ", "What a surprise, ", "Oh my god, "],
           "fea": ["Oh no, I'm scared, ", "Help, "]},
    "zh": {"pos": ["太开心了，", "真好，", "我好喜欢，", "太棒了，"],
           "ang": ["气死我了，", "可恶，", "太过分了，", "我恨死了，", "太糟糕了，", "我受不了了，"],
           "sad": ["好难过，", "心好痛，", "唉，好伤心，", "我想哭，", "太糟糕了，", "我受不了了，"],
           "sur": ["哇，", "没想到，", "我的天，"],
           "fea": ["好可怕，", "救命，"]},
}
KEY_SHARE = 0.8

# annotator vocabulary of the real EmoEvaluation files
ANNOTATOR_NAMES = {"neu": "Neutral", "hap": "Happiness", "exc": "Excited", "sad": "Sadness", "ang": "Anger",
                   "fru": "Frustration", "sur": "Surprise", "fea": "Fear", "oth": "Other"}
VAD = {"neu": (2.5, 2.5, 2.5), "hap": (3.5, 3.0, 3.0), "exc": (4.0, 3.5, 3.0), "sad": (2.0, 2.0, 2.0),
       "ang": (1.5, 4.0, 4.0), "fru": (2.0, 3.5, 3.5), "sur": (3.5, 4.0, 2.5), "xxx": (2.5, 3.0, 3.0)}
CATEGORICAL_NAMES = {"neu": "Neutral state", "hap": "Happiness", "exc": "Excited", "sad": "Sadness", "ang": "Anger",
                     "fru": "Frustration", "sur": "Surprise", "xxx": "Other"}
EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"


@dataclass
class SynthResult:
    """What `synth_corpus` built (or found)."""
    output_dir: Path
    reused: bool
    counts: dict
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def iemocap_dir(self) -> Path:
        return self.output_dir / "iemocap_raw"

    @property
    def casia_dir(self) -> Path:
        return self.output_dir / "casia_raw"

    def __repr__(self) -> str:
        how = "reused" if self.reused else f"built in {self.seconds:.1f} s"
        return (f"SynthResult({str(self.output_dir)!r}, {how}, en={self.counts.get('en_clips')}, "
                f"zh={self.counts.get('zh_clips')})")


# ----------------------------------------------------------------------------- espeak-ng through ctypes
_ESPEAK: dict = {}
_SYNTH_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_CHUNKS: list = []


def _espeak_callback(wav, n, _events):
    if n > 0:
        _CHUNKS.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    return 0


_CALLBACK = _SYNTH_CB(_espeak_callback)


def _espeak():
    """Load and initialise libespeak-ng once per process (children inherit it through fork)."""
    if "lib" in _ESPEAK:
        return _ESPEAK["lib"]
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover
        raise SERError("the corpus generator needs the package espeakng-loader (pip install espeakng-loader)") from exc
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    sr = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)  # 2 = synchronous
    if sr != ESPEAK_SR:
        raise SERError(f"espeak-ng initialisation failed or gave sample rate {sr} (expected {ESPEAK_SR})")
    lib.espeak_SetSynthCallback(_CALLBACK)
    _ESPEAK["lib"] = lib
    return lib


def espeak_synth(text: str, voice: str, rate: int, pitch: int, pitch_range: int, volume: int = 60) -> np.ndarray:
    """Speak `text` with an espeak-ng voice; int16 samples at 22050 Hz. Call it in a fresh process for identical bytes."""
    lib = _espeak()
    _CHUNKS.clear()
    lib.espeak_ng_SetRandSeed(12345)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise SERError(f"espeak-ng has no voice {voice!r}")
    # espeakRATE=1, espeakVOLUME=2, espeakPITCH=3, espeakRANGE=4
    for param, value in ((1, rate), (2, volume), (3, pitch), (4, pitch_range)):
        lib.espeak_SetParameter(param, int(value), 0)
    data = text.encode("utf-8") + b"\0"
    err = lib.espeak_Synth(data, len(data), 0, 0, 0, 1, None, None)  # 1 = espeakCHARS_UTF8
    lib.espeak_Synchronize()
    if err != 0:
        raise SERError(f"espeak-ng failed ({err}) on {text!r}")
    return np.concatenate(_CHUNKS) if _CHUNKS else np.zeros(0, np.int16)


def _render(job: dict) -> tuple[str, float]:
    """Render one utterance (runs in its own forked process) and write its 16 kHz wav; returns (rel path, seconds)."""
    import soundfile as sf

    from .audio import resample

    raw = espeak_synth(job["text"], job["voice"], job["rate"], job["pitch"], job["range"])
    if raw.size == 0:
        raise SERError(f"espeak-ng produced no audio for {job['rel']} ({job['text']!r})")
    speech = resample(raw.astype(np.float32) / 32768.0, ESPEAK_SR, SAMPLE_RATE)
    speech = speech[: int(MAX_CLIP_SEC * SAMPLE_RATE)]
    rng = np.random.default_rng(job["noise_seed"])
    speech = speech * (0.55 * 10 ** (job["gain_db"] / 20.0))
    lead = np.zeros(int(job["lead"] * SAMPLE_RATE), np.float32)
    trail = np.zeros(int(job["trail"] * SAMPLE_RATE), np.float32)
    clip = np.concatenate([lead, speech, trail])
    rms = float(np.sqrt(np.mean(speech ** 2)) + 1e-9)
    noise = rng.standard_normal(clip.size).astype(np.float32)
    # mildly coloured (low-passed) background noise
    noise = np.convolve(noise, np.array([0.5, 0.3, 0.2], np.float32), mode="same")
    noise *= rms / (float(np.sqrt(np.mean(noise ** 2))) + 1e-9) * 10 ** (-job["snr_db"] / 20.0)
    clip = np.tanh(clip + noise).astype(np.float32)  # soft limiter: no hard clipping
    path = Path(job["root"]) / job["rel"]
    buf = io.BytesIO()
    sf.write(buf, clip, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    path.write_bytes(buf.getvalue())
    return job["rel"], clip.size / SAMPLE_RATE


# ----------------------------------------------------------------------------- planning (all randomness here)
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
    rng = np.random.default_rng([seed, 7])
    en_maker = _SentenceMaker(EN_TEMPLATES, EN_SLOTS, rng, "en")
    zh_maker = _SentenceMaker(ZH_TEMPLATES, ZH_SLOTS, rng, "zh")

    # scripts: fixed lines (intended emotion + text), shared by every session as in IEMOCAP
    n_script = cfg["iemocap_per_session"] - round(cfg["iemocap_per_session"] * IMPRO_SHARE)
    per_script = max(4, int(np.ceil(n_script / _n_script_dialogs(n_script, cfg["dialog_len"]))))
    script_lines = {}
    for name in SCRIPTS:
        intended = _quota(per_script, {k: v for k, v in CODE_SHARES.items() if k != "xxx"}, rng)
        script_lines[name] = [(c, _utterance_text(en_maker, rng, c)) for c in intended]

    en: list[dict] = []
    for s in SESSIONS:
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
    for job in en + zh:
        job["noise_seed"] = [seed, zlib.crc32(job["rel"].encode())]
    settings = {"prosody": PROSODY, "jitter": JITTER, "intensity": INTENSITY, "snr_db": SNR_DB,
                "silence_sec": SILENCE_SEC, "wording": WORDING, "code_shares": CODE_SHARES,
                "impro_share": IMPRO_SHARE, "en_speakers": EN_SPEAKERS, "zh_speakers": ZH_SPEAKERS}
    return en, zh, settings


# ----------------------------------------------------------------------------- writing the raw layouts
def _annotator_lines(rng, code: str) -> list[str]:
    names = ANNOTATOR_NAMES
    lines = []
    for who in ("C-E1", "C-E2", "C-E4"):
        if code == "xxx":
            cat = names[list(names)[rng.integers(len(names))]]
        elif rng.random() < 0.8:
            cat = names[code]
        else:
            cat = names[["neu", "fru", "exc", "sad", "ang", "hap"][rng.integers(6)]]
        lines.append(f"{who}:\t{cat};\t()")
    v, a, d = VAD[code]
    for who in ("A-E1", "A-E2"):
        lines.append(f"{who}:\tval {int(np.clip(round(v + rng.normal(0, .6)), 1, 5))}; "
                     f"act {int(np.clip(round(a + rng.normal(0, .6)), 1, 5))}; "
                     f"dom  {int(np.clip(round(d + rng.normal(0, .6)), 1, 5))};\t()")
    return lines


def _write_iemocap_text(root: Path, en: list[dict], durations: dict, seed: int) -> None:
    rng = np.random.default_rng([seed, 11])
    by_dialog: dict[tuple, list[dict]] = {}
    for job in en:
        by_dialog.setdefault((job["session"], job["dialog"]), []).append(job)
    for (s, dialog), jobs in by_dialog.items():
        t = float(rng.uniform(1.0, 5.0))
        emo = [EMO_HEADER, ""]
        trans = []
        for job in jobs:
            start, end = t, t + durations[job["rel"]]
            t = end + float(rng.uniform(0.2, 2.5))
            v, a, d = (np.clip(x + rng.normal(0, 0.4), 1, 5) for x in VAD[job["code"]])
            v, a, d = (round(x * 2) / 2 for x in (v, a, d))
            emo.append(f"[{start:.4f} - {end:.4f}]\t{job['utt_id']}\t{job['code']}\t[{v:.4f}, {a:.4f}, {d:.4f}]")
            emo.extend(_annotator_lines(rng, job["code"]))
            emo.append("")
            trans.append(f"{job['utt_id']} [{start:08.4f}-{end:08.4f}]: {job['text']}")
        base = root / "iemocap_raw" / f"Session{s}" / "dialog"
        (base / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
        (base / "transcriptions").mkdir(parents=True, exist_ok=True)
        (base / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(emo) + "\n", encoding="utf-8")
        # like the real corpus: per-annotator sidecars in a subfolder that parsers must ignore
        (base / "EmoEvaluation" / "Categorical").mkdir(exist_ok=True)
        cat = [f"{job['utt_id']} :{CATEGORICAL_NAMES.get(job['code'], 'Other')}; ()" for job in jobs]
        (base / "EmoEvaluation" / "Categorical" / f"{dialog}_e1_cat.txt").write_text("\n".join(cat) + "\n",
                                                                                      encoding="utf-8")
        (base / "transcriptions" / f"{dialog}.txt").write_text("\n".join(trans) + "\n", encoding="utf-8")


def _write_casia_text(root: Path, zh: list[dict]) -> None:
    with open(root / "casia_raw" / "transcripts.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file_id", "speaker", "emotion", "text"])
        for job in zh:
            w.writerow([job["file_id"], job["speaker"], job["emotion"], job["text"]])


def _counts(en, zh, durations) -> dict:
    durs = np.array(list(durations.values()))
    en4 = Counter(j["code"] for j in en)
    return {
        "en_clips": len(en), "zh_clips": len(zh),
        "en_by_session_code": {f"Session{s}": dict(sorted(Counter(j["code"] for j in en if j["session"] == s).items()))
                               for s in SESSIONS},
        "en_by_code": dict(sorted(en4.items())),
        "en_by_dialog_type": dict(Counter(j["dialog_type"] for j in en)),
        "zh_by_speaker_emotion": {spk: dict(sorted(Counter(j["emotion"] for j in zh if j["speaker"] == spk).items()))
                                  for spk in CASIA_SPEAKERS},
        "duration_sec": {"total": round(float(durs.sum()), 2), "median": round(float(np.median(durs)), 3),
                         "min": round(float(durs.min()), 3), "max": round(float(durs.max()), 3),
                         "share_over_6s": round(float(np.mean(durs > 6.0)), 4)},
    }


def _corpus_matches(output_dir: Path, size: str, seed: int) -> dict | None:
    info_path = output_dir / "corpus_info.json"
    if not info_path.exists():
        return None
    try:
        info = read_json(info_path)
    except (OSError, ValueError):
        return None
    if (info.get("size"), info.get("seed"), info.get("generator_version")) != (size, seed, GENERATOR_VERSION):
        return None
    if info.get("sizes") != SIZES[size]:
        return None
    if not (output_dir / "iemocap_raw").is_dir() or not (output_dir / "casia_raw" / "transcripts.csv").exists():
        return None
    return info


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def synth_corpus(output_dir: str | os.PathLike, size: str = "default", seed: int = 0,
                 workers: int | None = None, progress: bool = True) -> SynthResult:
    """Generate (or reuse) the corpus under `output_dir`: iemocap_raw/, casia_raw/, corpus_info.json.

    An existing corpus with the same size, seed and generator version is reused. A new one is
    built in a temp folder and renamed onto `output_dir` (atomic; an old corpus is replaced).
    """
    if size not in SIZES:
        raise SERError(f"unknown corpus size {size!r}; choose one of {sorted(SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SERError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    output_dir = Path(output_dir)
    t0 = time.perf_counter()
    if output_dir.exists() and not output_dir.is_dir():
        raise SERError(f"{output_dir}: exists and is not a directory")
    info = _corpus_matches(output_dir, size, seed)
    if info is not None:
        return SynthResult(output_dir, True, info.get("counts", {}), time.perf_counter() - t0, info)
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / "corpus_info.json").exists():
        raise SERError(f"{output_dir}: folder exists, is not empty and holds no corpus_info.json; "
                       "refusing to replace it (choose an empty or new folder)")

    en, zh, settings = _plan(size, seed)
    _espeak()  # load the library once in the parent; each forked child inherits it
    workers = int(workers or _cpu_count())
    with atomic_dir(output_dir) as tmp:
        dirs = {str(Path(j["rel"]).parent) for j in en + zh}
        for d in sorted(dirs):
            (tmp / d).mkdir(parents=True, exist_ok=True)
        jobs = [dict(j, root=str(tmp)) for j in en + zh]
        durations: dict[str, float] = {}
        from tqdm.auto import tqdm
        ctx = mp.get_context("fork")
        with ctx.Pool(processes=max(1, workers), maxtasksperchild=1) as pool:
            for rel, dur in tqdm(pool.imap_unordered(_render, jobs, chunksize=1), total=len(jobs),
                                 desc=f"synth {size} corpus", disable=not progress):
                durations[rel] = dur
        _write_iemocap_text(tmp, en, durations, seed)
        _write_casia_text(tmp, zh)
        counts = _counts(en, zh, durations)
        info = {"size": size, "seed": seed, "generator_version": GENERATOR_VERSION, "sample_rate": SAMPLE_RATE,
                "synthesizer": "espeak-ng (espeakng-loader), voices en-us+<variant> and cmn+<variant>",
                "counts": counts, "sizes": SIZES[size], "settings": settings,
                "note": "Generated speech, not real recordings: emotion is encoded in prosody (mostly arousal) "
                        "and wording (mostly valence)."}
        write_json_atomic(tmp / "corpus_info.json", info)
    return SynthResult(output_dir, False, counts, time.perf_counter() - t0, info)


# ----------------------------------------------------------------------------- reading it back (for checks)
EMO_LINE = re.compile(r"^\[(\d+\.\d+) - (\d+\.\d+)\]\t(\S+)\t(\w+)\t\[(\d+\.\d+), (\d+\.\d+), (\d+\.\d+)\]\s*$")
TRANS_LINE = re.compile(r"^(\S+) \[(\d+\.\d+)-(\d+\.\d+)\]: (.*)$")


def read_corpus_table(output_dir: str | os.PathLike):
    """Every clip of a generated (or real-layout) corpus as a DataFrame: path, language, code, label4,
    speaker, group (session or CASIA speaker), dialog_type, text. Used by the separability check and tests."""
    import pandas as pd
    root = Path(output_dir)
    rows = []
    for emo_file in sorted((root / "iemocap_raw").glob("Session*/dialog/EmoEvaluation/*.txt")):
        session = emo_file.parts[-4]
        texts = {}
        tfile = emo_file.parent.parent / "transcriptions" / emo_file.name
        if tfile.exists():
            for line in tfile.read_text(encoding="utf-8").splitlines():
                m = TRANS_LINE.match(line)
                if m:
                    texts[m.group(1)] = m.group(4)
        for line in emo_file.read_text(encoding="utf-8").splitlines():
            m = EMO_LINE.match(line)
            if not m:
                continue
            utt, code = m.group(3), m.group(4)
            dialog = utt.rsplit("_", 1)[0]
            rows.append({"path": str(emo_file.parents[2] / "sentences" / "wav" / dialog / f"{utt}.wav"),
                         "language": "en", "code": code, "speaker": f"{session}_{utt.rsplit('_', 1)[1][0]}",
                         "group": session, "dialog_type": "impro" if "_impro" in utt else "script",
                         "text": texts.get(utt, ""), "utt_id": utt})
    tpath = root / "casia_raw" / "transcripts.csv"
    if tpath.exists():
        tdf = pd.read_csv(tpath, dtype=str, keep_default_na=False)
        for r in tdf.itertuples():
            rows.append({"path": str(root / "casia_raw" / r.speaker / r.emotion / f"{r.file_id}.wav"),
                         "language": "zh", "code": CASIA_CODE.get(r.emotion, r.emotion), "speaker": r.speaker,
                         "group": r.speaker, "dialog_type": "", "text": r.text, "utt_id": r.file_id})
    df = pd.DataFrame(rows)
    four = {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad"}
    df["label4"] = df["code"].map(four)
    return df


# ----------------------------------------------------------------------------- showing it (notebook 00)
def count_tables(output_dir: str | os.PathLike) -> dict:
    """Counts of the corpus as DataFrames: IEMOCAP session x code, dialog types, CASIA speaker x emotion."""
    import pandas as pd
    table = read_corpus_table(output_dir)
    en = table[table["language"] == "en"]
    casia = pd.read_csv(Path(output_dir) / "casia_raw" / "transcripts.csv", dtype=str)
    out = {
        "iemocap_session_code": pd.crosstab(en["group"], en["code"], margins=True, margins_name="total"),
        "iemocap_speaker_code": pd.crosstab(en["speaker"], en["code"]),
        "iemocap_dialog_type": pd.crosstab(en["group"], en["dialog_type"], margins=True, margins_name="total"),
        "casia_speaker_emotion": pd.crosstab(casia["speaker"], casia["emotion"], margins=True, margins_name="total"),
        "four_class_by_split": pd.crosstab([table["group"].map({g: s for s, gs in SPLIT_GROUPS.items() for g in gs}),
                                            table["language"]], table["label4"]),
    }
    return out


def prosody_table():
    """The emotion prosody settings (relative to each speaker's baseline) as a DataFrame."""
    import pandas as pd
    from .common import display_name
    rows = [{"code": c, "emotion": display_name(c), "pitch offset": p, "rate factor": r, "loudness dB": db,
             "pitch-range offset": rg} for c, (p, r, db, rg) in PROSODY.items()]
    return pd.DataFrame(rows).set_index("code")


def example_clips(output_dir: str | os.PathLike, per_label: int = 1, seed: int = 0):
    """A few 4-class clips per language and label (path, language, label4, code, speaker, text)."""
    table = read_corpus_table(output_dir)
    table = table[table["label4"].notna()]
    parts = [g.sample(min(per_label, len(g)), random_state=seed) for _, g in table.groupby(["language", "label4"])]
    import pandas as pd
    return pd.concat(parts).reset_index(drop=True)[["language", "label4", "code", "speaker", "text", "path"]]


def show_audio_examples(examples) -> None:
    """Display an audio player with its label and transcript for every row of `example_clips`."""
    from IPython.display import Audio, Markdown, display

    from .common import display_name
    for r in examples.itertuples():
        display(Markdown(f"**{r.language} · {display_name(r.label4)}** ({r.code}, {r.speaker}): {r.text}"))
        display(Audio(filename=r.path, rate=SAMPLE_RATE))


def _pitch_track(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """f0 (librosa.yin, 10 ms hop) and a voicing mask (frames within 30 dB of the loudest, with plausible f0)."""
    import librosa
    f0 = librosa.yin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=160)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=160)[0][: f0.size]
    db = 20 * np.log10(rms + 1e-5)
    voiced = (db > db.max() - 30) & (f0 > 65) & (f0 < 480)
    return f0, voiced


def plot_emotion_examples(examples, path=None, language: str = "en"):
    """Waveform and pitch track (librosa.pyin) of one clip per emotion; PNG at `path`."""
    import librosa
    import matplotlib.pyplot as plt
    import soundfile as sf

    from .common import LABELS, display_name
    from .plots import save_figure
    rows = examples[examples["language"] == language].drop_duplicates("label4").set_index("label4")
    fig, axes = plt.subplots(2, len(LABELS), figsize=(3.2 * len(LABELS), 4.4), sharey="row")
    for i, lab in enumerate(LABELS):
        ax_w, ax_p = axes[0, i], axes[1, i]
        ax_w.set_title(display_name(lab))
        if lab not in rows.index:
            continue
        y, sr = sf.read(rows.loc[lab, "path"], dtype="float32")
        t = np.arange(y.size) / sr
        ax_w.plot(t, y, lw=0.4, color="tab:blue")
        f0, voiced = _pitch_track(y, sr)
        tf = librosa.times_like(f0, sr=sr, hop_length=160)
        ax_p.plot(tf, np.where(voiced, f0, np.nan), ".", ms=2, color="tab:red")
        ax_p.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("amplitude")
    axes[1, 0].set_ylabel("pitch (Hz)")
    fig.suptitle(f"One {language} clip per emotion: waveform and pitch")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_prosody_by_emotion(output_dir: str | os.PathLike, path=None, per_label: int = 10, seed: int = 0):
    """Pitch variability against loudness for a sample of 4-class clips: arousal separates, valence much less."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import soundfile as sf

    from .common import LABELS, display_name
    from .plots import save_figure
    table = read_corpus_table(output_dir)
    table = table[table["label4"].notna()]
    sample = pd.concat([g.sample(min(per_label, len(g)), random_state=seed)
                        for _, g in table.groupby(["language", "label4"])])
    points = []
    for p in sample["path"]:
        y, sr = sf.read(p, dtype="float32")
        f0, voiced = _pitch_track(y, sr)
        st = 12 * np.log2(f0[voiced] / 100.0) if voiced.any() else np.zeros(1)
        rms = np.sqrt(np.mean(y ** 2))
        points.append((st.std(), 20 * np.log10(rms + 1e-5)))
    points = np.array(points)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, lang in zip(axes, ("en", "zh")):
        for lab in LABELS:
            m = ((sample["language"] == lang) & (sample["label4"] == lab)).to_numpy()
            ax.scatter(points[m, 0], points[m, 1], s=18, label=display_name(lab))
        ax.set_title(f"{lang}: pitch variability vs loudness per clip")
        ax.set_xlabel("pitch standard deviation (semitones)")
    axes[0].set_ylabel("RMS level (dB)")
    axes[1].legend()
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- separability check
SPLIT_GROUPS = {"train": ["Session1", "Session2", "Session3", "liuchanhg", "wangzhe"],
                "val": ["Session4", "zhaoquanyin"], "test": ["Session5", "ZhaoZuoxiang"]}


def acoustic_stats(path: str) -> np.ndarray:
    """MFCC + prosody statistics of one clip (the classical baseline's kind of features)."""
    import librosa
    import soundfile as sf
    y, sr = sf.read(path, dtype="float32")
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=512, hop_length=160)
    rms = librosa.feature.rms(y=y, frame_length=512, hop_length=160)[0]
    rms_db = 20 * np.log10(rms + 1e-5)
    voiced = rms_db > rms_db.max() - 30
    f0 = librosa.yin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=160)
    n = min(f0.size, voiced.size)
    f0v = f0[:n][voiced[:n]]
    st = 12 * np.log2(np.maximum(f0v, 1.0) / 100.0) if f0v.size else np.zeros(1)
    d = np.diff(mfcc, axis=1)
    feats = [mfcc.mean(1), mfcc.std(1), np.abs(d).mean(1),
             [np.median(st), st.std(), np.percentile(st, 10), np.percentile(st, 90),
              np.abs(np.diff(st)).mean() if st.size > 1 else 0.0,
              rms_db[voiced].mean(), rms_db[voiced].std(), np.percentile(rms_db, 95), voiced.mean(),
              y.size / sr]]
    return np.concatenate([np.asarray(f, float).ravel() for f in feats])


def _acoustic_matrix(paths, workers):
    with mp.get_context("fork").Pool(max(1, workers)) as pool:
        return np.vstack(pool.map(acoustic_stats, list(paths), chunksize=16))


def measure_corpus_separability(output_dir: str | os.PathLike, workers: int | None = None,
                                verbose: bool = True) -> dict:
    """How well audio alone, text alone and their late fusion separate the 4 classes on the test split.

    Audio: MFCC + prosody statistics -> logistic regression; text: char n-gram TF-IDF -> logistic
    regression; both trained on train (Sessions 1-3 + liuchanhg, wangzhe), fusion = mean of the two
    probabilities. Returns macro-F1 per modality overall, per language and per dialog type.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = read_corpus_table(output_dir)
    df = df[df["label4"].notna()].reset_index(drop=True)
    split = {g: s for s, groups in SPLIT_GROUPS.items() for g in groups}
    df["split"] = df["group"].map(split)
    workers = workers or _cpu_count()
    X = _acoustic_matrix(df["path"], workers)
    tr, te = (df["split"] == "train").to_numpy(), (df["split"] == "test").to_numpy()
    y = df["label4"].to_numpy()
    audio = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))
    audio.fit(X[tr], y[tr])
    text = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True),
                         LogisticRegression(C=4.0, max_iter=3000))
    text.fit(df.loc[tr, "text"], y[tr])
    classes = list(audio.classes_)
    assert classes == list(text.classes_)
    pa, pt = audio.predict_proba(X[te]), text.predict_proba(df.loc[te, "text"])
    pf = (pa + pt) / 2
    test = df[te].reset_index(drop=True)
    out = {"rows": {"train": int(tr.sum()), "test": int(te.sum()),
                    "test_en": int((test["language"] == "en").sum()), "test_zh": int((test["language"] == "zh").sum())}}
    for name, p in (("audio", pa), ("text", pt), ("fusion", pf)):
        pred = np.array(classes)[p.argmax(1)]
        res = {"all": f1_score(test["label4"], pred, average="macro")}
        for lang in ("en", "zh"):
            m = (test["language"] == lang).to_numpy()
            if m.any():
                res[lang] = f1_score(test["label4"][m], pred[m], average="macro")
        for dt in ("impro", "script"):
            m = (test["dialog_type"] == dt).to_numpy()
            if m.any():
                res[f"en_{dt}"] = f1_score(test["label4"][m], pred[m], average="macro")
        out[name] = {k: round(float(v), 4) for k, v in res.items()}
    if verbose:
        print(f"test rows: {out['rows']}")
        keys = list(out["fusion"])
        print(f"{'macro-F1':10s}" + "".join(f"{k:>10s}" for k in keys))
        for name in ("audio", "text", "fusion"):
            print(f"{name:10s}" + "".join(f"{out[name].get(k, float('nan')):10.3f}" for k in keys))
    return out


# ----------------------------------------------------------------------------- CLI
def _cli_synth(args: argparse.Namespace) -> int:
    res = synth_corpus(args.output_dir, size=args.size, seed=args.seed, workers=args.workers)
    print(json.dumps({"output_dir": str(res.output_dir), "reused": res.reused, "seconds": round(res.seconds, 2),
                      "en_clips": res.counts.get("en_clips"), "zh_clips": res.counts.get("zh_clips")}))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("synth-corpus", help="generate the embedded emotional-speech corpus "
                              "(IEMOCAP + CASIA layouts) with espeak-ng")
    p.add_argument("--output-dir", required=True, help="corpus folder (gets iemocap_raw/, casia_raw/, corpus_info.json)")
    p.add_argument("--size", default="default", choices=list(SIZES), help="corpus size (default: default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPUs)")
    p.set_defaults(func=_cli_synth)
