"""Manifests: IEMOCAP parser (5531 arithmetic on a real-format fixture), label-folder layouts,
CASIA / RAVDESS / ESD preparers, merging, the checks every manifest goes through, the CLI."""
from __future__ import annotations

import io
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser_helpers import cli, manifest
from ser_helpers.common import SERError, read_json

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_iemocap import (IEMOCAP_COUNTS, SMALL_COUNTS, expected_4class,  # noqa: E402
                              write_iemocap_fixture)

IEMOCAP_COLUMNS = ["path", "label", "source_label", "duration_sec", "session", "dialog_id", "utterance_id",
                   "speaker", "language", "source_dataset", "transcript", "dialog_type"]
REALDATA = Path("/work/shared/realdata")


# ----------------------------------------------------------------------------- helpers
def tone(dur=0.5, sr=16000, freq=220.0, channels=1):
    t = np.arange(int(dur * sr)) / sr
    x = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


def write_wav(path, dur=0.5, sr=16000, channels=1, freq=220.0):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(dur, sr, freq, channels), sr, subtype="PCM_16")
    return path


def wav_with_extra_chunk(path, dur=0.5, sr=48000, channels=2):
    """A wav whose extra `LIST` chunk sits before `data` (as RAVDESS files have)."""
    buf = io.BytesIO()
    sf.write(buf, tone(dur, sr, 330.0, channels), sr, subtype="PCM_16", format="WAV")
    raw = buf.getvalue()
    pos, chunks = 12, []
    while pos < len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        chunks.append((cid, raw[pos:pos + 8 + size + (size & 1)]))
        pos += 8 + size + (size & 1)
    info = b"INFO" + b"ISFT" + struct.pack("<I", 6) + b"Lavf58"
    extra = b"LIST" + struct.pack("<I", len(info)) + info
    body = b"".join((extra + c) if cid == b"data" else c for cid, c in chunks)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    return path


def read_split(out, split):
    return pd.read_csv(Path(out) / f"{split}.csv", keep_default_na=False)


# ----------------------------------------------------------------------------- IEMOCAP
@pytest.fixture(scope="module")
def iemocap_full(tmp_path_factory):
    root = tmp_path_factory.mktemp("iemocap_full")
    spec = write_iemocap_fixture(root / "raw")
    res = manifest.prepare_iemocap(raw_dir=root / "raw", output_dir=root / "out", skip_audio_check=True)
    return spec, res


def test_iemocap_5531_arithmetic(iemocap_full):
    spec, res = iemocap_full
    s = res.summary
    exp = expected_4class(IEMOCAP_COUNTS)
    assert s["totals"] == {"train": 3259, "val": 1031, "test": 1241, "all": 5531}
    assert s["per_session"] == exp["per_session"] == {"Session1": 1085, "Session2": 1023, "Session3": 1151,
                                                      "Session4": 1031, "Session5": 1241}
    per_label = {lab: sum(s["counts"][sp][lab] for sp in manifest.SPLITS) for lab in s["labels"]}
    assert per_label == exp["per_label"] == {"ang": 1103, "hap": 1636, "neu": 1708, "sad": 1084}
    src = {c: sum(s["source_label_counts"][sp].get(c, 0) for sp in manifest.SPLITS) for c in ("hap", "exc")}
    assert src == {"hap": 595, "exc": 1041}
    assert s["dropped"] == {"dis": 2, "fea": 40, "fru": 1849, "oth": 3, "sur": 107, "xxx": 2507}
    assert s["counts"]["val"]["ang"] == 327 and s["source_label_counts"]["val"]["hap"] == 65
    assert s["counts"]["test"]["hap"] == 442
    impro = sum(s["dialog_types"][sp].get("impro", 0) for sp in manifest.SPLITS)
    script = sum(s["dialog_types"][sp].get("script", 0) for sp in manifest.SPLITS)
    assert (impro, script) == (spec["n_impro_4class"], 5531 - spec["n_impro_4class"]) == (2943, 2588)


def test_iemocap_rows_columns_speakers_transcripts(iemocap_full):
    spec, res = iemocap_full
    frames = {sp: read_split(res.output_dir, sp) for sp in manifest.SPLITS}
    for df in frames.values():
        assert list(df.columns) == IEMOCAP_COLUMNS
        assert set(df["label"]) == {"ang", "hap", "neu", "sad"}
        assert (df["language"] == "en").all() and (df["source_dataset"] == "iemocap_4class").all()
    assert set(frames["train"]["session"]) == {"Session1", "Session2", "Session3"}
    assert set(frames["test"]["session"]) == {"Session5"}
    # the speaker is the gender letter of the LAST id part, not of the dialog
    allrows = pd.concat(frames.values())
    trap = allrows[allrows["utterance_id"].str.match(r"Ses01F_.*_M\d{3}$")]
    assert len(trap) > 0 and set(trap["speaker"]) == {"Ses01M"}
    assert res.summary["speakers"] == {"train": ["Ses01F", "Ses01M", "Ses02F", "Ses02M", "Ses03F", "Ses03M"],
                                       "val": ["Ses04F", "Ses04M"], "test": ["Ses05F", "Ses05M"]}
    # transcripts: latin-1 decoded, CRLF stripped, one per utterance
    by_id = allrows.set_index("utterance_id")
    for utt, info in list(spec["utterances"].items())[::97]:
        if utt in by_id.index:
            assert by_id.loc[utt, "transcript"] == info["text"]
            assert by_id.loc[utt, "dialog_type"] == info["dialog_type"]
            assert by_id.loc[utt, "duration_sec"] == pytest.approx(info["end"] - info["start"], abs=1e-3)
    assert (allrows["transcript"].str.contains("\r") == False).all()  # noqa: E712
    assert "Un café, déjà vu, s'il vous plaît." in set(allrows["transcript"])
    exc = allrows[allrows["source_label"] == "exc"]
    assert len(exc) == 1041 and set(exc["label"]) == {"hap"}
    assert Path(allrows["path"].iloc[0]).is_absolute()
    assert allrows["path"].iloc[0].endswith(
        f"sentences/wav/{allrows['dialog_id'].iloc[0]}/{allrows['utterance_id'].iloc[0]}.wav")


