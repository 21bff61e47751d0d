#!/usr/bin/env python3
"""Drives `tailor serve`'s web page in headless Chromium (Debian's chromium and chromium-driver,
through Selenium from PyPI) as a person would, and checks the screenshots it takes:
  - Chat: pick a collection, send a question, see the streamed answer and its sources, open a
    source's passage.                                                   -> chat.png
  - Collections: create a collection, upload a file, see it ingested (progress bar full).
                                                                        -> collections.png
  - Fine-tuning: upload a JSONL of examples, start a job, see it succeed and its loss curve.
                                                                        -> tuning.png
  - Reports: open a `tailor compare` report.                            -> report.png
Prints one JSON object with what it saw, and for each screenshot whether the regions that must
show something (the answer, the opened passage, the full progress bar, the report) do: pixels
unlike the page background, and the accent colour filling the progress bar.
    web_page.py BASE_URL API_KEY MODEL COLLECTION_ID OUT_DIR DOCUMENT_PATH TRAINING_JSONL"""
import json, os, sys, time
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

base, key, model, collection, out_dir, document, training = sys.argv[1:8]
os.makedirs(out_dir, exist_ok=True)
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", "--force-device-scale-factor=1"):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, 180, poll_frequency=0.2)
out = {}


def region_check(name, selector, accent=False):
    """Whether the screenshot shows something inside the box of the last element `selector`
    matches (looked up now: the page redraws its tables as it polls): the share of pixels unlike
    the background there, and (accent) the share in the page's accent colour."""
    r = driver.execute_script("const all = document.querySelectorAll(arguments[0]); const b = all[all.length - 1].getBoundingClientRect();"
                              " return [Math.max(0, b.left), Math.max(0, b.top), b.right, b.bottom];", selector)
    img = Image.open(os.path.join(out_dir, name)).convert("RGB")
    box = tuple(int(round(v)) for v in r)
    crop = img.crop(box)
    px = list(crop.getdata())
    if not px:
        return {"visible": False}
    bg = (246, 247, 249)
    ink = sum(1 for p in px if sum(abs(a - b) for a, b in zip(p, bg)) > 120 and sum(abs(a - b) for a, b in zip(p, (255, 255, 255))) > 120)
    res = {"box": box, "ink_share": round(ink / len(px), 4)}
    if accent:
        res["accent_share"] = round(sum(1 for p in px if abs(p[0] - 0x2f) < 30 and abs(p[1] - 0x6f) < 30 and abs(p[2] - 0xde) < 30) / len(px), 4)
    return res


try:
    # The key goes into the page's storage first (from a page of the same origin that calls no
    # API), as a person types it once when the page asks.
    driver.get(base + "/health")
    driver.execute_script("localStorage.setItem('tailorKey', arguments[0]);", key)
    driver.get(base + "/#chat")
    wait.until(lambda d: len(Select(d.find_element(By.ID, "collection")).options) > 1)
    Select(driver.find_element(By.ID, "model")).select_by_value(model)
    Select(driver.find_element(By.ID, "collection")).select_by_value(collection)
    driver.find_element(By.ID, "input").send_keys("What pressure are the tyres inflated to?")
    driver.find_element(By.ID, "go").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sources .source") and d.find_element(By.ID, "go").is_enabled())
    answer = driver.find_elements(By.CSS_SELECTOR, ".msg.assistant span")[-1]
    out["answer"] = answer.text
    sources = driver.find_elements(By.CSS_SELECTOR, "#sources .source")
    out["sources"] = [s.find_element(By.CLASS_NAME, "file").text for s in sources]
    sources[0].click()
    passage = sources[0].find_element(By.CLASS_NAME, "passage")
    wait.until(lambda d: passage.is_displayed())
    out["passage"] = passage.text
    out["page_fits_width"] = driver.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    driver.save_screenshot(os.path.join(out_dir, "chat.png"))
    out["chat_answer_region"] = region_check("chat.png", ".msg.assistant")
    out["chat_passage_region"] = region_check("chat.png", "#sources .source.open .passage")

    driver.find_element(By.ID, "tab-collections").click()
    driver.find_element(By.ID, "newStore").send_keys("web docs")
    driver.find_element(By.ID, "createStore").click()
    wait.until(lambda d: any("web docs" in o.text for o in Select(d.find_element(By.ID, "uploadStore")).options))
    driver.find_element(By.ID, "uploadFile").send_keys(os.path.abspath(document))
    driver.find_element(By.ID, "upload").click()
    texts = lambda sel: driver.execute_script("return [...document.querySelectorAll(arguments[0])].slice(1).map(r => r.innerText)", sel)
    wait.until(lambda d: any("completed" in t for t in texts("#ingests tr")))
    time.sleep(1.2)   # the collections table catches up on its next poll
    out["ingest_rows"] = texts("#ingests tr")
    out["stores"] = texts("#stores tr")
    driver.save_screenshot(os.path.join(out_dir, "collections.png"))
    out["progress_bar_region"] = region_check("collections.png", "#ingests .bar", accent=True)

    driver.find_element(By.ID, "tab-tuning").click()
    wait.until(lambda d: len(Select(d.find_element(By.ID, "tuneModel")).options) > 0)
    Select(driver.find_element(By.ID, "tuneModel")).select_by_value(model)
    epochs = driver.find_element(By.ID, "tuneEpochs"); epochs.clear(); epochs.send_keys("2")
    driver.find_element(By.ID, "tuneFile").send_keys(os.path.abspath(training))
    driver.find_element(By.ID, "tune").click()
    wait.until(lambda d: any("succeeded" in t or "failed" in t for t in texts("#jobs tr")))
    time.sleep(2.5)   # the curve redraws on the next poll
    out["job_rows"] = texts("#jobs tr")
    out["curve_points"] = driver.execute_script("const l = document.querySelector('#curve polyline'); return l ? l.getAttribute('points').trim().split(' ').length : 0")
    driver.save_screenshot(os.path.join(out_dir, "tuning.png"))
    out["curve_region"] = region_check("tuning.png", "#curve", accent=True)

    driver.find_element(By.ID, "tab-reports").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#reports a"))
    driver.find_elements(By.CSS_SELECTOR, "#reports a")[0].click()
    frame = driver.find_element(By.ID, "reportFrame")
    wait.until(lambda d: d.execute_script("return arguments[0].srcdoc.length", frame) > 0)
    time.sleep(0.5)
    driver.save_screenshot(os.path.join(out_dir, "report.png"))
    out["report_region"] = region_check("report.png", "#reportFrame")
    driver.switch_to.frame(frame)
    out["report_text"] = driver.find_element(By.TAG_NAME, "body").text[:200]
    driver.switch_to.default_content()
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
    try:
        driver.save_screenshot(os.path.join(out_dir, "failure.png"))
        out["page_text"] = driver.find_element(By.TAG_NAME, "body").text[:2000]
        out["console"] = [l["message"] for l in driver.get_log("browser")][:20]
    except Exception:
        pass
finally:
    driver.quit()
print(json.dumps(out))
