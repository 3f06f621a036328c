import sys
sys.path.insert(0, ".")
from tools.nbbuild import write_notebook

cells = [
("md", """
# 05 · Serve the model: the SER HTTP service

Notebook 03 trained an audio emotion model and 04 measured it. Here it goes to work behind HTTP, with the **same
contract as the user's existing service**, so their clients (and their deployment scripts) keep working unchanged:

* configuration by environment: `SER_ENGINE=hf_wav2vec2`, `SER_HF_MODEL_DIR=<best_model dir>`,
  `SER_HF_DEVICE=auto|cpu|cuda`, `SER_HF_ROUTING=single|language` (with `SER_HF_MODEL_DIR_EN`, `SER_HF_MODEL_DIR_ZH`,
  `SER_HF_DEFAULT_LANGUAGE`), limits `SER_MAX_UPLOAD_MB` (25) and `SER_MAX_DURATION_SEC` (600), and optionally
  `SER_FUSION_DIR` (the `fusion_best/` of notebook 09: adds the calibrated audio+text `fusion` answer);
* `POST /ser/analyze` (multipart: `file`, `segment_ms` = 8000, `overlap_ms` = 0, `language_hint` = en|zh, and 12
  optional text-feature fields) answers `overall`, per-`segments` emotions, `audioSummary`, `textFeatures`, `fusion`
  and `meta`; emotions are `ANGRY HAPPY NEUTRAL SAD`;
* `GET /health`, `GET /warmup`, `POST /asr/transcribe`.

How it works: the upload is decoded **from bytes in memory** (never a server-side path from the request), downmixed,
resampled to 16 kHz and cut into windows of `segment_ms`; all windows are classified in one batched call of the
same `AudioClassifier` that notebooks 03-04 use, and `overall` is the mean of the windows' probabilities. Models load
once, at start-up; inference runs in a worker thread under a per-model lock, so `/health` answers while a long
analysis runs. Bad requests get a JSON `detail`: 400 (bad parameters, unreadable/empty/silent audio), 413 (too
large or too long), 422 (no `file` field).

**Which models it can serve.** This service loads every audio model of this project through `AudioClassifier`:
the wav2vec2-family classifiers of notebook 03 (`Wav2Vec2ForSequenceClassification`, e.g. the scratch
`multilingual` model or a fine-tuned `facebook/wav2vec2-base`), the pretrained **Whisper-encoder** classifier
(`WhisperForAudioClassification`, `multilingual_whisper`; a segment longer than its window is scored as the mean of
its windows) and the MFCC + prosody baseline folder. The user's **own** production service loads only
`Wav2Vec2ForSequenceClassification`: it can serve the wav2vec2 models as they are, but not the Whisper-encoder model
or the baseline; to deploy those, run this service (same contract) or extend theirs. Each model card (`README.md`
in `best_model/`) says the same for its model.
"""),
("code", "import ser_helpers as ser\nser.nb_setup()"),
("params", """
run_dir = "outputs/cpu"
model_name = "multilingual"
manifest_name = "multilingual_4class"
n_clips = 4
"""),
("code", """
from pathlib import Path
run = ser.layout.RunLayout(run_dir)  # every path of a run: ser_helpers/layout.py
model_dir = run.audio_best_model(model_name)
test_csv = run.manifest(manifest_name) / "test.csv"
service_dir = run.service
"""),
("md", """
## Start the service

`start_server` runs `uvicorn ser_helpers.service:app` as a separate process on a free loopback port, with
`SER_HF_MODEL_DIR` pointing at the trained model, and waits until `/health` answers. It is exactly what you would
run by hand; the server is stopped in the last cell, and also when this kernel exits for any reason (it is asked to
die with its parent), so a failed run leaves no server behind.
"""),
("code", """
server = ser.service.start_server(model_dir, SER_HF_DEVICE="auto")
server.url
"""),
("md", "`/health` says which engine, model, device and routing the service runs with:"),
("code", "ser.service.get_json(server.url + \"/health\")"),
("md", """
The service warms up at start-up (one dummy inference per loaded model: the first call of a model pays one-off
costs), so it is ready before it takes traffic; `GET /warmup` shows that result and makes the server do no work
(`POST /warmup` reruns it, queued like an analysis):
"""),
("code", "ser.service.get_json(server.url + \"/warmup\")"),
("md", """
## Analyse a few test clips

One clip per emotion from the **test** split (speakers the model never heard), English and Mandarin in turn, each
posted with its language as `language_hint`. Each clip fits in one 8-second segment, so its segment answer is exactly
what `ser evaluate-wav2vec2` predicts for that file (a test checks this). The `true` column is the corpus label.
"""),
("code", """
clips = ser.service.pick_test_clips(test_csv, n_clips)
answers = ser.service.analyze_clips(server.url, clips)
ser.service.answers_table(answers, truth=dict(zip(clips.path.map(lambda p: Path(p).name), clips.label)))
"""),
("md", "One full answer, as a client receives it:"),
("code", """
import json
print(json.dumps(next(iter(answers.values())), indent=1)[:2500])
"""),
("md", """
## A long recording: one answer per segment

Real recordings are longer than one utterance. We join test clips into one recording of at least 20 s and post it
twice: with the default 8-second windows, then with 4-second windows overlapping by 1 second (`segment_ms=4000`,
`overlap_ms=1000`) for a finer timeline. Each bar is one segment: its height is split by the probability of each
emotion, the label on top is the segment's answer
(with overlap, a bar spans from its window's start to the next window's start).
"""),
("code", """
long_wav = ser.service.wav_bytes(ser.service.long_test_clip(clips.path, min_sec=20.0))
long_default = ser.service.post_clip(server.url, long_wav, filename="long.wav")
long_fine = ser.service.post_clip(server.url, long_wav, filename="long.wav", segment_ms=4000, overlap_ms=1000)
ser.service.answers_table({"long.wav (8 s windows)": long_default, "long.wav (4 s, 1 s overlap)": long_fine})
"""),
("code", "ser.service.segment_timeline(long_fine, service_dir / \"timeline.png\", title=\"long.wav, 4 s windows\");"),
("md", """
## Bad requests are answered, not crashed on

A silent upload and an impossible overlap: the service answers 400 with a `detail` that says what is wrong, and keeps
serving.
"""),
("code", """
silent = ser.service.wav_bytes([0.0] * 16000)   # one second of digital silence
{name: ser.service.post_raw(server.url, data, **form) for name, (data, form) in {
    "silent clip": (silent, {}), "overlap >= segment": (long_wav, {"segment_ms": 2000, "overlap_ms": 2000})}.items()}
"""),
("md", "Save the answers (for the report) and stop the service:"),
("code", """
ser.service.save_answers(service_dir / "answers.json", {**answers, "long.wav": long_default, "long_fine.wav": long_fine})
server.stop()
print(f"stopped the service at {server.url}")
"""),
("md", """
## Deploying it

On the serving machine, point the service at the trained model and start it, exactly as the user's runbook says:

```bash
export SER_ENGINE=hf_wav2vec2
export SER_HF_MODEL_DIR=outputs/cpu/models/audio/multilingual/best_model
export SER_HF_DEVICE=auto              # cuda when available
uvicorn ser_helpers.service:app --host 127.0.0.1 --port 8001   # loopback, behind an authenticating reverse proxy
# or: ser serve --model-dir outputs/cpu/models/audio/multilingual/best_model   (binds 127.0.0.1:8001)
curl -F file=@clip.wav -F segment_ms=8000 -F language_hint=en http://127.0.0.1:8001/ser/analyze
```

* **Two models, one per language**: `SER_HF_ROUTING=language`, `SER_HF_MODEL_DIR_EN=...`, `SER_HF_MODEL_DIR_ZH=...`,
  `SER_HF_DEFAULT_LANGUAGE=en`; `language_hint` picks the model and `meta.routeLanguage` says which one answered.
* **Fusion**: `SER_FUSION_DIR=outputs/cpu/fusion/models/fusion_best` adds the calibrated audio+text answer
  (`fusion: {enabled, ready, label, confidence, scores, temperature, audioOnly, textOnly}`), from text features the
  client posts or else from the fusion pipeline's own ASR and text models. Offline, our pipeline's transcripts are
  the corpus's **oracle** transcripts, which exist only for corpus files, so on new audio the text branch sees an
  empty transcript, and `/asr/transcribe` says that no real ASR is configured; with Whisper configured (GPU box) both
  work on any audio.
* **Limits**: uploads over `SER_MAX_UPLOAD_MB` (counted as they arrive, chunked ones too) or recordings over
  `SER_MAX_DURATION_SEC` get 413; the audio header is checked before decoding (4-192 kHz, 1-64 channels); at most
  `SER_WORKERS` requests run and `SER_MAX_QUEUE` wait, more get 503 with `Retry-After`; each request has a deadline
  (`SER_REQUEST_TIMEOUT_SEC`) and the work of a client that hangs up is dropped (`ser_helpers/service/admission.py`,
  `python bench/bench_soak.py`). The service has no authentication: keep it on loopback (`ser serve` binds
  127.0.0.1) and put a reverse proxy (TLS, authentication) in front of it.
* **CPU threads**: on CPU the service gives torch all cores but one (`SER_TORCH_THREADS` overrides), so the event
  loop keeps a core for new uploads and `/health` while segments are classified.
* **Throughput**: `python bench/bench_service.py` sends 200 requests, 16 at a time, and prints errors, p50/p95
  latency and requests per second.

What a stakeholder should keep in mind: the offline default model is small and trained on generated speech, so its
answers on real voices mean little; the service, its contract and its tests are the same on a GPU box with
IEMOCAP and `facebook/wav2vec2-base`, where the answers become meaningful.
"""),
]
write_notebook("notebooks/05_serve_ser_api.ipynb", cells)
