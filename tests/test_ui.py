"""The memory browser (`lmm-mcp ui`) as a user meets it: a real server process on 127.0.0.1, reached over HTTP
for the guard and each page's content, and driven in headless Chromium to search, open a session and correct a
memory, whose correction is then read from the SQLite file itself.

The browser test needs Chromium, its driver and selenium (`apt-get install chromium chromium-driver`, the `dev`
extra). Without them it skips on a workstation and fails in CI (`CI` set), where they must be installed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from markupsafe import escape

from lmm_mcp.app import App
from lmm_mcp.config import Config
from lmm_mcp.samples import samples_path

POSTGRES = "decision:home-dev-code-tasklane-api:database=postgresql"
SQLITE = "decision:home-dev-code-tasklane-api:database=sqlite"
ROUTES = ("/", "/memories", f"/memory?key={quote(SQLITE)}", "/search?q=database", "/versions", "/job")
# A 1x1 PNG, for where only the file's place matters.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


# ----------------------------------------------------------------------------------------- a running ui


class Served:
    """An `lmm-mcp ui` process and plain HTTP requests to it (no redirects followed, no cookies kept)."""

    def __init__(self, home: Path, claude: Path, env: dict[str, str] | None = None):
        self.cfg = Config.load(home=home, claude_dir=claude)
        env = {**(env or os.environ), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lmm_mcp", "ui", "--port", "0", "--no-open", "--home", str(home)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self.proc.stdout.readline().strip()  # the URL, printed once the port is bound
        found = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", line)
        if found is None:
            self.stop()
            raise AssertionError(f"lmm-mcp ui printed {line!r}; stderr: {self.proc.stderr.read()}")
        self.url, self.port, self.token = line, int(found[1]), found[2]
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.request("GET", "/")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    def request(
        self,
        method: str,
        path: str,
        *,
        cookie: bool = False,
        host: str | None = None,
        body: str | None = None,
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Host": host or f"127.0.0.1:{self.port}"}
        if cookie:
            headers["Cookie"] = f"lmm_ui_token_{self.port}={self.token}"
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read().decode("utf-8", "replace")
        conn.close()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, data

    def page(self, path: str) -> str:
        status, _headers, text = self.request("GET", path, cookie=True)
        assert status == 200, (path, status, text[:300])
        return text

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _home(root: Path, *, embed: bool) -> tuple[Path, Path]:
    """The bundled sample projects ingested into a new home, with one published adapter version."""
    from trainer.checkpoint import update_run
    from trainer.report import plot_losses
    from trainer.versions import publish

    claude = root / "projects"
    shutil.copytree(samples_path(), claude)
    cfg = Config.load(home=root / "home", claude_dir=claude)
    with App.open(cfg) as app:
        app.ingest(embed=embed)
    adapter = root / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    run = cfg.home / "runs" / "r-20261101-120000" / "eval"
    run.mkdir(parents=True)
    curve = [
        {"step": i, "loss": 3.0 / (1 + i / 8), "val_loss": 3.1 / (1 + i / 9) if i % 5 == 0 else None}
        for i in range(40)
    ]
    plot_losses({"sft": curve}, run / "loss.png")  # as a run's report draws it
    update_run(run.parent, status="done")
    evaluation = {
        "model": {"keyword_coverage": 0.61, "citation_accuracy": 0.9, "count": 40},
        "baseline": {"keyword_coverage": 0.52, "citation_accuracy": 1.0, "count": 40},
        "verdict": {"beats_retrieval": True, "why": "keyword coverage 0.610 against retrieval's 0.520"},
    }
    metrics = {"eval": evaluation, "sft": {"best_val_loss": 1.234, "steps": 30}}
    publish(cfg.models_dir, adapter, config={"model": "tiny-base", "run": run.parent.name}, metrics=metrics)
    return cfg.home, claude


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = Served(*_home(tmp_path_factory.mktemp("ui"), embed=False))
    yield server
    server.stop()


# ----------------------------------------------------------------------------------------- the guard


@pytest.mark.parametrize("path", ROUTES)
def test_every_page_refuses_a_request_without_the_token(served, path):
    status, _headers, text = served.request("GET", path)
    assert status == 403 and "token" in text
    wrong = f"{path}{'&' if '?' in path else '?'}token=not-it"
    assert served.request("GET", wrong)[0] == 403
    assert served.request("GET", path, cookie=True)[0] == 200


def test_the_token_in_the_url_becomes_a_strict_cookie_and_leaves_the_url(served):
    status, headers, _ = served.request("GET", f"/search?q=tests&token={served.token}")
    assert status == 303 and headers["location"] == "/search?q=tests"
    cookie = headers["set-cookie"]
    assert (
        f"lmm_ui_token_{served.port}={served.token}" in cookie
        and "HttpOnly" in cookie
        and "samesite=strict" in cookie.lower()
    )
    assert served.request("GET", f"//evil.example/?token={served.token}")[1]["location"] == "/evil.example/"
    _status, headers, _ = served.request("GET", "/", cookie=True)
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "10.0.0.1"])
def test_a_foreign_host_header_is_refused_even_with_the_token(served, host):
    """A DNS-rebound name points at 127.0.0.1 too; its Host header gives it away."""
    assert served.request("GET", "/", cookie=True, host=host)[0] == 403
    assert served.request("GET", "/", cookie=True, host=f"localhost:{served.port}")[0] == 200


def test_an_edit_without_the_form_token_is_refused_and_changes_nothing(served):
    for body in (f"key={quote(POSTGRES)}&action=forget", f"key={quote(POSTGRES)}&action=forget&csrf=guess"):
        status, _headers, _text = served.request("POST", "/memory", cookie=True, body=body)
        assert status == 403
    with sqlite3.connect(served.cfg.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM memory_edits").fetchone()[0] == 0
        assert conn.execute("SELECT 1 FROM memories WHERE key = ?", (POSTGRES,)).fetchone() == (1,)


def test_a_port_in_use_is_a_clear_error(served):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmm_mcp",
            "ui",
            "--port",
            str(served.port),
            "--no-open",
            "--home",
            str(served.cfg.home),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        out.returncode == 2 and f"cannot listen on 127.0.0.1:{served.port}" in out.stderr and not out.stdout
    )


# ----------------------------------------------------------------------------------------- the pages


def test_the_front_page_lists_projects_and_their_sessions_by_day(served):
    text = served.page("/")
    for name in ("tasklane-api", "logsift", "pulse-dashboard"):
        assert name in text
    with sqlite3.connect(served.cfg.db_path) as conn:
        key, started, prompt = conn.execute(
            "SELECT s.key, s.started_at, t.text FROM sessions s JOIN turns t ON t.session_key = s.key"
            " WHERE s.agent_id IS NULL AND t.kind = 'prompt' ORDER BY s.started_at, t.id LIMIT 1"
        ).fetchone()
    assert f'href="/session/{key}"' in text and started[:10] in text
    assert escape(" ".join(prompt.split())[:60]) in text  # an untitled session shows its first prompt


def test_a_session_page_shows_its_turns_with_tool_calls_folded(served):
    with sqlite3.connect(served.cfg.db_path) as conn:
        key, prompt = conn.execute(
            "SELECT session_key, text FROM turns WHERE kind = 'prompt' AND role = 'user' ORDER BY id LIMIT 1"
        ).fetchone()
        calls = conn.execute(
            "SELECT count(*) FROM turns WHERE session_key = ? AND tool_calls != '[]'", (key,)
        ).fetchone()[0]
    text = served.page(f"/session/{key}")
    assert escape(prompt.split("\n")[0][:40]) in text
    assert text.count("<summary>tool call:") == calls > 0
    assert served.request("GET", "/session/no-such-session", cookie=True)[0] == 404


def test_the_memories_page_shows_sources_and_what_superseded_each(served):
    text = served.page("/memories?project=/home/dev/code/tasklane-api&category=decision&all=1")
    assert SQLITE in text and POSTGRES in text and "superseded by" in text
    assert re.search(r'href="/session/[\w-]+\?turn=[\w%-]+#t-[\w-]+"', text)
    current = served.page("/memories?project=/home/dev/code/tasklane-api&category=decision")
    assert POSTGRES in current and f'key={quote(SQLITE, safe="")}"' not in current


def test_a_memory_page_shows_its_history_and_the_edit_form(served):
    text = served.page(f"/memory?key={quote(SQLITE, safe='')}")
    assert "Superseded by, in order" in text and "PostgreSQL" in text
    assert f'name="csrf" value="{served.token}"' in text and 'id="edit-form"' in text
    newer = served.page(f"/memory?key={quote(POSTGRES, safe='')}")
    assert "It replaced:" in newer and "SQLite" in newer
    assert served.request("GET", "/memory?key=nothing", cookie=True)[0] == 404


def test_search_shows_each_hits_bm25_and_vector_rank(served):
    text = served.page("/search?q=which+database+for+tasklane")
    ranks = re.findall(r'<td class="num bm25">([^<]+)</td>\s*<td class="num vector">([^<]+)</td>', text)
    assert ranks and all(b.isdigit() for b, _v in ranks)  # every hit here came from BM25
    assert all(v == "–" for _b, v in ranks)  # and this store has no vectors: none from the vector side
    assert "ranking: bm25" in text and "hit-link" in text
    home = str(served.cfg.home)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmm_mcp",
            "search",
            "which database for tasklane",
            "--k=20",
            "--json",
            "--home",
            home,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    hits = json.loads(out.stdout)["hits"]  # the shell's search gives the same ranks
    assert [(str(h["bm25_rank"]), h["vector_rank"]) for h in hits] == [(b, None) for b, _v in ranks]


def test_the_versions_page_shows_the_evaluation_and_the_loss_curve(served):
    text = served.page("/versions")
    assert "active" in text and "beats retrieval" in text and "tiny-base" in text
    assert re.search(r"keyword coverage</td><td class=\"num\">0\.610</td><td class=\"num\">0\.520", text)
    assert "sft.best_val_loss" in text and "1.234" in text
    name = re.search(r'src="/versions/(v\d{4}-\d{8}-\d{6})/loss\.png"', text)[1]
    status, headers, _ = served.request("GET", f"/versions/{name}/loss.png", cookie=True)
    assert status == 200 and headers["content-type"] == "image/png"
    assert served.request("GET", "/versions/v9999-20260101-000000/loss.png", cookie=True)[0] == 404
    assert served.request("GET", f"/versions/{name}/..%2f..%2fACTIVE", cookie=True)[0] == 404


def test_a_loss_curve_is_served_only_from_inside_its_folders(tmp_path):
    from lmm_mcp.ui.models import loss_plot
    from trainer.versions import list_versions, publish

    cfg = Config.load(home=tmp_path / "home", claude_dir=tmp_path / "none")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    outside = cfg.home / "runs" / ".." / ".." / "x" / "eval"
    outside.mkdir(parents=True)
    (outside / "loss.png").write_bytes(PNG)
    publish(cfg.models_dir, adapter, config={"run": "../../x"}, metrics={})
    [version] = list_versions(cfg.models_dir)
    assert loss_plot(cfg, version.name) is None  # a run named as a path is not followed
    (version.path / "loss.png").symlink_to(secret)
    assert loss_plot(cfg, version.name) is None  # a link out of the version folder is not followed
    (version.path / "loss.png").unlink()
    (version.path / "loss.png").write_bytes(PNG)
    assert loss_plot(cfg, version.name) == (version.path / "loss.png").resolve()


def test_the_job_page_follows_a_running_job_and_stops_refreshing_when_none_runs(served):
    from lmm_mcp.jobs import write_progress

    assert "no retrain job has run yet" in served.page("/job")
    with App.open(served.cfg) as app, app.jobs().hold("sft") as job_dir:
        write_progress(job_dir, {"stage": "sft", "step": 12, "total_steps": 40, "loss": 1.5, "eta_s": 300})
        text = served.page("/job")
        assert 'http-equiv="refresh"' in text and "running" in text
        assert '<progress max="40" value="12"' in text and "1.5000" in text and "5 min" in text
    text = served.page("/job")
    assert 'http-equiv="refresh"' not in text and "failed" in text  # it ended without a result


def test_an_edit_over_http_is_stored_and_what_it_says_is_escaped(served):
    body = f"key={quote(POSTGRES)}&action=correct&csrf={served.token}&text={quote('<script>x()</script> Postgres 16')}"
    status, headers, _ = served.request("POST", "/memory", cookie=True, body=body)
    assert status == 303 and headers["location"].endswith("&done=correct")
    with sqlite3.connect(served.cfg.db_path) as conn:
        assert conn.execute("SELECT text FROM memories WHERE key = ?", (POSTGRES,)).fetchone()[0] == (
            "<script>x()</script> Postgres 16"
        )
    text = served.page(f"/memory?key={quote(POSTGRES, safe='')}")
    assert "&lt;script&gt;x()&lt;/script&gt; Postgres 16" in text and "<script>" not in text
    body = f"key={quote(POSTGRES)}&action=undo&csrf={served.token}"
    assert served.request("POST", "/memory", cookie=True, body=body)[0] == 303
    status, _headers, text = served.request(
        "POST",
        "/memory",
        cookie=True,
        body=f"key={quote(POSTGRES)}&action=correct&csrf={served.token}&text=+",
    )
    assert status == 400 and "empty" in text


# A core install (no [train] extra) serves the browser too: a child whose imports of these modules fail.
HEAVY = ("torch", "transformers", "peft", "accelerate", "matplotlib", "gguf", "scipy", "sklearn")
BLOCKER = """
import sys
class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {heavy!r}:
            with open({log!r}, "a") as f:
                f.write(name + "\\n")
            raise ModuleNotFoundError(name, name=name)
