"""Build notebooks 01 and 02 (run from the repo root: .venv/bin/python tools/notebooks/build_01_02.py).

The parameters cells list IemocapConfig's and BuildManifestConfig's defaults as plain literals, generated here from
the dataclasses (`config_parameters`): a default is written once, in ser_helpers/manifest/. Notebook 02's own choices
(the CASIA layout's speaker lists, language and minimum duration, from CasiaConfig) are overrides.
"""
import sys

sys.path.insert(0, ".")
from ser_helpers.manifest import BuildManifestConfig, CasiaConfig, IemocapConfig  # noqa: E402
from tools.nbbuild import config_parameters, write_notebook  # noqa: E402

IEMOCAP_SETTINGS = ["preset", "train_sessions", "val_sessions", "test_sessions", "min_duration_sec", "fold"]
IEMOCAP_COMMENTS = {
    "preset": "4class (exc merged into hap) or 5class_fru",
    "fold": "1-5: a leave-one-session-out fold (test session N, val session N-1) instead of the lists above"}
FOLDER_SETTINGS = ["allowed_labels", "train_speakers", "val_speakers", "test_speakers", "speaker_pattern",
                   "train_ratio", "val_ratio", "test_ratio", "seed", "min_duration_sec", "language", "source_dataset"]
FOLDER_OVERRIDES = {"allowed_labels": "ANGRY,HAPPY,SAD,NEUTRAL", "train_speakers": CasiaConfig.train_speakers,
                    "val_speakers": CasiaConfig.val_speakers, "test_speakers": CasiaConfig.test_speakers,
                    "min_duration_sec": CasiaConfig.min_duration_sec, "language": CasiaConfig.language,
                    "source_dataset": f"casia_{CasiaConfig.preset}"}
FOLDER_COMMENTS = {
    "train_speakers": "empty lists: speakers assigned to splits by the ratios below",
    "speaker_pattern": "regex on file names, group 1 is the speaker (empty: speaker folders)"}

