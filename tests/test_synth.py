"""The generated corpus: real raw layouts, determinism, code shares, disjoint improvised sentences."""
from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_helpers import cli, synth
from ser_helpers.common import SERError

# the regexes real IEMOCAP parsers use
EMO_LINE = re.compile(r"\[(\d+\.\d+) - (\d+\.\d+)\]\t(Ses\d\d[FM]_\w+?_[FM]\d{3})\t(\w{3})\t\[(\d+\.\d+), (\d+\.\d+), (\d+\.\d+)\]")
TRANS_LINE = re.compile(r"^(Ses\d\d[FM]_\S+_[FM]\d{3}) \[(\d{3}\.\d{4})-(\d{3}\.\d{4})\]: (.+)$")
UTT_ID = re.compile(r"^Ses(0[1-5])([FM])_(impro\d\d|script\d\d_\d)_([FM])(\d{3})$")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    res = synth.synth_corpus(out, size="smoke", seed=0, progress=False)
    assert not res.reused
    return out


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_iemocap_layout_matches_real_format(smoke):
    raw = smoke / "iemocap_raw"
    assert sorted(p.name for p in raw.iterdir()) == [f"Session{i}" for i in range(1, 6)]
    n_utts = 0
    for sess in range(1, 6):
        emo_files = sorted((raw / f"Session{sess}" / "dialog" / "EmoEvaluation").glob("*.txt"))
        assert emo_files, f"Session{sess} has no EmoEvaluation files"
        genders, types = set(), set()
        for emo in emo_files:
            lines = emo.read_text(encoding="utf-8").splitlines()
            assert lines[0].startswith("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]")
            summary = [EMO_LINE.match(line) for line in lines if line.startswith("[")]
            assert summary and all(summary), f"{emo}: a summary line does not match the IEMOCAP regex"
            annot = [line for line in lines if re.match(r"^[CA]-[EF]\d:\t", line)]
            assert len(annot) >= 2 * len(summary)  # annotator lines follow every utterance
            trans = {}
            for line in (emo.parent.parent / "transcriptions" / emo.name).read_text(encoding="utf-8").splitlines():
                m = TRANS_LINE.match(line)
                assert m, f"{emo.name}: bad transcription line {line!r}"
                trans[m.group(1)] = m
            for m in summary:
                start, end, utt, code = float(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
                idm = UTT_ID.match(utt)
                assert idm and int(idm.group(1)) == sess and emo.stem == utt.rsplit("_", 1)[0]
                genders.add(idm.group(4))
                types.add(idm.group(3)[:5])
                assert code in synth.IEMOCAP_CODES
                assert utt in trans and trans[utt].group(4).strip()
                wav = raw / f"Session{sess}" / "sentences" / "wav" / emo.stem / f"{utt}.wav"
                info = sf.info(str(wav))
                assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
                assert abs((end - start) - info.duration) < 1e-3  # times agree with the audio
                n_utts += 1
        assert genders == {"F", "M"} and types == {"impro", "scrip"}
        # the real corpus also has annotator sidecars in subfolders, which parsers must skip
        assert list((raw / f"Session{sess}" / "dialog" / "EmoEvaluation" / "Categorical").glob("*_e1_cat.txt"))
    assert n_utts == synth.SIZES["smoke"]["iemocap_per_session"] * 5
    assert (synth.read_corpus_table(smoke)["language"] == "en").sum() == n_utts


def test_casia_layout_and_transcripts(smoke):
    raw = smoke / "casia_raw"
    assert sorted(p.name for p in raw.iterdir() if p.is_dir()) == sorted(synth.CASIA_SPEAKERS)
    with open(raw / "transcripts.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file_id", "speaker", "emotion", "text"]
    assert len({r["file_id"] for r in rows}) == len(rows)
    wavs = sorted(raw.glob("*/*/*.wav"))
    assert len(wavs) == len(rows) == 4 * 6 * synth.SIZES["smoke"]["casia_per_emotion"]
    for r in rows:
        assert r["emotion"] in synth.CASIA_EMOTIONS
        assert (raw / r["speaker"] / r["emotion"] / f"{r['file_id']}.wav").exists()
        assert re.search(r"[\u4e00-\u9fff]", r["text"]), f"{r['file_id']}: text is not in Chinese characters"
    info = sf.info(str(wavs[0]))
    assert (info.samplerate, info.channels) == (16000, 1)


def test_corpus_info_and_durations(smoke):
    info = json.loads((smoke / "corpus_info.json").read_text())
    assert (info["size"], info["seed"]) == ("smoke", 0)
    durs = np.array([sf.info(str(p)).duration for p in smoke.rglob("*.wav")])
    assert info["counts"]["en_clips"] + info["counts"]["zh_clips"] == durs.size
    assert 1.5 < np.median(durs) < 3.5, np.median(durs)
    assert durs.min() > 0.8 and durs.max() <= synth.MAX_CLIP_SEC + 2 * synth.SILENCE_SEC[1] + 0.01
    # not silent, not clipped, noise present in the leading silence
    y, _ = sf.read(str(next(smoke.rglob("*.wav"))), dtype="float32")
    assert 0.05 < np.abs(y).max() < 1.0 and np.abs(y[:400]).max() > 0


def test_every_split_has_every_label_in_smoke(smoke):
    table = synth.read_corpus_table(smoke)
    four = table[table["label4"].notna()]
    for split, groups in synth.SPLIT_GROUPS.items():
        for lang in ("en", "zh"):
            part = four[four["group"].isin(groups) & (four["language"] == lang)]
            assert set(part["label4"]) == {"ang", "hap", "neu", "sad"}, (split, lang, Counter(part["label4"]))


@pytest.mark.slow  # builds two more corpora
def test_same_seed_gives_identical_bytes(smoke, tmp_path):
    again = tmp_path / "corpus"
    synth.synth_corpus(again, size="smoke", seed=0, progress=False, workers=1)
    assert _hashes(again) == _hashes(smoke)


@pytest.mark.slow  # builds another corpus
def test_other_seed_gives_other_audio(smoke, tmp_path):
    other = tmp_path / "corpus"
    synth.synth_corpus(other, size="smoke", seed=1, progress=False)
    a = {h for k, h in _hashes(smoke).items() if k.endswith(".wav")}
    b = {h for k, h in _hashes(other).items() if k.endswith(".wav")}
    assert len(a & b) == 0


def test_reuse_and_refusals(smoke, tmp_path):
    before = (smoke / "corpus_info.json").stat().st_mtime_ns
    res = synth.synth_corpus(smoke, size="smoke", seed=0, progress=False)
    assert res.reused and res.counts["en_clips"] == 5 * synth.SIZES["smoke"]["iemocap_per_session"]
    assert (smoke / "corpus_info.json").stat().st_mtime_ns == before
    with pytest.raises(SERError, match="unknown corpus size"):
        synth.synth_corpus(tmp_path / "x", size="huge")
    with pytest.raises(SERError, match="seed must be an integer"):
        synth.synth_corpus(tmp_path / "x", size="smoke", seed="1")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "precious.txt").write_text("keep me")
    with pytest.raises(SERError, match="refusing to replace"):
        synth.synth_corpus(busy, size="smoke")
    assert (busy / "precious.txt").read_text() == "keep me"