def test_iemocap_regex_ignores_header_annotators_crlf_latin1(tmp_path):
    text = ("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\r\n\r\n"
            "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\r\n"
            "C-E2:\tNeutral;\t()\r\nA-E3:\tval 3; act 2; dom  2;\t(r\xe9sum\xe9)\r\n"
            "[10.0100 - 11.3925]\tSes01F_impro01_M000\texc\t[3.5000, 3.5000, 3.0000]\r\n")
    p = tmp_path / "Ses01F_impro01.txt"
    p.write_bytes(text.encode("latin-1"))
    items = manifest.parse_iemocap_evaluation(p)
    assert [(i["utterance_id"], i["code"]) for i in items] == [("Ses01F_impro01_F000", "neu"),
                                                               ("Ses01F_impro01_M000", "exc")]
    assert items[1]["end"] - items[1]["start"] == pytest.approx(1.3825)
    t = tmp_path / "t.txt"
    t.write_bytes("Ses01F_impro01_F000 [006.2901-008.2357]: Caf\xe9?\r\nM: stray\r\n".encode("latin-1"))
    assert manifest.parse_iemocap_transcriptions(t) == {"Ses01F_impro01_F000": "Café?"}
    assert manifest.iemocap_speaker("Ses01F_impro01_M000") == "Ses01M"
    assert manifest.iemocap_speaker("Ses05M_script02_2_F017") == "Ses05F"


def test_iemocap_5class_fru_keeps_frustration(tmp_path):
    write_iemocap_fixture(tmp_path / "raw", counts=SMALL_COUNTS, impro_total=None)
    res = manifest.prepare_iemocap(raw_dir=tmp_path / "raw", output_dir=tmp_path / "out", preset="5class_fru",
                                   skip_audio_check=True)
    assert res.summary["labels"] == ["ang", "fru", "hap", "neu", "sad"]
    assert sum(res.summary["counts"][s]["fru"] for s in manifest.SPLITS) == 5
    assert "fru" not in res.summary["dropped"]


@pytest.fixture
def iemocap_small(tmp_path):
    spec = write_iemocap_fixture(tmp_path / "raw", counts=SMALL_COUNTS, impro_total=None, with_audio=True,
                                 dur_range=(0.5, 1.2))
    return tmp_path, spec


def test_iemocap_audio_checks_skip_and_report(iemocap_small):
    tmp, spec = iemocap_small
    four = [u for u, i in spec["utterances"].items() if i["code"] in ("ang", "hap", "exc", "neu", "sad")]
    s1 = sorted(u for u in four if u.startswith("Ses01"))
    wav = lambda u: tmp / "raw" / "Session1" / "sentences" / "wav" / u.rsplit("_", 1)[0] / f"{u}.wav"  # noqa: E731
    wav(s1[0]).unlink()                                # missing
    wav(s1[1]).write_bytes(b"RIFF\x00\x00\x00\x00garbage")  # unreadable
    write_wav(wav(s1[2]), dur=0.1)                     # too short
    res = manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "out")
    s = res.summary
    assert s["totals"]["all"] == len(four) - 3
    reasons = {Path(x["path"]).stem: x["reason"] for x in s["skipped"]}
    assert reasons[s1[0]] == "missing file"
    assert reasons[s1[1]].startswith("unreadable audio")
    assert s["filtered_short"] == {"count": 1, "min_duration_sec": 0.2}
    df = pd.concat([read_split(tmp / "out", sp) for sp in manifest.SPLITS])
    row = df[df["utterance_id"] == s1[3]].iloc[0]
    assert row["duration_sec"] == pytest.approx(sf.info(wav(s1[3])).duration, abs=1e-3)
    assert s["hours"]["all"] == pytest.approx(df["duration_sec"].sum() / 3600, abs=1e-3)
    with pytest.raises(SERError, match="missing file.*strict"):
        manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "out_strict", strict=True)
    assert not (tmp / "out_strict" / "train.csv").exists()


