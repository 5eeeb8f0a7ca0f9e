//! Open an HTML file in headless Chromium and check what a reader would see:
//! no console errors, every plot (`<svg class="plot">`) laid out with a
//! non-zero size, and a screenshot that is not blank.
//!
//! Chromium is driven through its DevTools protocol over
//! `--remote-debugging-pipe`: the browser reads NUL-terminated JSON commands
//! on fd 3 and writes NUL-terminated JSON replies and events on fd 4. No
//! WebSocket client or browser-automation crate is needed, only `serde_json`,
//! `rustix` (to place the pipes on fds 3 and 4 in the child) and `png` (to
//! count the screenshot's colours).
//!
//! When Chromium is not installed the tests print [`SKIP_MESSAGE`] to stderr
//! and pass: the browser is an optional tool of the machine, not of the crate.
#![cfg(target_os = "linux")]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What a test prints (to stderr) when it skips for want of a browser.
pub const SKIP_MESSAGE: &str = "skipping: chromium not found (install Debian's chromium package)";

/// The whole Chromium session, from spawn to screenshot, must fit in this.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// After `Browser.close`, how long Chromium gets to exit by itself before it
/// is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The viewport; the screenshot covers the whole page, beyond it.
const WINDOW: (u32, u32) = (1280, 900);

/// Screenshots taller than this (CSS pixels) are cut, to bound the PNG.
const MAX_SCREENSHOT_HEIGHT: f64 = 16_384.0;

/// A pixel is "white" when every channel is at least this bright.
const WHITE_THRESHOLD: u8 = 245;

/// What Chromium showed for one page.
#[derive(Debug, Clone)]
pub struct PageCheck {
    /// Uncaught exceptions, `console.error`/`console.assert` failures and
    /// error-level browser log entries (failed loads, CSP, ...), in order.
    pub console_errors: Vec<String>,
    /// Every `svg.plot` in document order: its id (else `aria-label`, else
    /// `<title>`, else empty), and its laid-out width and height in CSS px.
    pub plots: Vec<(String, f64, f64)>,
    /// A full-page PNG screenshot.
    pub screenshot_png: Vec<u8>,
    /// How many distinct RGBA values the screenshot has.
    pub distinct_colours: usize,
    /// The fraction (0..=1) of the screenshot's pixels that are not white.
    pub non_white_share: f64,
}