write_notebook("notebooks/01_iemocap_manifest.ipynb", [
    ("md", """
# 01 · IEMOCAP manifest: from the raw release to train / val / test

A **manifest** is the table every later stage reads instead of walking folders: one row per utterance,
starting `path,label,source_label,duration_sec`. This notebook reads the raw IEMOCAP layout
(`Session1..5/dialog/EmoEvaluation/*.txt`, `dialog/transcriptions/*.txt`, `sentences/wav/<dialog>/<utt>.wav`)
and writes `train.csv`, `val.csv`, `test.csv` and `summary.json`.

In the default run the raw folder is the **generated** corpus from notebook 00, written in exactly the real
layout, so the same parser serves the real IEMOCAP release on a GPU box (set `raw_dir` to it).
The same step on the command line: `ser prepare-iemocap --raw-dir ... --output-dir ... --preset 4class`.
"""),
    ("code", "import ser_helpers as ser\nser.nb_setup()"),
    ("params", """
run_dir = "outputs/cpu"
raw_dir = ""  # empty: {run_dir}/corpus/iemocap_raw (the generated corpus); or the real IEMOCAP_full_release folder
""" + config_parameters(IemocapConfig, IEMOCAP_SETTINGS, comments=IEMOCAP_COMMENTS)),
    ("md", """
## Parse and split

Each `EmoEvaluation` file holds a header line, then per utterance one summary line
`[start - end]<TAB>utterance_id<TAB>code<TAB>[V, A, D]` followed by annotator lines (`C-E1:`, `A-F1:` ...).
The parser keeps only lines matching the summary-line pattern, reads files as UTF-8 or latin-1 with any line
ending, and ignores the `Categorical/`, `Attribute/`, `Self-evaluation/` subfolders and macOS `._*` files, which
hold per-annotator copies that would otherwise count utterances twice. Durations come from each wav's header;
missing or unreadable wavs are skipped and listed in `summary.json`.
"""),
    ("code", """
run = ser.layout.RunLayout(run_dir)  # every path of a run: ser_helpers/layout.py
raw = raw_dir or run.iemocap_raw
out_dir = run.manifest(f"iemocap_{preset}")
config = ser.manifest.IemocapConfig.from_params(globals())  # the parameters above that name its fields
result = ser.manifest.prepare_iemocap(raw_dir=raw, output_dir=out_dir, config=config)
"""),
    ("md", """
## Utterances per split and label

The 4-class preset keeps `ang`, `hap`, `neu`, `sad` and **merges `exc` (excited) into `hap`**, as most IEMOCAP
papers do: `hap` alone is small (595 utterances in the real corpus) while `exc` has 1041, and the two are close in
valence and arousal. On the real corpus this gives 5531 utterances: neutral 1708, happy 1636 (595 hap + 1041 exc),
angry 1103, sad 1084; per session 1085 / 1023 / 1151 / 1031 / 1241, so train S1-3 / val S4 / test S5 =
3259 / 1031 / 1241. Session 4 is angry-heavy and Session 5 happy-heavy, so validation and test also differ in
label mix. Labels are stored as the IEMOCAP codes; display names appear only in tables and plots.
"""),
    ("code", "ser.manifest.counts_table(result.summary)"),
    ("md", "Before the merge, by source code (`exc` rows now carry label `hap`, `source_label` keeps `exc`):"),
    ("code", "ser.manifest.source_label_table(result.summary)"),
    ("code", 'ser.manifest.plot_counts(result.summary, f"{out_dir}/label_counts.png");'),
    ("md", """
## Dropped codes

Everything outside the preset is dropped and counted: `xxx` (annotators did not agree), `fru` (frustration, kept
by `5class_fru`), `sur`, `fea`, `oth`, `dis`. In the real corpus `xxx` and `fru` alone are 2507 and 1849 of the
10039 utterances, which is why only about 55 % of IEMOCAP is used for 4-class work.
"""),
    ("code", "ser.manifest.dropped_table(result.summary)"),
    ("md", """
## Speaker-independent split

Each IEMOCAP session has two actors (one female, one male), so splitting **by session** keeps every speaker in
one split only: the test score then says how the model does on voices it never heard. A random utterance split
would put the same voices in train and test and overstate accuracy (fine-tuned wav2vec2: 79.6 % WA
speaker-dependent vs 73.0 % speaker-independent, Wang et al. 2021). The speaker is read from the **last** part of
the utterance id: `Ses01F_impro01_M000` is the *male* actor of Session 1, speaking in a dialog the female actor
led. The writer refuses any manifest that puts a speaker in two splits.
"""),
    ("code", "ser.manifest.speakers_table(result.summary)"),
    ("md", """
Rows also carry `session, dialog_id, utterance_id`, the common columns `speaker, language, source_dataset,
transcript`, and `dialog_type` (`impro`/`script`). Scripted dialogs reuse the same scripts across sessions, so
text-only scores on scripted rows are optimistic (Pepino et al. 2020): later notebooks report the two apart.
"""),
    ("code", 'result.frames()["train"].head()'),
    ("code", "result.summary[\"dialog_types\"], result.summary[\"hours\"]"),
    ("md", """
## Leave-one-session-out folds

Published IEMOCAP numbers (SUPERB, EmoBox) average five folds, each testing on one session. `fold=N` (CLI
`--fold N`) writes that fold's split; fold 5 is the default split above.
"""),
    ("code", "import pandas as pd\npd.DataFrame(ser.manifest.iemocap_loso_folds())"),
    ("md", "Next: notebook 02 builds the Mandarin manifests from label folders and merges both languages."),
])