def test_iemocap_loso_folds(iemocap_small):
    tmp, _ = iemocap_small
    folds = manifest.iemocap_loso_folds()
    assert [f["test_sessions"] for f in folds] == [[f"Session{k}"] for k in range(1, 6)]
    assert folds[4] == {"fold": 5, "train_sessions": ["Session1", "Session2", "Session3"],
                        "val_sessions": ["Session4"], "test_sessions": ["Session5"]}
    for f in folds:
        assert sorted(f["train_sessions"] + f["val_sessions"] + f["test_sessions"]) == \
            [f"Session{k}" for k in range(1, 6)]
    res = manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "fold1", fold=1)
    assert set(read_split(tmp / "fold1", "test")["session"]) == {"Session1"}
    assert set(read_split(tmp / "fold1", "val")["session"]) == {"Session5"}
    assert res.summary["split_rule"]["fold"] == 1


def test_iemocap_bad_sessions(iemocap_small):
    tmp, _ = iemocap_small
    with pytest.raises(SERError, match="Session3.*both train and val"):
        manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "o", val_sessions="Session3",
                                 skip_audio_check=True)
    with pytest.raises(SERError, match="Session6"):
        manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "o", test_sessions="6",
                                 skip_audio_check=True)
    with pytest.raises(SERError, match="preset"):
        manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "o", preset="7class")


# ----------------------------------------------------------------------------- label folders
def make_split_layout(root, speakers=("s1", "s2", "s3")):
    """train/ val/ test/ with label folders; file names start with the speaker id."""
    names = {"train": ("Angry", "HAPPY", "sad", "Neutral", "excited", "fear"),
             "val": ("angry", "happy", "sad", "neutral"),
             "test": ("ANG", "hap", "Sad", "neu")}
    for k, (split, folders) in enumerate(names.items()):
        for j, folder in enumerate(folders):
            for i in range(2):
                write_wav(root / split / folder / f"{speakers[k]}_{folder}_{i}.wav", freq=200 + 10 * j + i)
    return root


def test_build_manifest_split_layout_words_and_codes(tmp_path):
    root = make_split_layout(tmp_path / "data")
    res = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out", use_iemocap_map=True,
                                  allowed_labels="ANGRY,HAPPY,SAD,NEUTRAL", speaker_pattern=r"^(s\d+)_")
    s = res.summary
    assert s["layout"] == "pre_split"
    assert s["counts"]["train"] == {"ang": 2, "hap": 4, "neu": 2, "sad": 2}  # excited merged into happy
    assert s["counts"]["test"] == {"ang": 2, "hap": 2, "neu": 2, "sad": 2}
    assert s["dropped"] == {"fear": 2}
    df = read_split(tmp_path / "out", "train")
    assert list(df.columns)[:4] == ["path", "label", "source_label", "duration_sec"]
    assert set(df["source_label"]) == {"Angry", "HAPPY", "sad", "Neutral", "excited"}
    assert s["speakers"] == {"train": ["s1"], "val": ["s2"], "test": ["s3"]}
    assert (df["duration_sec"] == 0.5).all()
    # without the IEMOCAP map and with no allowed list, fear is kept as its code
    res2 = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out2", mode="pre_split",
                                   allowed_labels="")
    assert res2.summary["counts"]["train"]["fea"] == 2 and res2.summary["counts"]["val"]["fea"] == 0
    assert any("split 'val' has no rows of label(s) ['fea']" in w for w in res2.summary["warnings"])


def test_build_manifest_speaker_overlap_refused(tmp_path):
    root = make_split_layout(tmp_path / "data", speakers=("s1", "s2", "s1"))
    with pytest.raises(SERError, match=r"train/test: \['s1'\].*--allow-speaker-overlap"):
        manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out", use_iemocap_map=True,
                                speaker_pattern=r"^(?P<speaker>s\d+)_")
    assert not (tmp_path / "out" / "train.csv").exists()
    res = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out", use_iemocap_map=True,
                                  speaker_pattern=r"^(?P<speaker>s\d+)_", allow_speaker_overlap=True)
    assert any("speaker overlap" in w for w in res.summary["warnings"])


def make_casia_layout(root, speakers=("liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang"), n=3,
                      emotions=("angry", "fear", "happy", "neutral", "sad", "surprise")):
    rows = []
    for a, spk in enumerate(speakers):
        for b, emo in enumerate(emotions):
            for i in range(n):
                fid = f"{spk}_{emo}_{i:03d}"
                write_wav(root / spk / emo / f"{fid}.wav", dur=0.3 + 0.1 * i, freq=150 + 20 * a + 5 * b)
                rows.append({"file_id": fid, "speaker": spk, "emotion": emo, "text": f"句子{a}{b}{i}"})
    pd.DataFrame(rows).to_csv(root / "transcripts.csv", index=False)
    return root


