//! System settings changed for a measurement, and put back.
//!
//! [`Settings::set`] writes a sysfs or procfs file after noting what it
//! held; the old values go back when the `Settings` is dropped (success,
//! error or panic, last change first), and on SIGINT or SIGTERM once
//! [`restore_on_signals`] has been called (the process then exits with
//! 128 + the signal, as a shell reports it).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Every value still to put back, across all live `Settings`, for the
/// signal handler.
static PENDING: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// Settings changed by this process, put back on drop.
#[derive(Debug, Default)]
pub struct Settings {
    saved: Vec<(PathBuf, String)>,
}

impl Settings {
    pub fn new() -> Settings {
        Settings::default()
    }

    /// Write `value` to `path`, keeping its first value to put back.
    pub fn set(&mut self, path: &Path, value: &str) -> Result<(), String> {
        if !self.saved.iter().any(|(p, _)| p == path) {
            let old = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let old = selected(&old);
            self.saved.push((path.to_path_buf(), old.clone()));
            PENDING.lock().unwrap_or_else(|e| e.into_inner()).push((path.to_path_buf(), old));
        }
        std::fs::write(path, value).map_err(|e| format!("cannot set {} to {value}: {e}", path.display()))
    }

    /// Note `path`'s value to put back without changing it now.
    pub fn keep(&mut self, path: &Path) -> Result<(), String> {
        let now = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.set(path, &selected(&now))
    }
}

impl Drop for Settings {
    fn drop(&mut self) {
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        for (p, v) in self.saved.iter().rev() {
            let _ = std::fs::write(p, v);
            if let Some(i) = pending.iter().rposition(|(q, w)| q == p && w == v) {
                pending.remove(i);
            }
        }
    }
}

/// `[none] scan-time` → `none`; `100\n` → `100`.
pub fn selected(v: &str) -> String {
    let v = v.trim();
    match (v.find('['), v.find(']')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.to_string(),
    }
}

/// On SIGINT or SIGTERM, put back every pending setting and exit.
pub fn restore_on_signals() -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
            for (p, v) in pending.iter().rev() {
                let _ = std::fs::write(p, v);
            }
            eprintln!("interrupted: system settings put back");
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_back_on_drop_even_after_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("nr_hugepages");
        std::fs::write(&a, "3\n").unwrap();
        let b = dir.path().join("mode");
        std::fs::write(&b, "always [madvise] never\n").unwrap();
        let run = || -> Result<(), String> {
            let mut s = Settings::new();
            s.set(&a, "64")?;
            s.set(&a, "128")?;
            s.set(&b, "never")?;
            assert_eq!(std::fs::read_to_string(&a).unwrap(), "128");
            // The injected failure: the measurement errs after the changes.
            Err("injected".into())
        };
        assert!(run().is_err());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "3", "the first value, not an intermediate one");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "madvise");
        assert!(PENDING.lock().unwrap().iter().all(|(p, _)| p != &a && p != &b));
    }
}