def test_cli_reuses_existing_corpus(smoke, capsys):
    assert cli.main(["synth-corpus", "--output-dir", str(smoke), "--size", "smoke", "--seed", "0"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["reused"] is True and out["en_clips"] == len(list((smoke / "iemocap_raw").rglob("*.wav")))


def test_cli_rejects_bad_size(tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["synth-corpus", "--output-dir", str(tmp_path / "c"), "--size", "huge"])


@pytest.fixture(scope="module")
def default_plan():
    en, zh, _ = synth._plan("default", 0)
    return en, zh


def test_code_shares_are_realistic(default_plan):
    en, zh = default_plan
    shares = Counter(j["code"] for j in en)
    n = len(en)
    for code, share in synth.CODE_SHARES.items():
        assert abs(shares[code] / n - share) < 0.05, (code, shares[code] / n)
    four = sum(shares[c] for c in ("neu", "hap", "exc", "sad", "ang"))
    assert 0.55 < four / n < 0.75  # the 4-class preset merges exc and drops fru/sur/xxx
    test_en = sum(1 for j in en if j["session"] == 5 and j["code"] in ("neu", "hap", "exc", "sad", "ang"))
    test_zh = sum(1 for j in zh if j["speaker"] == "ZhaoZuoxiang" and j["code"] in ("neu", "hap", "sad", "ang"))
    assert test_en >= 100 and test_zh >= 60


def test_improvised_sentences_disjoint_scripts_shared(default_plan):
    en, zh = default_plan
    impro, script = defaultdict(set), defaultdict(set)
    for j in en:
        (impro if j["dialog_type"] == "impro" else script)[j["session"]].add(j["text"])
    for a in range(1, 6):
        for b in range(a + 1, 6):
            assert not impro[a] & impro[b], f"improvised sentences shared by Session{a} and Session{b}"
            assert script[a] & script[b], "scripted dialogs should reuse their scripts across sessions"
    assert not set().union(*impro.values()) & set().union(*script.values())
    assert len({j["text"] for j in zh}) == len(zh)  # Mandarin sentences are all distinct


def test_wording_carries_valence_but_not_always(default_plan):
    """Emotional classes use their key phrases often, neutral wording a good share of the time."""
    en, _ = default_plan
    keys = {cat: tuple(k.strip(", ").lower() for k in ks) for cat, ks in synth.KEY_OPENERS["en"].items()}
    for code, cat in (("ang", "ang"), ("sad", "sad"), ("hap", "pos")):
        texts = [j["text"].lower() for j in en if j["code"] == code and j["dialog_type"] == "impro"]
        keyed = np.mean([any(k in t for k in keys[cat]) for t in texts])
        assert 0.2 < keyed < 0.8, (code, keyed)
    neutral = [j["text"].lower() for j in en if j["code"] == "neu" and j["dialog_type"] == "impro"]
    assert np.mean([any(k in t for ks in keys.values() for k in ks) for t in neutral]) < 0.2


def test_prosody_separates_arousal_more_than_valence(default_plan):
    """Planned pitch/rate: angry vs sad far apart, angry vs happy and sad vs neutral close."""
    en, _ = default_plan
    by = defaultdict(list)
    for j in en:
        by[j["code"]].append((j["pitch"], j["rate"]))
    m = {c: np.mean(v, axis=0) for c, v in by.items()}
    arousal = abs(m["ang"][0] - m["sad"][0])
    assert arousal > 2.5 * abs(m["ang"][0] - m["hap"][0]) and arousal > 1.5 * abs(m["sad"][0] - m["neu"][0])
    assert m["ang"][1] > m["neu"][1] > m["sad"][1]


def test_acoustic_stats_are_finite(smoke):
    wav = next((smoke / "casia_raw").rglob("*.wav"))
    feats = synth.acoustic_stats(str(wav))
    assert feats.ndim == 1 and feats.size == 70 and np.all(np.isfinite(feats))


@pytest.mark.slow  # trains two classifiers
def test_separability_measure_runs_on_smoke(smoke, capsys):
    res = synth.measure_corpus_separability(smoke, workers=1)
    table = synth.read_corpus_table(smoke)
    four = table[table["label4"].notna()]
    test_groups = synth.SPLIT_GROUPS["test"]
    assert res["rows"]["test"] == four["group"].isin(test_groups).sum()
    assert res["rows"]["test_en"] + res["rows"]["test_zh"] == res["rows"]["test"]
    for name in ("audio", "text", "fusion"):
        assert set(res[name]) >= {"all", "en", "zh", "en_impro", "en_script"}
        assert all(0.0 <= v <= 1.0 for v in res[name].values())
    assert "fusion" in capsys.readouterr().out


def test_word_lists_are_package_data_and_every_template_slot_has_fillers():
    import tomllib
    from importlib import resources

    from ser_helpers.corpus import words
    root = Path(__file__).parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = sorted(p.name for p in resources.files("ser_helpers.corpus").joinpath("words").iterdir()
                   if p.name.endswith(".json"))
    assert files == ["en.json", "zh.json"] and globs["ser_helpers.corpus"] == ["words/*.json"]
    for lang, templates, slots in (("en", synth.EN_TEMPLATES, synth.EN_SLOTS), ("zh", synth.ZH_TEMPLATES, synth.ZH_SLOTS)):
        assert words.load_words(lang)["templates"] == templates
        assert {c for shares in synth.WORDING.values() for c in shares} <= set(templates)
        for category, tpls in templates.items():
            for tpl in tpls:
                for slot in re.findall(r"\{(\w+)\}", tpl):
                    options = synth.EN_OPENERS if (slot == "o" and lang == "en") else slots.get(slot)
                    assert options, f"words/{lang}.json: template {tpl!r} names slot {slot!r} with no fillers"
        assert set(synth.KEY_OPENERS[lang]) <= set(templates)


def test_corpus_modules_import_only_earlier_ones_and_name_their_notebook():
    import ast

    from ser_helpers import corpus
    order = ["settings", "words", "plan", "espeak", "forked", "layout", "synth", "views", "separability", "cli"]
    pkg = Path(corpus.__file__).parent
    assert sorted(p.stem for p in pkg.glob("*.py") if p.stem != "__init__") == sorted(order)
    for k, name in enumerate(order):
        tree = ast.parse((pkg / f"{name}.py").read_text(encoding="utf-8"))
        siblings = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}
        assert siblings <= set(order[:k]), f"corpus/{name}.py imports a later stage: {siblings}"
        assert "notebook 00" in (ast.get_docstring(tree) or ""), f"corpus/{name}.py: the docstring names no notebook"
    assert all(getattr(synth, n) is getattr(corpus, n) for n in corpus.__all__)


# ----------------------------------------------------------------------------- one fresh process per job
def _pid_and_square(x):
    import os
    return os.getpid(), x * x


def _fail_on_three(x):
    if x == 3:
        raise SERError(f"job {x} failed")
    return x


def _die(x):
    import os
    os._exit(7)


def test_run_forked_runs_every_job_in_its_own_child():
    import os

    from ser_helpers.corpus.forked import run_forked
    out = list(run_forked(_pid_and_square, range(12), workers=3))
    assert sorted(sq for _, sq in out) == [x * x for x in range(12)]
    pids = [pid for pid, _ in out]
    assert len(set(pids)) == 12 and os.getpid() not in pids  # a fresh process per job, never this one


def _note_pid_then_sleep(job):
    import os
    import time
    folder, seconds = job
    (Path(folder) / str(os.getpid())).touch()
    time.sleep(seconds)


def test_run_forked_raises_the_job_error_and_names_a_dead_child(tmp_path):
    import os
    import time

    from ser_helpers.corpus.forked import run_forked
    with pytest.raises(SERError, match="job 3 failed"):
        list(run_forked(_fail_on_three, range(6), workers=2))
    with pytest.raises(SERError, match=r"clip-0: the child process died without an answer"):
        list(run_forked(_die, [0], workers=1, describe=lambda job: f"clip-{job}"))
    # leaving early kills and reaps the children still running: no zombie or orphan is left
    gen = run_forked(_note_pid_then_sleep, [(tmp_path, 0), (tmp_path, 30), (tmp_path, 30)], workers=3)
    next(gen)
    deadline = time.monotonic() + 10
    while len(list(tmp_path.iterdir())) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    gen.close()
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert len(pids) == 3
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