def test_build_manifest_speaker_folders_casia_layout(tmp_path):
    root = make_casia_layout(tmp_path / "casia")
    res = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "casia_4class", use_iemocap_map=True,
                                  allowed_labels="ANGRY,HAPPY,SAD,NEUTRAL", language="zh",
                                  source_dataset="casia_4class", train_speakers="liuchanhg,wangzhe",
                                  val_speakers="zhaoquanyin", test_speakers="ZhaoZuoxiang")
    s = res.summary
    assert s["layout"] == "flat" and s["split_rule"]["type"] == "speaker_lists"
    assert s["speakers"] == {"train": ["liuchanhg", "wangzhe"], "val": ["zhaoquanyin"], "test": ["ZhaoZuoxiang"]}
    assert s["totals"] == {"train": 24, "val": 12, "test": 12, "all": 48}
    assert s["dropped"] == {"fear": 12, "surprise": 12}
    df = read_split(tmp_path / "casia_4class", "val")
    assert list(df.columns) == ["path", "label", "source_label", "duration_sec", "speaker", "language",
                                "source_dataset", "transcript", "file_id"]
    assert (df["language"] == "zh").all() and (df["source_dataset"] == "casia_4class").all()
    tr = pd.read_csv(root / "transcripts.csv").set_index("file_id")["text"]
    assert all(tr[f] == t for f, t in zip(df["file_id"], df["transcript"]))
    # automatic speaker split: whole speakers, every split non-empty, deterministic
    a = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "auto1", use_iemocap_map=True, seed=3)
    b = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "auto2", use_iemocap_map=True, seed=3)
    assert a.summary["split_rule"]["type"] == "speaker_stratified"
    assert a.summary["speakers"] == b.summary["speakers"]
    assert sorted(sum(a.summary["speakers"].values(), [])) == sorted(
        ["liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang"])
    assert a.summary["n_speakers"] == {"train": 2, "val": 1, "test": 1}
    with pytest.raises(SERError, match="nobody.*not found|not found"):
        manifest.build_manifest(input_dir=root, output_dir=tmp_path / "x", train_speakers="nobody",
                                val_speakers="wangzhe", test_speakers="zhaoquanyin")


def test_build_manifest_flat_without_speakers_is_stratified_random_with_warning(tmp_path):
    root = tmp_path / "flat"
    for j, emo in enumerate(("angry", "happy", "neutral", "sad")):
        for i in range(10):
            write_wav(root / emo / f"clip{j}{i:02d}.wav", dur=0.3, freq=200 + 7 * i + j)
    res = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out", seed=1)
    s = res.summary
    assert s["layout"] == "flat" and s["split_rule"]["type"] == "stratified_random"
    assert any("RANDOM split" in w for w in s["warnings"])
    assert s["counts"]["train"] == {"ang": 8, "hap": 8, "neu": 8, "sad": 8}
    assert s["counts"]["val"] == s["counts"]["test"] == {"ang": 1, "hap": 1, "neu": 1, "sad": 1}
    again = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out2", seed=1)
    paths = lambda d, sp: read_split(tmp_path / d, sp)["path"].tolist()  # noqa: E731
    assert paths("out", "test") == paths("out2", "test")
    other = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out3", seed=2)
    assert paths("out3", "train") != paths("out", "train")
    assert again.summary["counts"] == other.summary["counts"]


def test_build_manifest_flat_speaker_pattern_emodb_style(tmp_path):
    root = tmp_path / "emo"
    letters = {"W": "Angry", "F": "Happy", "N": "Neutral", "T": "Sad"}
    for spk in ("03", "08", "09", "10", "11"):
        for letter, folder in letters.items():
            for k in range(3):
                write_wav(root / folder / f"{spk}a0{k}{letter}a.wav", dur=0.4, freq=180 + int(spk) + k)
    res = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out", speaker_pattern=r"^(\d\d)",
                                  train_ratio=0.6, val_ratio=0.2, test_ratio=0.2, seed=0)
    s = res.summary
    assert s["split_rule"]["type"] == "speaker_stratified"
    assert s["n_speakers"] == {"train": 3, "val": 1, "test": 1}
    spk = {sp: set(read_split(tmp_path / "out", sp)["speaker"].astype(str).str.zfill(2)) for sp in manifest.SPLITS}
    assert not (spk["train"] & spk["test"]) and not (spk["train"] & spk["val"])
    write_wav(root / "Angry" / "x_odd_name.wav", dur=0.4)
    with pytest.raises(SERError, match="x_odd_name.wav: --speaker-pattern .* does not match the file name"):
        manifest.build_manifest(input_dir=root, output_dir=tmp_path / "o2", speaker_pattern=r"^(\d\d)")


def test_build_manifest_single_top_folder_is_not_taken_for_speakers(tmp_path):
    root = tmp_path / "d"
    for emo in ("angry", "happy", "neutral", "sad"):
        for i in range(10):
            write_wav(root / "wavs" / emo / f"{emo}{i}.wav", dur=0.3, freq=200 + i)
    res = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out")
    assert res.summary["split_rule"]["type"] == "stratified_random"
    assert any("only 1 speaker folder" in w for w in res.summary["warnings"])


def test_build_manifest_label_map_json_and_bad_inputs(tmp_path):
    root = tmp_path / "d"
    for folder in ("W", "F", "N", "T", "L"):
        for i in range(4):
            write_wav(root / folder / f"x{folder}{i}.wav", dur=0.3, freq=200 + i)
    lm = tmp_path / "map.json"
    lm.write_text(json.dumps({"W": "angry", "f": "hap", "N": "neutral", "T": "SAD"}))
    res = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out", label_map_json=str(lm),
                                  train_ratio=0.5, val_ratio=0.25, test_ratio=0.25)
    assert res.summary["labels"] == ["ang", "hap", "neu", "sad"]
    assert res.summary["dropped"] == {"L": 4}
    with pytest.raises(SERError, match="'w' maps to 'boredom'"):
        manifest.build_manifest(input_dir=root, output_dir=tmp_path / "o", label_map_json='{"W": "boredom"}')
    with pytest.raises(SERError, match="--allowed-labels: unknown label 'BORED'"):
        manifest.build_manifest(input_dir=root, output_dir=tmp_path / "o", allowed_labels="ANGRY,BORED")
    with pytest.raises(SERError, match="sum to 1"):
        manifest.build_manifest(input_dir=root, output_dir=tmp_path / "o", train_ratio=0.9)
    with pytest.raises(SERError, match="not found"):
        manifest.build_manifest(input_dir=tmp_path / "nope", output_dir=tmp_path / "o")


