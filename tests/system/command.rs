//! Running the host's tools (apt, dpkg, gcc, virsh, the libvirt daemons)
//! from the system tests: with a time limit, their output captured, and an
//! error that says what was run and what it printed.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A counter of /proc/vmstat now (0 when this kernel has none by `key`).
pub fn vmstat(key: &str) -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Start `cmd` (a touch child) with its output piped, and wait until it
/// says it filled its memory (`ready`); panics, naming `what`, if it ends
/// first.
pub fn spawn_ready(cmd: &mut Command, what: &str) -> Child {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = child.stdout.take().expect("piped");
    let ready = std::io::BufReader::new(out).lines().map_while(Result::ok).any(|l| l.contains("ready"));
    assert!(ready, "{what} filled its memory");
    child
}

/// What a command printed when it succeeded: its standard output.
/// An error names the command, its exit status and its standard error.
pub fn run(cmd: &mut Command, limit: Duration) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{shown}: cannot start: {e}"))?;
    // Read both pipes on their own threads so a chatty command never blocks
    // on a full pipe while this one waits for it.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown}: still running after {limit:?}, killed"));
            }
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    if status.success() { Ok(out) } else { Err(format!("{shown}: {status}: {}", err.trim())) }
}

/// Where `name` is installed: on PATH, or in the sbin directories a root
/// shell has on its PATH but a test process may not.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The live processes whose command name (`/proc/PID/comm`, cut at 15
/// bytes as the kernel keeps it) is `comm`. Zombies do not count: an
/// exited daemon stays one until its parent reaps it, which an init that
/// is no real init may take its time to do.
pub fn pids_named(comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let live = |pid: &u32| {
        // The state follows the parenthesised name: "PID (comm) S ...".
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])))
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == comm))
        .filter(live)
        .collect();
    pids.sort_unstable();
    pids
}

/// The last `n` lines of a text file, for failure messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An exclusive lock on a file in the temporary directory, held while it
/// lives: it keeps two test processes on this machine (other checkouts,
/// other cargo runs) from using one shared thing (a libvirtd and its
/// guests, a Slurm cluster) at once.
pub struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    /// Take `name`'s lock, waiting (and saying so) while another process
    /// holds it for `what`.
    pub fn acquire(name: &str, what: &str) -> FileLock {
        use rustix::fs::{FlockOperation, flock};
        let path = std::env::temp_dir().join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            eprintln!("waiting for another test process's {what} to finish ({})", path.display());
            flock(&file, FlockOperation::LockExclusive).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        FileLock(file)
    }
}

/// A swap file of the test's own, on while it lives: written, made and
/// turned on by [`SwapFile::on`], turned off and removed when dropped
/// (also when the test fails).
pub struct SwapFile {
    path: PathBuf,
    on: bool,
}

impl SwapFile {
    /// `mib` MiB at `path`.
    pub fn on(path: PathBuf, mib: u64) -> Result<SwapFile, String> {
        let mut swap = SwapFile { path, on: false };
        let dd = Command::new("dd")
            .args(["if=/dev/zero", &format!("of={}", swap.path.display()), "bs=1M", &format!("count={mib}")])
            .stderr(Stdio::null())
            .status();
        if !dd.is_ok_and(|s| s.success()) {
            return Err("writing the swap file failed".into());
        }
        let _ = Command::new("chmod").arg("600").arg(&swap.path).status();
        for cmd in ["mkswap", "swapon"] {
            if !Command::new(cmd).arg(&swap.path).output().is_ok_and(|o| o.status.success()) {
                return Err(format!("{cmd} {} failed", swap.path.display()));
            }
        }
        swap.on = true;
        Ok(swap)
    }
}

impl Drop for SwapFile {
    fn drop(&mut self) {
        if self.on {
            let _ = Command::new("swapoff").arg(&self.path).status();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