sys.meta_path.insert(0, _Refuse())
"""


def test_the_browser_runs_without_the_training_extra(served, tmp_path):
    site, log = tmp_path / "site", tmp_path / "imports.log"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(heavy=set(HEAVY), log=str(log)))
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), root, os.environ.get("PYTHONPATH", "")])}
    light = Served(served.cfg.home, served.cfg.claude_dir, env)
    try:
        for path in (*ROUTES, "/session/" + served.page("/").split('href="/session/')[1].split('"')[0]):
            assert light.page(path)
        name = re.search(r'src="/versions/([\w-]+)/loss\.png"', light.page("/versions"))[1]
        assert light.request("GET", f"/versions/{name}/loss.png", cookie=True)[0] == 200
    finally:
        light.stop()
    assert not log.exists() or log.read_text() == ""


# ----------------------------------------------------------------------------------------- a real browser


def _browser():
    """Headless Chromium through selenium with the system's driver (nothing downloaded), or skip / fail."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    missing = [
        name
        for name, found in (("selenium", webdriver), ("chromium", chromium), ("chromedriver", driver))
        if not found
    ]
    if missing:
        why = f"no {', '.join(missing)} here (pip install -e '.[dev]'; apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI must run the browser test")
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def test_in_a_browser_search_open_a_session_and_correct_a_memory(tmp_path_factory):
    browser = _browser()  # first: where there is none, skip (or fail in CI) before building anything
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    root = tmp_path_factory.mktemp("browser")
    shots = Path(os.environ.get("LMM_UI_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        served = Served(*_home(root, embed=True))
    except BaseException:
        browser.quit()
        raise
    try:
        browser.set_page_load_timeout(60)
        browser.get(served.url)  # the token becomes a cookie and leaves the address bar
        assert browser.current_url == served.base + "/"
        assert "tasklane-api" in browser.find_element(By.TAG_NAME, "main").text
        browser.save_screenshot(str(shots / "projects.png"))

        box = browser.find_element(By.ID, "search-box")
        box.send_keys("which database did we choose for tasklane")
        box.submit()
        wait = WebDriverWait(browser, 60)
        wait.until(shown.presence_of_element_located((By.ID, "hits")))
        rows = browser.find_elements(By.CSS_SELECTOR, "#hits tr.hit")
        assert rows, browser.page_source[:2000]
        vector = [r.find_element(By.CSS_SELECTOR, "td.vector").text for r in rows]
        bm25 = [r.find_element(By.CSS_SELECTOR, "td.bm25").text for r in rows]
        assert any(v.isdigit() for v in vector) and any(b.isdigit() for b in bm25)  # hybrid: both rankers
        browser.save_screenshot(str(shots / "search.png"))

        browser.get(served.base + "/")
        link = browser.find_element(By.CSS_SELECTOR, "a.session-link")
        link.click()
        wait.until(shown.url_contains("/session/"))
        assert browser.find_elements(By.CSS_SELECTOR, "article.turn")
        browser.save_screenshot(str(shots / "session.png"))

        browser.get(
            f"{served.base}/memories?project={quote('/home/dev/code/tasklane-api')}&category=decision"
        )
        browser.find_element(By.LINK_TEXT, POSTGRES).click()
        area = browser.find_element(By.ID, "text")
        area.clear()
        area.send_keys("tasklane-api stays on SQLite; the PostgreSQL move was never made.")
        browser.find_element(By.ID, "correct").click()
        assert "Corrected" in wait.until(shown.presence_of_element_located((By.ID, "done"))).text
        assert browser.find_element(By.ID, "memory-text").text == (
            "tasklane-api stays on SQLite; the PostgreSQL move was never made."
        )
        browser.save_screenshot(str(shots / "memory.png"))
        browser.get(served.base + "/versions")
        curve = browser.find_element(By.CSS_SELECTOR, "section.version img")
        assert browser.execute_script("return arguments[0].naturalWidth", curve) >= 400  # the plot loaded
        browser.save_screenshot(str(shots / "versions.png"))
    finally:
        browser.quit()
        served.stop()

    with sqlite3.connect(served.cfg.db_path) as conn:  # the file itself, after the server has gone
        assert conn.execute(
            "SELECT action, text FROM memory_edits WHERE key = ?", (POSTGRES,)
        ).fetchone() == (
            "correct",
            "tasklane-api stays on SQLite; the PostgreSQL move was never made.",
        )
        stored = conn.execute("SELECT text FROM memories WHERE key = ?", (POSTGRES,)).fetchone()[0]
        assert stored.startswith("tasklane-api stays on SQLite")
        vectors = "SELECT count(*) FROM memories m JOIN vectors v ON v.chunk_id = m.chunk_id WHERE m.key = ?"
        assert conn.execute(vectors, (POSTGRES,)).fetchone()[0] == 1  # the new text was embedded at once
    assert all((shots / f"{name}.png").stat().st_size > 5_000 for name in ("projects", "search", "memory"))
