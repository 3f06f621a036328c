"""The demo driven as a person would: Debian's chromium, headless, via Playwright (never a downloaded
browser). Loads the page, uploads a clip, clicks Analyze, reads the label and probabilities shown and
checks them against the predictor; saves a screenshot and checks it is not blank."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ser_helpers import audio as audio_io  # noqa: E402
from ser_helpers import demo, repo_root  # noqa: E402
from ser_helpers.common import SAMPLE_RATE, display_name  # noqa: E402

from test_demo import FakePredictor, _fake_run, write_clip  # noqa: E402  (tests/ is on sys.path under pytest)

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
SCREENSHOT_DIR = Path(os.environ.get("SER_SCREENSHOT_DIR") or repo_root() / "outputs" / "test_screenshots")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; `make test` does it as root)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def read_label(page, elem_id: str, timeout_ms: int = 60_000) -> tuple[str, dict, dict]:
    """(top label shown, {name: exact meter value}, {name: percent text}) of a gr.Label."""
    root = page.locator(f"#{elem_id}")
    root.locator("[data-testid=label-output-value]").wait_for(timeout=timeout_ms)
    top = root.locator("[data-testid=label-output-value]").inner_text().strip()
    values, percents = {}, {}
    for row in root.locator(".confidence-set").all():
        name = row.locator("dt").inner_text().strip()
        values[name] = float(row.locator("meter").get_attribute("value"))
        percents[name] = row.locator("dd").inner_text().strip()
    return top, values, percents


def assert_shown(shown, probs: dict, tol=1e-6):
    top, values, percents = shown
    assert top == display_name(max(probs, key=probs.get))
    assert set(values) == {display_name(c) for c in probs}
    for code, p in probs.items():
        assert values[display_name(code)] == pytest.approx(p, abs=tol)
        assert percents[display_name(code)] == f"{round(p * 100)}%"


def screenshot_not_blank(page, name: str) -> Path:
    from PIL import Image
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / name
    page.screenshot(path=str(path), full_page=True)
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    assert pixels.std() > 10, f"{path}: screenshot looks blank (pixel std {pixels.std():.2f})"
    return path


def run_in_browser(browser, app, clip: Path, transcript: str | None = None):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app.local_url, wait_until="networkidle")
    page.locator(f"#{demo.ELEM_IDS['audio']} input[type=file]").set_input_files(str(clip))
    # the player appears once the upload reached the server
    page.locator(f"#{demo.ELEM_IDS['audio']} audio").first.wait_for(state="attached", timeout=30_000)
    if transcript is not None:
        page.locator(f"#{demo.ELEM_IDS['transcript']} textarea").fill(transcript)
    page.locator(f"#{demo.ELEM_IDS['submit']}").click()
    return page


def test_browser_fake_predictor(browser, tmp_path):
    clip = write_clip(tmp_path / "browser_clip.wav", seconds=1.3, sr=22050, channels=1)
    _, fusion_dir = _fake_run(tmp_path)
    examples = demo.find_examples(fusion_dir)
    app = demo.launch_demo(FakePredictor(), examples=examples, block=False)
    try:
        page = run_in_browser(browser, app, clip)
        direct = FakePredictor().predict(audio_io.load_audio(clip), SAMPLE_RATE)
        assert_shown(read_label(page, demo.ELEM_IDS["fused"]), direct["fused_probs"])
        assert_shown(read_label(page, demo.ELEM_IDS["audio_probs"]), direct["audio_probs"])
        assert f"{direct['temperature']:.3f}" in page.locator(f"#{demo.ELEM_IDS['details']}").inner_text()
        # type a transcript, submit again: the text branch and the fusion follow the typed words
        text = "I hate this, it is awful and terrible"
        page.locator(f"#{demo.ELEM_IDS['transcript']} textarea").fill(text)
        page.locator(f"#{demo.ELEM_IDS['submit']}").click()
        direct2 = FakePredictor().predict(audio_io.load_audio(clip), SAMPLE_RATE, transcript=text)
        page.locator(f"#{demo.ELEM_IDS['text_probs']} [data-testid=label-output-value]").wait_for(timeout=60_000)
        assert_shown(read_label(page, demo.ELEM_IDS["text_probs"]), direct2["text_probs"])
        page.wait_for_function(
            "([sel, want]) => { const m = document.querySelector(sel); return m && Math.abs(m.value - want) < 1e-6; }",
            arg=[f"#{demo.ELEM_IDS['fused']} [data-testid={display_name('ang')}-confidence-set] meter",
                 direct2["fused_probs"]["ang"]], timeout=60_000)
        assert_shown(read_label(page, demo.ELEM_IDS["fused"]), direct2["fused_probs"])
        screenshot_not_blank(page, "demo_fake_predictor.png")
        # a silent clip shows a readable error, not a stack trace
        silent = tmp_path / "silent.wav"
        import soundfile as sf
        sf.write(str(silent), np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
        page2 = run_in_browser(browser, app, silent)
        toast = page2.get_by_text("silent", exact=False).first
        toast.wait_for(timeout=30_000)
        assert "Traceback" not in page2.content()
        # an example is one click away: it fills clip, language and transcript; Analyze predicts on them
        ex = examples[-1]
        page3 = browser.new_page(viewport={"width": 1280, "height": 1000})
        page3.goto(app.local_url, wait_until="networkidle")
        page3.get_by_text(f"{display_name(ex.label)} · {Path(ex.path).name}").click()
        page3.wait_for_function("([sel, want]) => document.querySelector(sel).value === want",
                                arg=[f"#{demo.ELEM_IDS['transcript']} textarea", ex.transcript], timeout=30_000)
        page3.locator(f"#{demo.ELEM_IDS['submit']}").click()
        direct3 = FakePredictor().predict(audio_io.load_audio(ex.path), SAMPLE_RATE, language=ex.language,
                                          transcript=ex.transcript)
        assert_shown(read_label(page3, demo.ELEM_IDS["fused"]), direct3["fused_probs"])
        assert_shown(read_label(page3, demo.ELEM_IDS["text_probs"]), direct3["text_probs"])
        screenshot_not_blank(page3, "demo_fake_example.png")
        for pg in (page, page2, page3):
            pg.close()
    finally:
        app.close()


def test_browser_real_predictor(browser, request):
    fusion_dir = os.environ.get("SER_DEMO_FUSION_DIR") or str(
        Path(request.getfixturevalue("smoke_run")) / "fusion" / "models" / "fusion_best")
    from ser_helpers.predictor import FusionPredictor
    examples = demo.find_examples(fusion_dir)
    assert examples, f"no test-split examples found for {fusion_dir}"
    clip = Path(examples[-1].path)
    direct = FusionPredictor.load(fusion_dir).predict(audio_io.load_audio(clip), SAMPLE_RATE)
    app = demo.launch_demo(fusion_dir, block=False)
    try:
        page = run_in_browser(browser, app, clip)
        assert_shown(read_label(page, demo.ELEM_IDS["fused"]), direct["fused_probs"], tol=1e-5)
        assert_shown(read_label(page, demo.ELEM_IDS["audio_probs"]), direct["audio_probs"], tol=1e-5)
        screenshot_not_blank(page, "demo_fusion_best.png")
        page.close()
    finally:
        app.close()


def test_browser_fills_the_transcript_with_recognised_speech(browser, request):
    """Upload an ENGLISH clip with the transcript box empty: the bundled Whisper tiny.en's text appears in the
    box, then the fused answer (the same as the predictor's own ASR path)."""
    fusion_dir = os.environ.get("SER_DEMO_FUSION_DIR") or str(
        Path(request.getfixturevalue("smoke_run")) / "fusion" / "models" / "fusion_best")
    from ser_helpers.asr import wer
    from ser_helpers.predictor import FusionPredictor
    english = [ex for ex in demo.find_examples(fusion_dir) if ex.language == "en" and ex.transcript]
    assert english, f"no English test-split example found for {fusion_dir}"
    ex = english[0]
    predictor = FusionPredictor.load(fusion_dir)
    direct = predictor.predict(audio_io.load_audio(ex.path), SAMPLE_RATE, language="en")
    # the point is that speech was recognised (words of the reference came out), not how well: tiny.en on one
    # espeak clip padded to 30 s has a per-clip WER of 0.2-0.5 (0.50 on the smoke run's first English clip)
    assert direct["transcript"].strip() and wer([ex.transcript], [direct["transcript"]])["wer"] < 0.8
    app = demo.launch_demo(fusion_dir, block=False)
    try:
        page = run_in_browser(browser, app, Path(ex.path))  # language "auto", box left empty
        page.wait_for_function("([sel, want]) => document.querySelector(sel).value === want",
                               arg=[f"#{demo.ELEM_IDS['transcript']} textarea", direct["transcript"]],
                               timeout=120_000)
        assert_shown(read_label(page, demo.ELEM_IDS["fused"], timeout_ms=120_000), direct["fused_probs"], tol=1e-5)
        assert_shown(read_label(page, demo.ELEM_IDS["audio_probs"]), direct["audio_probs"], tol=1e-5)
        screenshot_not_blank(page, "demo_recognised_transcript.png")
        page.close()
    finally:
        app.close()