/// The Chromium executable: `chromium` or `chromium-browser` on `PATH`, else
/// `/usr/bin/chromium`.
pub fn chromium() -> Option<PathBuf> {
    fn executable(p: &Path) -> bool {
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .chain([PathBuf::from("/usr/bin/chromium")])
        .find(|p| executable(p))
}

/// Open `html` in headless Chromium, wait for its load event, and report
/// console errors, plot sizes and a full-page screenshot with its colour
/// statistics. The session is bounded by a 60 s timeout; Chromium is always
/// killed and its temporary profile removed, also on error.
pub fn open_in_chromium(html: &Path) -> Result<PageCheck, String> {
    let exe = chromium().ok_or_else(|| SKIP_MESSAGE.trim_start_matches("skipping: ").to_string())?;
    let html = html.canonicalize().map_err(|e| format!("{}: {e}", html.display()))?;
    let mut browser = Browser::launch(&exe)?;
    let result = browser.check_page(&file_url(&html));
    if result.is_ok() {
        browser.close_gracefully();
    }
    result.map_err(|e| browser.with_log_tail(e))
}

/// A running Chromium. Dropping it kills the browser's whole process group,
/// reaps it, and then (field order) removes the temporary profile.
struct Browser {
    child: Child,
    to_browser: std::io::PipeWriter,
    from_browser: mpsc::Receiver<Result<Value, String>>,
    deadline: Instant,
    next_id: u64,
    /// Every event received so far, in order (replies are not kept).
    events: Vec<Value>,
    /// Holds the profile and Chromium's stderr; removed last.
    scratch: tempfile::TempDir,
}

impl Browser {
    fn launch(exe: &Path) -> Result<Browser, String> {
        let scratch = tempfile::Builder::new()
            .prefix("overcommit-chromium-")
            .tempdir()
            .map_err(|e| format!("temporary profile: {e}"))?;
        let profile = scratch.path().join("profile");
        let log = std::fs::File::create(scratch.path().join("chromium.log"))
            .map_err(|e| format!("chromium log file: {e}"))?;

        // Chromium reads commands on fd 3 and writes replies on fd 4.
        let (browser_reads, to_browser) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (from_browser, browser_writes) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (r, w) = (browser_reads.as_raw_fd(), browser_writes.as_raw_fd());

        let mut cmd = Command::new(exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--mute-audio",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        // Chromium's crash handler keeps its database under the config
        // directory, not the profile: keep that in the scratch directory too.
        .env("XDG_CONFIG_HOME", scratch.path().join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group, so that its helpers can be killed with it.
        .process_group(0);
        // SAFETY: between fork and exec only async-signal-safe system calls
        // (fcntl, dup2, close) run; nothing allocates or takes a lock.
        unsafe {
            cmd.pre_exec(move || {
                // First lift both ends above fd 10 so that placing one on 3
                // or 4 cannot clobber the other.
                let high_r = rustix::io::fcntl_dupfd_cloexec(BorrowedFd::borrow_raw(r), 10)?;
                let high_w = rustix::io::fcntl_dupfd_cloexec(BorrowedFd::borrow_raw(w), 10)?;
                let mut fd3 = OwnedFd::from_raw_fd(3);
                let mut fd4 = OwnedFd::from_raw_fd(4);
                let placed = rustix::io::dup2(&high_r, &mut fd3).and_then(|()| rustix::io::dup2(&high_w, &mut fd4));
                // fds 3 and 4 must survive into exec: do not close them here.
                std::mem::forget(fd3);
                std::mem::forget(fd4);
                placed?;
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("{}: {e}", exe.display()))?;
        // Our copies of the browser's ends must close, or EOF never comes.
        drop(browser_reads);
        drop(browser_writes);

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser);
            loop {
                let mut buf = Vec::new();
                let msg = match reader.read_until(0, &mut buf) {
                    Ok(0) => Err("chromium closed the DevTools pipe".to_string()),
                    Ok(_) if buf.last() == Some(&0) => {
                        buf.pop();
                        serde_json::from_slice(&buf).map_err(|e| format!("DevTools message: {e}"))
                    }
                    Ok(_) => Err("chromium closed the DevTools pipe mid-message".to_string()),
                    Err(e) => Err(format!("reading the DevTools pipe: {e}")),
                };
                let last = msg.is_err();
                if tx.send(msg).is_err() || last {
                    return;
                }
            }
        });

        Ok(Browser {
            child,
            to_browser,
            from_browser: rx,
            deadline: Instant::now() + SESSION_TIMEOUT,
            next_id: 1,
            events: Vec::new(),
            scratch,
        })
    }

    fn check_page(&mut self, url: &str) -> Result<PageCheck, String> {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = str_field(&target, "targetId")?;
        let attached = self.call(None, "Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }))?;
        let session = str_field(&attached, "sessionId")?;
        let s = Some(session.as_str());
        for domain in ["Page", "Runtime", "Log"] {
            self.call(s, &format!("{domain}.enable"), json!({}))?;
        }

        let nav = self.call(s, "Page.navigate", json!({ "url": url }))?;
        if let Some(err) = nav.get("errorText").and_then(Value::as_str) {
            return Err(format!("navigating to {url}: {err}"));
        }
        self.wait_event(&session, "Page.loadEventFired")?;

        // Let web fonts settle and one frame render before measuring.
        let measure = r#"(async () => {
            await document.fonts.ready;
            await new Promise(r => { requestAnimationFrame(() => r()); setTimeout(r, 500); });
            return Array.from(document.querySelectorAll('svg.plot')).map(e => {
                const r = e.getBoundingClientRect();
                const t = e.querySelector('title');
                return [e.id || e.getAttribute('aria-label') || (t ? t.textContent.trim() : ''), r.width, r.height];
            });
        })()"#;
        let eval = self.call(
            s,
            "Runtime.evaluate",
            json!({ "expression": measure, "awaitPromise": true, "returnByValue": true }),
        )?;
        if let Some(ex) = eval.get("exceptionDetails") {
            return Err(format!("measuring the plots: {}", exception_text(ex)));
        }
        let plots = eval
            .pointer("/result/value")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("measuring the plots: unexpected result {eval}"))?
            .iter()
            .map(|p| {
                let name = p.get(0).and_then(Value::as_str).unwrap_or_default().to_string();
                let w = p.get(1).and_then(Value::as_f64).unwrap_or(0.0);
                let h = p.get(2).and_then(Value::as_f64).unwrap_or(0.0);
                (name, w, h)
            })
            .collect();

        let metrics = self.call(s, "Page.getLayoutMetrics", json!({}))?;
        let size = |k: &str| metrics.pointer(&format!("/cssContentSize/{k}")).and_then(Value::as_f64);
        let width = size("width").unwrap_or(f64::from(WINDOW.0)).max(1.0).ceil();
        let height = size("height").unwrap_or(f64::from(WINDOW.1)).clamp(1.0, MAX_SCREENSHOT_HEIGHT).ceil();
        let shot = self.call(
            s,
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
            }),
        )?;
        let screenshot_png = base64_decode(str_field(&shot, "data")?.as_bytes())?;
        let (distinct_colours, non_white_share) = colour_stats(&screenshot_png)?;

        Ok(PageCheck {
            console_errors: self.console_errors(&session),
            plots,
            screenshot_png,
            distinct_colours,
            non_white_share,
        })
    }

    /// Send one command and wait for its reply's `result`.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.to_browser.write_all(&bytes).map_err(|e| format!("{method}: writing the DevTools pipe: {e}"))?;
        loop {
            let reply = self.next_message().map_err(|e| format!("{method}: {e}"))?;
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(err) = reply.get("error") {
                return Err(format!("{method}: {err}"));
            }
            return Ok(reply.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// Wait until `method` has been seen for `session` (also if it came while
    /// a reply was awaited).
    fn wait_event(&mut self, session: &str, method: &str) -> Result<(), String> {
        let seen = |e: &Value| {
            e.get("method").and_then(Value::as_str) == Some(method)
                && e.get("sessionId").and_then(Value::as_str) == Some(session)
        };
        if self.events.iter().any(seen) {
            return Ok(());
        }
        loop {
            self.next_message().map_err(|e| format!("waiting for {method}: {e}"))?;
            if self.events.last().is_some_and(seen) {
                return Ok(());
            }
        }
    }

    /// The next message from the browser, within the session deadline.
    /// Events are also appended to `self.events`.
    fn next_message(&mut self) -> Result<Value, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let msg = match self.from_browser.recv_timeout(left) {
            Ok(msg) => msg?,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("chromium did not answer within {} s", SESSION_TIMEOUT.as_secs()));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err("chromium closed the DevTools pipe".into()),
        };
        if msg.get("method").is_some() {
            self.events.push(msg.clone());
        }
        Ok(msg)
    }

    /// Errors among the events received for `session`.
    fn console_errors(&self, session: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.get("sessionId").and_then(Value::as_str) == Some(session))
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => Some(format!("exception: {}", exception_text(&p["exceptionDetails"]))),
                    "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                        let args: Vec<String> = p["args"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| match &a["value"] {
                                Value::String(s) => s.clone(),
                                Value::Null => a["description"].as_str().unwrap_or("").to_string(),
                                v => v.to_string(),
                            })
                            .collect();
                        Some(format!("console.{}: {}", p["type"].as_str().unwrap_or(""), args.join(" ")))
                    }
                    "Log.entryAdded" if p["entry"]["level"] == "error" => {
                        let entry = &p["entry"];
                        let mut text = format!(
                            "log ({}): {}",
                            entry["source"].as_str().unwrap_or("?"),
                            entry["text"].as_str().unwrap_or("")
                        );
                        if let Some(url) = entry["url"].as_str() {
                            text.push_str(&format!(" [{url}]"));
                        }
                        Some(text)
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// Ask Chromium to close and wait (briefly) until it closes the pipe.
    fn close_gracefully(&mut self) {
        let mut bytes =
            serde_json::to_vec(&json!({ "id": self.next_id, "method": "Browser.close" })).unwrap_or_default();
        bytes.push(0);
        if self.to_browser.write_all(&bytes).is_err() {
            return;
        }
        self.deadline = self.deadline.min(Instant::now() + CLOSE_GRACE);
        while self.next_message().is_ok() {}
    }

    /// Add the end of Chromium's stderr to an error, to show why it failed.
    fn with_log_tail(&self, err: String) -> String {
        let log = std::fs::read_to_string(self.scratch.path().join("chromium.log")).unwrap_or_default();
        // D-Bus is absent on headless machines and Chromium says so often.
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains(":ERROR:dbus/")).collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        if tail.trim().is_empty() { err } else { format!("{err}\nchromium's stderr ends with:\n{tail}") }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The browser is not reaped yet, so its pid still names its process
        // group: this reaches Chromium's helpers and nothing else.
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `scratch` (the profile) is removed after this, as fields drop.
    }
}