write_notebook("notebooks/02_folder_manifest.ipynb", [
    ("md", """
# 02 · Manifests from label folders, and a multilingual merge

Many emotion corpora come as folders named after the emotion. `build_manifest` (CLI `ser build-manifest`)
reads three layouts:

* **split layout** (the seed's preferred one): `train/ val/ test/`, each holding label folders;
* **flat layout**: label folders only, split here by ratios;
* **speaker folders holding label folders** (the CASIA layout `<speaker>/<emotion>/<id>.wav`).

Folder names and `allowed_labels` match case-insensitively as words or codes (`ANGRY`, `Angry`, `anger`, `ang`),
and become the IEMOCAP codes `ang hap neu sad`. This notebook builds the Mandarin part of the corpus
(CASIA layout), merges it with notebook 01's English manifests into `multilingual_4class`, and shows the other
two layouts on a few copied clips.
"""),
    ("code", "import ser_helpers as ser\nser.nb_setup()"),
    ("params", """
run_dir = "outputs/cpu"
casia_dir = ""  # empty: {run_dir}/corpus/casia_raw (speaker folders holding label folders + transcripts.csv)
""" + config_parameters(BuildManifestConfig, FOLDER_SETTINGS, FOLDER_OVERRIDES, FOLDER_COMMENTS) + """
english_manifest = ""  # empty: {run_dir}/manifests/iemocap_4class (notebook 01); "none": no merge
show_layout_demo = True
"""),
    ("md", """
## The Mandarin part: speaker folders holding label folders

`auto` mode finds no `train/ val/ test/` folders, so this is a flat layout; the folder above each label folder
is the speaker. With four speakers the split is by explicit lists (CASIA's usual one: two speakers train, one
validation, one test). `--use-iemocap-map` keeps the four IEMOCAP classes and `allowed_labels` drops fear and
surprise. The `transcripts.csv` sidecar (`file_id,speaker,emotion,text`) fills the `transcript` column that the
text branch needs; `language` and `source_dataset` mark every row for the multilingual stages.
"""),
    ("code", """
run = ser.layout.RunLayout(run_dir)  # every path of a run: ser_helpers/layout.py
casia = casia_dir or run.casia_raw
config = ser.manifest.BuildManifestConfig.from_params(globals(), use_iemocap_map=True)  # + the parameters above
zh = ser.manifest.build_manifest(input_dir=casia, output_dir=run.manifest(source_dataset), config=config)
"""),
    ("code", "ser.manifest.counts_table(zh.summary)"),
    ("code", "ser.manifest.speakers_table(zh.summary)"),
    ("code", "ser.manifest.dropped_table(zh.summary)"),
    ("code", 'ser.manifest.plot_counts(zh.summary, run.manifest(source_dataset) / "label_counts.png");'),
    ("code", 'zh.frames()["train"].head()'),
    ("md", """
## Merge English and Mandarin

`merge_manifests` (CLI `ser merge-manifests --input-dirs a,b`) concatenates the splits of both folders. Each
input keeps its own speaker-independent split; the merged manifest has `language` (`en`/`zh`) and
`source_dataset` on every row, which the training stage can weight by (`--source-weight-map`) and the fusion
stage routes on. Duplicate paths are refused (or dropped with `deduplicate_by_path=True`).
"""),
    ("code", """
en_dir = english_manifest or str(run.manifest("iemocap_4class"))
merge = en_dir.lower() != "none"
if merge:
    multi = ser.manifest.merge_manifests(input_dirs=[en_dir, run.manifest(source_dataset)],
                                         output_dir=run.manifest("multilingual_4class"))
"""),
    ("code", "ser.manifest.language_table(multi.summary) if merge else 'no merge (english_manifest = \"none\")'"),
    ("code", "ser.manifest.counts_table(multi.summary) if merge else None"),
    ("code", """
if merge:
    ser.manifest.plot_counts(multi.summary, run.manifest("multilingual_4class") / "label_counts.png");
"""),
    ("md", """
## The seed's two other layouts, on a few copied clips

Below, a few Mandarin clips are copied into a temporary folder twice: once as the **split layout**
(`train/ANGRY/...`, upper-case folder names, splits kept from above) and once as the **flat layout**
(`angry/...`). The split layout needs no decision. The flat layout without any speaker information can only be
split at random by label, so the same voice lands in train and test: `summary.json` records a warning. Given a
`speaker_pattern` (a regex on the file name; here the file ids start with the speaker), the split is
speaker-independent again. (Set `show_layout_demo = False` to skip this part.)
"""),
    ("code", """
import tempfile
if show_layout_demo:
    demo = ser.manifest.make_demo_layouts(run.manifest(source_dataset), tempfile.mkdtemp(prefix="layouts_"))
    split_demo = ser.manifest.build_manifest(input_dir=demo["split_layout"], output_dir=demo["split_layout"].parent / "m_split",
                                             use_iemocap_map=True, allowed_labels=allowed_labels)
    print(split_demo.summary["layout"], "|", split_demo.summary["split_rule"]["description"])
"""),
    ("code", """
if show_layout_demo:
    flat_random = ser.manifest.build_manifest(input_dir=demo["flat_layout"], output_dir=demo["flat_layout"].parent / "m_flat",
                                              use_iemocap_map=True, seed=seed)
    flat_speaker = ser.manifest.build_manifest(input_dir=demo["flat_layout"], output_dir=demo["flat_layout"].parent / "m_flat_spk",
                                               use_iemocap_map=True, seed=seed, speaker_pattern=r"^([^_]+)_")
    for r in (flat_random, flat_speaker):
        print(r.summary["split_rule"]["description"], "| speakers per split:", r.summary["n_speakers"], r.summary["warnings"][:1])
"""),
    ("md", """
Next: notebook 03 trains the audio model on `multilingual_4class` (or `iemocap_4class`).
"""),
])
print("ok")