def test_build_manifest_bad_audio_skipped_or_strict(tmp_path):
    root = make_split_layout(tmp_path / "data")
    bad = root / "train" / "Angry" / "s1_broken.wav"
    bad.write_bytes(b"RIFF1234WAVEfmt nonsense")
    empty = root / "train" / "HAPPY" / "s1_empty.wav"
    empty.write_bytes(b"")
    (root / "train" / "sad" / "notes.txt").write_text("not audio")
    res = manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out", use_iemocap_map=True)
    reasons = {Path(x["path"]).name: x["reason"] for x in res.summary["skipped"]}
    assert set(reasons) == {"s1_broken.wav", "s1_empty.wav"}
    assert reasons["s1_empty.wav"] == "empty file (0 bytes)" and reasons["s1_broken.wav"].startswith("unreadable")
    assert res.summary["counts"]["train"]["ang"] == 2
    with pytest.raises(SERError, match="s1_broken.wav|s1_empty.wav"):
        manifest.build_manifest(input_dir=root, output_dir=tmp_path / "strict", use_iemocap_map=True, strict=True)


def test_checks_empty_split_and_label_missing_from_train(tmp_path):
    root = make_split_layout(tmp_path / "data")
    shutil.rmtree(root / "val")
    (root / "val").mkdir()
    with pytest.raises(SERError, match="split 'val' is empty"):
        manifest.build_manifest(input_dir=root, output_dir=tmp_path / "out", use_iemocap_map=True)
    root2 = make_split_layout(tmp_path / "data2")
    shutil.rmtree(root2 / "train" / "sad")
    with pytest.raises(SERError, match=r"\['sad'\] have no training rows"):
        manifest.build_manifest(input_dir=root2, output_dir=tmp_path / "out2", use_iemocap_map=True)
    with pytest.raises(SERError, match="missing"):
        shutil.rmtree(root2 / "test")
        manifest.build_manifest(input_dir=root2, output_dir=tmp_path / "out3", mode="pre_split")
    assert not any((tmp_path / d / "summary.json").exists() for d in ("out", "out2", "out3"))


def test_duplicate_paths_refused(tmp_path):
    rows = [{"path": str(write_wav(tmp_path / f"{i}.wav")), "label": lab, "source_label": lab, "duration_sec": 0.5}
            for i, lab in enumerate(["ang", "hap", "neu", "sad"])]
    split_rows = {"train": rows, "val": [dict(rows[0])], "test": [dict(rows[1])]}
    with pytest.raises(SERError, match="duplicate path"):
        manifest._write_manifest(tmp_path / "o", split_rows, manifest.MANIFEST_HEAD, labels=["ang"],
                                 summary={}, skipped=[], dropped=manifest.Counter(), n_short=0, min_duration_sec=0)


# ----------------------------------------------------------------------------- CASIA, RAVDESS, ESD
def test_prepare_casia_defaults_and_6class(tmp_path):
    root = make_casia_layout(tmp_path / "casia_raw", n=2)
    res = manifest.prepare_casia(raw_dir=root, output_dir=tmp_path / "out")
    df = read_split(tmp_path / "out", "train")
    assert list(df.columns) == ["path", "label", "source_label", "duration_sec", "speaker", "file_id",
                                "language", "source_dataset", "transcript"]
    assert res.summary["speakers"]["test"] == ["ZhaoZuoxiang"]
    assert res.summary["totals"] == {"train": 16, "val": 8, "test": 8, "all": 32}
    assert set(df["transcript"].str.startswith("句子")) == {True}
    six = manifest.prepare_casia(raw_dir=root, output_dir=tmp_path / "six", preset="6class")
    assert six.summary["labels"] == ["ang", "fea", "hap", "neu", "sad", "sur"]
    with pytest.raises(SERError, match=r"\['Nobody'\] not found"):
        manifest.prepare_casia(raw_dir=root, output_dir=tmp_path / "x", test_speakers="Nobody")


def make_ravdess(root, actors=(1, 2, 3, 4), stereo_actor=3):
    for a in actors:
        for emo in ("01", "02", "03", "04", "05", "06"):
            for stmt in ("01", "02"):
                name = f"03-01-{emo}-01-{stmt}-01-{a:02d}.wav"
                if a == stereo_actor:
                    wav_with_extra_chunk(root / f"Actor_{a:02d}" / name, channels=2)
                else:
                    wav_with_extra_chunk(root / f"Actor_{a:02d}" / name, channels=1)
    write_wav(root / "Actor_01" / "03-02-03-01-01-01-01.wav", sr=48000)  # song: dropped
    return root