fn str_field(v: &Value, key: &str) -> Result<String, String> {
    v.get(key).and_then(Value::as_str).map(str::to_string).ok_or_else(|| format!("no {key} in {v}"))
}

fn exception_text(details: &Value) -> String {
    let what = details
        .pointer("/exception/description")
        .and_then(Value::as_str)
        .or_else(|| details["text"].as_str())
        .unwrap_or("unknown exception");
    match (details["url"].as_str(), details["lineNumber"].as_u64()) {
        (Some(url), Some(line)) => format!("{what} [{url}:{}]", line + 1),
        _ => what.to_string(),
    }
}

/// `file://` URL of an absolute path, percent-encoding all but the safe bytes.
fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

fn base64_decode(text: &[u8]) -> Result<Vec<u8>, String> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text.iter().filter(|c| !c.is_ascii_whitespace() && **c != b'=') {
        acc = (acc << 6) | value(c).ok_or_else(|| format!("bad base64 byte {c:#04x}"))?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Distinct RGBA values and the share of non-white pixels in a PNG.
fn colour_stats(png_bytes: &[u8]) -> Result<(usize, f64), String> {
    let mut decoder = png::Decoder::new(png_bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| format!("screenshot PNG: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(|e| format!("screenshot PNG: {e}"))?;
    let pixels = &buf[..frame.buffer_size()];
    let to_rgba: fn(&[u8]) -> [u8; 4] = match frame.color_type {
        png::ColorType::Grayscale => |p| [p[0], p[0], p[0], 255],
        png::ColorType::GrayscaleAlpha => |p| [p[0], p[0], p[0], p[1]],
        png::ColorType::Rgb => |p| [p[0], p[1], p[2], 255],
        png::ColorType::Rgba => |p| [p[0], p[1], p[2], p[3]],
        png::ColorType::Indexed => return Err("screenshot PNG: palette not expanded".into()),
    };
    let mut distinct = HashSet::new();
    let (mut total, mut non_white) = (0usize, 0usize);
    for p in pixels.chunks_exact(frame.color_type.samples()).map(to_rgba) {
        distinct.insert(p);
        total += 1;
        // Transparent counts as white: that is what a reader sees.
        if p[3] > 0 && p[..3].iter().any(|&c| c < WHITE_THRESHOLD) {
            non_white += 1;
        }
    }
    if total == 0 {
        return Err("screenshot PNG has no pixels".into());
    }
    Ok((distinct.len(), non_white as f64 / total as f64))
}

// ---------------------------------------------------------------------------
// Self-tests: the harness must pass a good page and catch bad ones.

/// Write `body` as `page.html` in a fresh directory and check it, or return
/// `None` (after saying so) when there is no browser.
fn check_fixture(body: &str) -> Option<(tempfile::TempDir, PageCheck)> {
    if chromium().is_none() {
        eprintln!("{SKIP_MESSAGE}");
        return None;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let page = dir.path().join("page.html");
    std::fs::write(&page, body).expect("write the fixture");
    let started = Instant::now();
    let check = open_in_chromium(&page).unwrap_or_else(|e| panic!("chromium check failed: {e}"));
    eprintln!(
        "page check took {:.2} s: plots {:?}, {} distinct colours, {:.1}% non-white, console errors {:?}",
        started.elapsed().as_secs_f64(),
        check.plots,
        check.distinct_colours,
        100.0 * check.non_white_share,
        check.console_errors
    );
    Some((dir, check))
}

fn fixture(extra_head: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fixture</title>
<style>
  body {{ font-family: sans-serif; margin: 16px; background: #fff; color: #222; }}
  svg.plot {{ display: block; margin: 8px 0; border: 1px solid #ccc; }}
  svg.plot text {{ font-size: 14px; fill: #333; }}
</style>
{extra_head}</head>
<body>
<h1>Fixture report</h1>
{body}
</body></html>
"#
    )
}

fn plot(id: &str, style: &str, fill: &str) -> String {
    format!(
        r##"<svg class="plot" id="{id}" {style} width="400" height="200" viewBox="0 0 400 200" xmlns="http://www.w3.org/2000/svg">
  <rect x="20" y="40" width="300" height="120" fill="{fill}"/>
  <polyline points="20,160 120,90 220,120 320,50" fill="none" stroke="#d62728" stroke-width="3"/>
  <text x="20" y="25">plot {id}</text>
</svg>"##
    )
}

#[test]
fn a_good_page_loads_cleanly_with_visible_plots() {
    let body = format!("{}\n{}", plot("p1", "", "#1f77b4"), plot("p2", "", "#2ca02c"));
    let Some((_dir, check)) = check_fixture(&fixture("", &body)) else { return };
    assert!(check.console_errors.is_empty(), "console errors: {:?}", check.console_errors);
    let names: Vec<&str> = check.plots.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["p1", "p2"], "plots: {:?}", check.plots);
    for (name, w, h) in &check.plots {
        assert!(*w > 0.0 && *h > 0.0, "plot {name} is {w}x{h}");
    }
    assert!(check.screenshot_png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    assert!(check.distinct_colours >= 3, "only {} distinct colours", check.distinct_colours);
    assert!(check.non_white_share > 0.01, "non-white share {}", check.non_white_share);
}

#[test]
fn a_console_error_is_reported() {
    let page = fixture(r#"<script>console.error("boom")</script>"#, &plot("p1", "", "#1f77b4"));
    let Some((_dir, check)) = check_fixture(&page) else { return };
    assert!(
        check.console_errors.iter().any(|e| e.contains("boom")),
        "console.error(\"boom\") not reported: {:?}",
        check.console_errors
    );
}

#[test]
fn a_hidden_plot_has_zero_size() {
    let body = format!("{}\n{}", plot("shown", "", "#1f77b4"), plot("hidden", r#"style="display:none""#, "#ff7f0e"));
    let Some((_dir, check)) = check_fixture(&fixture("", &body)) else { return };
    assert!(check.console_errors.is_empty(), "console errors: {:?}", check.console_errors);
    let size = |id: &str| {
        let (_, w, h) =
            check.plots.iter().find(|(n, _, _)| n == id).unwrap_or_else(|| panic!("no plot {id}: {:?}", check.plots));
        (*w, *h)
    };
    let (w, h) = size("shown");
    assert!(w > 0.0 && h > 0.0, "shown plot is {w}x{h}");
    assert_eq!(size("hidden").0, 0.0, "a display:none plot must measure 0 wide");
}
