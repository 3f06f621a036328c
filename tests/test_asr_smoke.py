"""The smoke run's real-ASR artifacts: notebook 06 recognised English test rows with the bundled tiny.en
(test_features_asr.csv + WER), notebook 09 scored fusion_best on reference vs recognised transcripts, and
REPORT.md shows both."""
import json

import pandas as pd


def test_smoke_run_recognises_english_test_rows_and_reports_the_cost(smoke_run):
    feats = smoke_run / "features"
    summary = json.loads((feats / "summary.json").read_text())
    ev = summary["asr_eval"]
    assert ev["asr"]["model"] == "tiny.en" and ev["asr"]["engine"] == "faster-whisper"
    test = ev["splits"]["test"]
    assert 0 < test["rows"] <= 12 and 0.0 <= test["wer"] < 0.6  # smoke.yaml: asr_eval_max_rows 12
    ref = pd.read_csv(feats / "test_features.csv", keep_default_na=False)
    rec = pd.read_csv(feats / "test_features_asr.csv", keep_default_na=False)
    assert list(rec.columns) == list(ref.columns) + ["reference_transcript"]
    assert set(rec["language"]) == {"en"} and len(rec) == test["rows"]
    same = ref.set_index("path").loc[rec["path"]]
    assert list(same["transcript"]) == list(rec["reference_transcript"])  # the reference rows, recognised again
    audio_cols = [c for c in ref.columns if c.startswith("audio_")]
    assert (same[audio_cols].to_numpy() == rec[audio_cols].to_numpy()).all()  # audio features unchanged
    assert summary["components"]["asr"]["inference"]["model"] == "tiny.en"
    cmp_ = json.loads((smoke_run / "fusion" / "models" / "asr_vs_reference.json").read_text())
    assert cmp_["rows"] == test["rows"] and cmp_["languages"] == ["en"]
    assert cmp_["macro_f1_cost"] == cmp_["reference"]["macro_f1"] - cmp_["recognised"]["macro_f1"]
    report = (smoke_run / "REPORT.md").read_text()
    assert "Real speech recognition" in report and f"{test['rows']} English test rows" in report