def test_prepare_ravdess_actor_split_48k_stereo_extra_chunk(tmp_path):
    root = make_ravdess(tmp_path / "rav")
    info = sf.info(str(root / "Actor_03" / "03-01-05-01-01-01-03.wav"))
    assert (info.samplerate, info.channels) == (48000, 2)
    res = manifest.prepare_ravdess(raw_dir=root, output_dir=tmp_path / "out", train_actors="1-2",
                                   val_actors="3", test_actors="4")
    s = res.summary
    assert s["totals"] == {"train": 20, "val": 10, "test": 10, "all": 40}
    assert s["counts"]["train"] == {"ang": 4, "hap": 4, "neu": 8, "sad": 4}  # calm -> neutral
    assert s["dropped"]["fearful"] == 8 and s["n_skipped"] == 0
    df = read_split(tmp_path / "out", "val")
    assert list(df.columns)[:6] == ["path", "label", "source_label", "duration_sec", "actor_id", "file_id"]
    assert set(df["actor_id"]) == {3} and set(df["speaker"]) == {"Actor_03"}
    assert df["duration_sec"].tolist() == pytest.approx([0.5] * 10)
    assert set(df["transcript"]) == set(manifest.RAVDESS_STATEMENTS.values())
    assert manifest._parse_ranges("1-3,7", "x") == [1, 2, 3, 7]
    with pytest.raises(SERError, match="actor 3 is listed for both"):
        manifest.prepare_ravdess(raw_dir=root, output_dir=tmp_path / "o", train_actors="1-3", val_actors="3")


@pytest.mark.skipif(not (REALDATA / "ravdess_sample").is_dir(), reason="optional real data absent")
def test_prepare_ravdess_real_sample(tmp_path):
    res = manifest.prepare_ravdess(raw_dir=REALDATA / "ravdess_sample", output_dir=tmp_path / "out",
                                   train_actors="1", val_actors="2", test_actors="20")
    assert res.summary["totals"]["all"] == 48 and res.summary["n_skipped"] == 0
    assert res.summary["speakers"] == {"train": ["Actor_01"], "val": ["Actor_02"], "test": ["Actor_20"]}


@pytest.mark.skipif(not (REALDATA / "emodb4").is_dir(), reason="optional real data absent")
def test_build_manifest_real_emodb(tmp_path):
    res = manifest.build_manifest(input_dir=REALDATA / "emodb4", output_dir=tmp_path / "out",
                                  speaker_pattern=r"^(\d\d)", allowed_labels="ANGRY,HAPPY,SAD,NEUTRAL")
    s = res.summary
    assert s["totals"]["all"] == 339 and s["n_skipped"] == 0
    assert sum(s["n_speakers"].values()) == 10


def test_prepare_esd(tmp_path):
    root = tmp_path / "esd"
    for spk in ("0001", "0002", "0011", "0012", "0013"):
        lines = []
        for emo in ("Angry", "Happy", "Neutral", "Sad", "Surprise"):
            for part in ("train", "test"):
                fid = f"{spk}_{emo[:2]}{part[:2]}"
                write_wav(root / spk / emo / part / f"{fid}.wav", dur=0.3, freq=200 + int(spk))
                lines.append(f"{fid}\ttext of {fid}\t{emo}")
        (root / spk / f"{spk}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = manifest.prepare_esd(raw_dir=root, output_dir=tmp_path / "out", train_ratio=0.6, val_ratio=0.2,
                               test_ratio=0.2)
    s = res.summary
    assert s["totals"]["all"] == 40 and s["dropped"] == {"surprise": 10}
    assert s["n_speakers"] == {"train": 3, "val": 1, "test": 1}
    df = pd.concat([read_split(tmp_path / "out", sp) for sp in manifest.SPLITS])
    lang = dict(zip(df["speaker"].astype(str).str.zfill(4), df["language"]))
    assert lang["0001"] == "zh" and lang["0011"] == "en"
    assert (df["transcript"] == "text of " + df["file_id"]).all()
    write_wav(root / "Angry" / "stray.wav", dur=0.3)
    with pytest.raises(SERError, match="--allow-unknown-speaker"):
        manifest.prepare_esd(raw_dir=root, output_dir=tmp_path / "o", train_ratio=0.6, val_ratio=0.2, test_ratio=0.2)
    r2 = manifest.prepare_esd(raw_dir=root, output_dir=tmp_path / "o", train_ratio=0.6, val_ratio=0.2,
                              test_ratio=0.2, allow_unknown_speaker=True)
    assert r2.summary["totals"]["train"] == s["totals"]["train"] + 1


# ----------------------------------------------------------------------------- merge
def test_merge_manifests_en_zh(tmp_path, iemocap_small):
    tmp, _ = iemocap_small
    en = manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp_path / "iemocap_4class")
    zh = manifest.build_manifest(input_dir=make_casia_layout(tmp_path / "casia", n=2),
                                 output_dir=tmp_path / "casia_4class", use_iemocap_map=True, language="zh",
                                 train_speakers="liuchanhg,wangzhe", val_speakers="zhaoquanyin",
                                 test_speakers="ZhaoZuoxiang")
    res = manifest.merge_manifests(input_dirs=f"{tmp_path / 'iemocap_4class'},{tmp_path / 'casia_4class'}",
                                   output_dir=tmp_path / "multi")
    s = res.summary
    for sp in manifest.SPLITS:
        assert s["totals"][sp] == en.summary["totals"][sp] + zh.summary["totals"][sp]
        assert s["languages"][sp] == {"en": en.summary["totals"][sp], "zh": zh.summary["totals"][sp]}
    df = read_split(tmp_path / "multi", "test")
    assert list(df.columns)[:10] == ["path", "label", "source_label", "duration_sec", "source_dataset", "language",
                                     "speaker", "file_id", "text", "transcript"]
    assert set(df["source_dataset"]) == {"iemocap_4class", "casia_4class"}
    assert (df["transcript"] != "").all() and (df["text"] == df["transcript"]).all()
    assert "dialog_type" in df.columns
    with pytest.raises(SERError, match="duplicate path.*--deduplicate-by-path"):
        manifest.merge_manifests(input_dirs=[tmp_path / "casia_4class", tmp_path / "casia_4class"],
                                 output_dir=tmp_path / "dup")
    d = manifest.merge_manifests(input_dirs=[tmp_path / "casia_4class", tmp_path / "casia_4class"],
                                 output_dir=tmp_path / "dup", deduplicate_by_path=True)
    assert d.summary["n_deduplicated"] == zh.summary["totals"]["all"]
    assert d.summary["totals"] == zh.summary["totals"]


# ----------------------------------------------------------------------------- CLI
def test_cli_defaults_match_contract():
    import argparse
    parser = argparse.ArgumentParser()
    manifest.register_cli(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["prepare-iemocap", "--raw-dir", "r", "--output-dir", "o"])
    assert (a.preset, a.train_sessions, a.val_sessions, a.test_sessions, a.min_duration_sec) == \
        ("4class", "Session1,Session2,Session3", "Session4", "Session5", 0.2)
    a = parser.parse_args(["prepare-casia", "--raw-dir", "r", "--output-dir", "o"])
    assert (a.train_speakers, a.val_speakers, a.test_speakers) == ("liuchanhg,wangzhe", "zhaoquanyin", "ZhaoZuoxiang")
    a = parser.parse_args(["prepare-ravdess", "--raw-dir", "r", "--output-dir", "o"])
    assert (a.train_actors, a.val_actors, a.test_actors) == ("1-18", "19-21", "22-24")
    a = parser.parse_args(["prepare-esd", "--raw-dir", "r", "--output-dir", "o", "--force-speaker-split"])
    assert (a.train_ratio, a.val_ratio, a.test_ratio, a.seed, a.force_speaker_split) == (0.8, 0.1, 0.1, 42, True)
    a = parser.parse_args(["build-manifest", "--input-dir", "i", "--output-dir", "o"])
    assert (a.mode, a.train_ratio, a.seed, a.use_iemocap_map, a.allowed_labels) == ("auto", 0.8, 42, False, "")
    with pytest.raises(SystemExit):
        parser.parse_args(["build-manifest", "--input-dir", "i", "--output-dir", "o", "--mode", "nested"])
    a = parser.parse_args(["merge-manifests", "--input-dirs", "a,b", "--output-dir", "o"])
    assert a.deduplicate_by_path is False


MANIFEST_CONFIGS = [("prepare-iemocap", "--raw-dir", manifest.IemocapConfig),
                    ("prepare-casia", "--raw-dir", manifest.CasiaConfig),
                    ("prepare-ravdess", "--raw-dir", manifest.RavdessConfig),
                    ("prepare-esd", "--raw-dir", manifest.EsdConfig),
                    ("build-manifest", "--input-dir", manifest.BuildManifestConfig),
                    ("merge-manifests", "--input-dirs", manifest.MergeManifestsConfig)]


@pytest.mark.parametrize("command,input_flag,config_cls", MANIFEST_CONFIGS, ids=[c[0] for c in MANIFEST_CONFIGS])
def test_manifest_config_is_the_one_source_of_flags_and_defaults(command, input_flag, config_cls):
    """Each subcommand's flags are its config's fields (the shared ManifestConfig's last), with its defaults."""
    import argparse
    import dataclasses
    parser = argparse.ArgumentParser()
    manifest.register_cli(parser.add_subparsers(dest="command"))
    a = parser.parse_args([command, input_flag, "i", "--output-dir", "o"])
    assert config_cls.from_params(vars(a)) == config_cls()
    cli_fields = [f.name for f in dataclasses.fields(config_cls) if f.metadata.get("cli", True)]
    sub = next(act for act in parser._actions if isinstance(act, argparse._SubParsersAction)).choices[command]
    flags = [act.dest for act in sub._actions if act.dest not in ("help", input_flag[2:].replace("-", "_"),
                                                                  "output_dir")]
    shared = [f.name for f in dataclasses.fields(manifest.ManifestConfig)]
    assert flags[-2:] == shared and sorted(flags) == sorted(cli_fields)


def test_manifest_config_and_keyword_forms_agree(iemocap_small):
    """`config=` and keyword arguments are the same settings: keywords override a config; an unknown one is
    refused by name."""
    tmp, _ = iemocap_small
    cfg = manifest.IemocapConfig(fold=1, skip_audio_check=True)
    by_config = manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "a", config=cfg)
    by_keywords = manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "b", fold=1, skip_audio_check=True)
    assert by_config.summary["split_rule"] == by_keywords.summary["split_rule"]
    assert by_config.summary["counts"] == by_keywords.summary["counts"]
    overridden = manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "c", config=cfg, fold=None)
    assert overridden.summary["split_rule"]["test"] == ["Session5"]
    with pytest.raises(SERError, match="no_such_setting"):
        manifest.prepare_iemocap(raw_dir=tmp / "raw", output_dir=tmp / "d", no_such_setting=1)


def test_cli_runs_and_reports_errors(tmp_path, capsys):
    root = make_split_layout(tmp_path / "data")
    rc = cli.main(["build-manifest", "--input-dir", str(root), "--output-dir", str(tmp_path / "out"),
                   "--mode", "auto", "--use-iemocap-map", "--allowed-labels", "ANGRY,HAPPY,SAD,NEUTRAL"])
    assert rc == 0
    assert read_json(tmp_path / "out" / "summary.json")["totals"]["all"] == 26
    assert "wrote" in capsys.readouterr().out
    rc = cli.main(["prepare-iemocap", "--raw-dir", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "o")])
    assert rc == 1
    assert "missing: IEMOCAP raw dir not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("name,expected", [
    ("01_iemocap_manifest", {"run_dir": "outputs/cpu", "raw_dir": "", "preset": "4class",
                             "train_sessions": "Session1,Session2,Session3", "val_sessions": "Session4",
                             "test_sessions": "Session5", "min_duration_sec": 0.2, "fold": None}),
    ("02_folder_manifest", {"run_dir": "outputs/cpu", "casia_dir": "", "allowed_labels": "ANGRY,HAPPY,SAD,NEUTRAL",
                            "train_speakers": "liuchanhg,wangzhe", "val_speakers": "zhaoquanyin",
                            "test_speakers": "ZhaoZuoxiang", "speaker_pattern": "", "language": "zh",
                            "source_dataset": "casia_4class", "english_manifest": "", "show_layout_demo": True}),
])
def test_notebook_parameters_are_plain_literals(name, expected):
    import ast
    nb = json.loads((Path(__file__).parent.parent / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    src = lambda c: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]  # noqa: E731
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    values = {}
    for node in ast.parse(src(params[0])).body:
        assert isinstance(node, ast.Assign), ast.dump(node)
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert {k: values[k] for k in expected} == expected
    import papermill
    # papermill must read every parameter (it silently skips lines it cannot parse)
    path = Path(__file__).parent.parent / "notebooks" / f"{name}.ipynb"
    assert set(papermill.inspect_notebook(str(path))) == set(values)
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert src(first_code).splitlines() == ["import ser_helpers as ser", "ser.nb_setup()"]


def test_notebook_parameters_are_the_config_defaults():
    """Notebook 01's settings are IemocapConfig's defaults; notebook 02's are BuildManifestConfig's, but for its
    CASIA choices (CasiaConfig's speaker lists, language, minimum duration) and the label words."""
    import nbformat

    def parameters(name):
        nb = nbformat.read(str(Path(__file__).parent.parent / "notebooks" / f"{name}.ipynb"), as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        scope = {}
        exec(cell.source, scope)  # plain literals (test_notebook_parameters_are_plain_literals)
        return scope

    assert manifest.IemocapConfig.from_params(parameters("01_iemocap_manifest")) == manifest.IemocapConfig()
    nb02 = parameters("02_folder_manifest")
    casia = manifest.CasiaConfig()
    assert manifest.BuildManifestConfig.from_params(nb02) == manifest.BuildManifestConfig(
        allowed_labels="ANGRY,HAPPY,SAD,NEUTRAL", train_speakers=casia.train_speakers,
        val_speakers=casia.val_speakers, test_speakers=casia.test_speakers, min_duration_sec=casia.min_duration_sec,
        language=casia.language, source_dataset="casia_4class")


# ----------------------------------------------------------------------------- package layout
# pipeline order of the manifest modules: each may import only modules listed before it
MANIFEST_MODULES = ["base", "labels", "probe", "split", "write", "iemocap", "folders", "casia", "ravdess", "esd",
                    "merge", "views", "demo_layouts", "cli"]


def test_manifest_modules_import_only_earlier_ones_and_name_their_notebook():
    import ast
    import importlib
    pkg = Path(manifest.__file__).parent
    assert sorted(p.stem for p in pkg.glob("*.py") if p.stem != "__init__") == sorted(MANIFEST_MODULES)
    for k, name in enumerate(MANIFEST_MODULES):
        tree = ast.parse((pkg / f"{name}.py").read_text(encoding="utf-8"))
        siblings = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}
        assert siblings <= set(MANIFEST_MODULES[:k]), f"manifest/{name}.py imports a later stage: {siblings}"
        doc = ast.get_docstring(tree) or ""
        assert "notebook" in doc, f"manifest/{name}.py: the docstring names no notebook"
        mod = importlib.import_module(f"ser_helpers.manifest.{name}")
        public = [n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == mod.__name__]
        missing = [n for n in public if getattr(manifest, n, None) is not getattr(mod, n)]
        assert not missing, f"ser_helpers.manifest does not re-export {missing} of manifest/{name}.py"
