//! A real libvirtd with real TCG guests, for the system tests.
//!
//! [`Libvirt`] connects to the system libvirtd (`qemu:///system`) if one
//! answers, or starts one by hand (no init system is assumed): a child of
//! the test with its own configuration, pid file and log in a temporary
//! directory, on the standard sockets under `/run/libvirt` so any
//! `virsh -c qemu:///system` reaches it. A privileged libvirtd reads its
//! QEMU settings only from `/etc/libvirt/qemu.conf`, so ours runs in a
//! mount namespace of its own where a qemu.conf of ours is bind-mounted
//! there (the host's file is untouched): QEMU as root, its output straight
//! to its log file (no virtlogd to start). Where that is impossible (no
//! `unshare`), it runs with the host's qemu.conf, and with a virtlogd of
//! ours if none runs. Before a libvirtd of ours starts, each driver's
//! `autostarted` marker is put in place (libvirt's own "already
//! autostarted this boot" file), so starting it for a test does not also
//! bring up autostart networks, pools or domains; markers it created are
//! removed when it stops.
//!
//! [`LibvirtEnv`] defines and starts TCG domains (`<domain type='qemu'>`,
//! direct kernel boot of the [guest kit](crate::guest_kit), no disk, no
//! network, a virtio balloon with statistics every second, the serial
//! console logged to a file), waits for each guest's workload to print its
//! ready line (`memtouch: ready ...` or `memwork: ready ...`), and offers
//! virsh and `/proc` readings of the running guests.
//!
//! Everything is undone in `Drop`, also when a test panics: domains
//! destroyed and undefined (and their libvirt logs removed), then the
//! daemons this process started stopped (SIGTERM, SIGKILL after a grace
//! period), then the temporary files removed. A test process killed
//! before that leaves a list of what to undo, which the next run takes
//! over. A [`HostLock`] keeps two test processes on this machine (other
//! checkouts, other cargo runs) from running guests at the same time.

use crate::command::{pids_named, run, tail, which};
use crate::guest_kit::{GuestKit, Unavailable};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The connection every virsh call uses.
pub const URI: &str = "qemu:///system";

/// How long one virsh call may take (a first connection to a fresh
/// libvirtd waits for it to probe QEMU's capabilities, about 12 s here).
const VIRSH_LIMIT: Duration = Duration::from_secs(120);

/// How long a TCG guest may take from `virsh start` to its ready line
/// (10–20 s on the development machine, one vCPU each, two at a time).
const BOOT_LIMIT: Duration = Duration::from_secs(300);

/// An exclusive lock on a file in the temporary directory, held while
/// guests run: real guests take the machine's memory and CPUs, and share
/// one libvirtd and its domain names.
pub struct HostLock(#[allow(dead_code)] crate::command::FileLock);

impl HostLock {
    pub fn acquire() -> HostLock {
        HostLock(crate::command::FileLock::acquire("overcommit-real-guests.lock", "real guests"))
    }
}

/// Run by `sh -c` inside `unshare --mount`: `$0` is our qemu.conf, the
/// rest the daemon's command line, which replaces the shell (same pid).
const OWN_QEMU_CONF: &str = r#"mount --bind "$0" /etc/libvirt/qemu.conf && exec "$@""#;

/// The qemu.conf of a libvirtd of ours. QEMU runs as root because libvirt
/// re-validates its cache of QEMU's capabilities at every lookup by
/// checking /dev/kvm as QEMU's user: on this project's machines /dev/kvm
/// is root-only (a paravirtual KVM no real guest boots on) while the probe
/// finds KVM, so as Debian's `libvirt-qemu` the cache never stays valid
/// and every domain definition probes QEMU again (30 s or more each); as
/// root the two agree and one probe is kept. QEMU's own output goes
/// straight to /var/log/libvirt/qemu/NAME.log, so no virtlogd is needed.
const QEMU_CONF: &str = "user = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\n";

/// A daemon this process started, stopped when dropped.
struct Daemon {
    name: &'static str,
    pid: u32,
    /// None for a daemon adopted from a test process that was killed.
    child: Option<Child>,
    /// Its standard output and error, and its log file.
    logs: [PathBuf; 2],
}

impl Daemon {
    /// Starts `exe --config DIR/NAME.conf --pid-file DIR/NAME.pid`; with
    /// `unshare`, in a mount namespace of its own that has [`QEMU_CONF`]
    /// as /etc/libvirt/qemu.conf.
    fn start(name: &'static str, exe: &Path, dir: &Path, config: &str, unshare: Option<&Path>) -> Daemon {
        let conf = dir.join(format!("{name}.conf"));
        let log = dir.join(format!("{name}.log"));
        let out = dir.join(format!("{name}.out"));
        std::fs::write(&conf, format!("{config}log_outputs = \"3:file:{}\"\n", log.display())).expect("config written");
        let stdout = std::fs::File::create(&out).expect("daemon output file");
        let stderr = stdout.try_clone().expect("daemon output file");
        let mut cmd = match unshare {
            Some(unshare) => {
                let qemu_conf = dir.join("qemu.conf");
                std::fs::write(&qemu_conf, QEMU_CONF).expect("qemu.conf written");
                let mut c = Command::new(unshare);
                c.args(["--mount", "--propagation", "private", "--", "sh", "-c", OWN_QEMU_CONF])
                    .arg(&qemu_conf)
                    .arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let child = cmd
            .arg("--config")
            .arg(&conf)
            .arg("--pid-file")
            .arg(dir.join(format!("{name}.pid")))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let how = if unshare.is_some() { " with its own qemu.conf" } else { "" };
        eprintln!("started {name} (pid {}){how}", child.id());
        Daemon { name, pid: child.id(), child: Some(child), logs: [out, log] }
    }

    /// Whether it still runs (an exited child is reaped here; an adopted
    /// daemon that exited may linger as a zombie until init reaps it).
    fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => pids_named(self.name).contains(&self.pid),
        }
    }

    /// Panics with the daemon's output if it has exited.
    fn check_alive(&mut self) {
        if !self.running() {
            panic!("{} exited:\n{}", self.name, self.logs());
        }
    }

    fn logs(&self) -> String {
        format!("{} output:\n{}\n{} log:\n{}", self.name, tail(&self.logs[0], 20), self.name, tail(&self.logs[1], 20))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process};
        let Some(pid) = Pid::from_raw(self.pid as i32) else { return };
        if !self.running() {
            return;
        }
        let _ = kill_process(pid, Signal::TERM);
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(20) {
            if !self.running() {
                eprintln!("stopped {} (pid {}) in {:.1?}", self.name, self.pid, asked.elapsed());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} (pid {}) ignored SIGTERM for 20 s: killing it", self.name, self.pid);
        let _ = kill_process(pid, Signal::KILL);
        if let Some(c) = &mut self.child {
            let _ = c.wait();
        }
    }
}

/// What a test process has to undo (`daemon NAME PID`, `marker PATH`,
/// `dir PATH` lines), kept while it runs: one killed before its `Drop`
/// leaves it behind, and the next run adopts those daemons, markers and
/// temporary directories and undoes them in its turn.
fn undo_file() -> PathBuf {
    std::env::temp_dir().join("overcommit-real-guests.undo")
}

/// A libvirtd to talk to: the system's, or one this process started.
pub struct Libvirt {
    virsh: PathBuf,
    /// In start order; stopped in reverse.
    started: Vec<Daemon>,
    /// `autostarted` markers this process created, removed after libvirtd stops.
    markers: Vec<PathBuf>,
    /// Configuration and logs of the daemons started here, and the guests'
    /// files (see [`Libvirt::scratch`]).
    dir: tempfile::TempDir,
    /// Such directories of killed test processes, removed with this one.
    stale_dirs: Vec<PathBuf>,
}

impl Libvirt {
    /// The running libvirtd, or one started now.
    pub fn connect_or_start() -> Result<Libvirt, Unavailable> {
        if !rustix::process::geteuid().is_root() {
            return Err(Unavailable("running guests under the system libvirtd needs root".into()));
        }
        let need = |name: &str, package: &str| {
            which(name).ok_or_else(|| Unavailable(format!("`{name}` is not installed (Debian package {package})")))
        };
        let virsh = need("virsh", "libvirt-clients")?;
        need("qemu-system-x86_64", "qemu-system-x86")?;
        let dir = tempfile::Builder::new().prefix("overcommit-libvirt-").tempdir().expect("a temporary directory");
        let mut libvirt = Libvirt { virsh, started: Vec::new(), markers: Vec::new(), dir, stale_dirs: Vec::new() };
        libvirt.adopt_leftovers();
        libvirt.write_undo();
        if libvirt.try_virsh(&["uri"]).is_ok() {
            if !libvirt.started.iter().any(|d| d.name == "libvirtd") {
                eprintln!("using the running libvirtd");
            }
            return Ok(libvirt);
        }
        for daemon in ["libvirtd", "virtqemud"] {
            if let Some(pid) = pids_named(daemon).first() {
                return Err(Unavailable(format!("{daemon} (pid {pid}) runs but does not answer on {URI}")));
            }
        }
        let libvirtd = need("libvirtd", "libvirt-daemon-system")?;
        let unshare = which("unshare").filter(|u| {
            run(Command::new(u).args(["--mount", "--propagation", "private", "true"]), Duration::from_secs(10)).is_ok()
        });
        // With the host's qemu.conf, libvirtd hands QEMU's output to
        // virtlogd, and without systemd nothing starts it on demand.
        if unshare.is_none() && pids_named("virtlogd").is_empty() {
            let virtlogd = need("virtlogd", "libvirt-daemon-system")?;
            let mut d = Daemon::start("virtlogd", &virtlogd, libvirt.dir.path(), "", None);
            wait_for(Duration::from_secs(30), "virtlogd's socket", || {
                d.check_alive();
                std::os::unix::net::UnixStream::connect("/run/libvirt/virtlogd-sock").is_ok()
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
            libvirt.started.push(d);
            libvirt.write_undo();
        }
        for driver in ["qemu", "network", "storage"] {
            let dir = Path::new("/run/libvirt").join(driver);
            let marker = dir.join("autostarted");
            if !marker.exists() {
                std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                std::fs::write(&marker, "").unwrap_or_else(|e| panic!("{}: {e}", marker.display()));
                libvirt.markers.push(marker);
            }
        }
        libvirt.write_undo();
        // Local UNIX sockets only (the defaults); its log in our directory.
        let conf = "listen_tls = 0\nlisten_tcp = 0\n";
        let mut d = Daemon::start("libvirtd", &libvirtd, libvirt.dir.path(), conf, unshare.as_deref());
        libvirt.write_undo_with(Some(&d));
        let answered = wait_for(VIRSH_LIMIT, "libvirtd to answer", || {
            d.check_alive();
            libvirt.try_virsh(&["uri"]).is_ok()
        });
        let took = answered.unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
        eprintln!("libvirtd answered after {took:.1?}");
        libvirt.started.push(d);
        Ok(libvirt)
    }

    /// Takes over the daemons and markers a killed test process left (see
    /// [`undo_file`]), so that this one stops and removes them.
    fn adopt_leftovers(&mut self) {
        let Ok(text) = std::fs::read_to_string(undo_file()) else { return };
        for line in text.lines() {
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["daemon", name, pid] => {
                    let (Some(name), Ok(pid)) =
                        (["libvirtd", "virtlogd"].into_iter().find(|n| *n == name), pid.parse())
                    else {
                        continue;
                    };
                    if pids_named(name).contains(&pid) {
                        eprintln!("adopting {name} (pid {pid}) left by an earlier run");
                        let logs = [PathBuf::new(), PathBuf::new()];
                        self.started.push(Daemon { name, pid, child: None, logs });
                    }
                }
                ["marker", path] => self.markers.push(PathBuf::from(path)),
                ["dir", path] if Path::new(path).starts_with(std::env::temp_dir()) => {
                    self.stale_dirs.push(PathBuf::from(path));
                }
                _ => {}
            }
        }
    }

    fn write_undo(&self) {
        self.write_undo_with(None);
    }

    /// Records what is to undo, with `extra`, a daemon not in `started` yet.
    fn write_undo_with(&self, extra: Option<&Daemon>) {
        let mut text = String::new();
        for d in self.started.iter().chain(extra) {
            text += &format!("daemon {} {}\n", d.name, d.pid);
        }
        for m in &self.markers {
            text += &format!("marker {}\n", m.display());
        }
        for d in self.stale_dirs.iter().map(PathBuf::as_path).chain([self.dir.path()]) {
            text += &format!("dir {}\n", d.display());
        }
        std::fs::write(undo_file(), text).unwrap_or_else(|e| panic!("{}: {e}", undo_file().display()));
    }

    /// A private directory for files QEMU reads or writes (it runs as root
    /// there), removed with this `Libvirt`.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// virsh's output, or an error with what it printed.
    pub fn try_virsh(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new(&self.virsh).arg("-c").arg(URI).args(args), VIRSH_LIMIT)
    }

    /// The daemons this process started, with their pids (empty when it
    /// uses a libvirtd that was already running).
    pub fn started_daemons(&self) -> Vec<(&'static str, u32)> {
        self.started.iter().map(|d| (d.name, d.pid)).collect()
    }

    fn logs(&self) -> String {
        self.started.iter().map(Daemon::logs).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Libvirt {
    fn drop(&mut self) {
        while let Some(d) = self.started.pop() {
            drop(d);
        }
        for m in &self.markers {
            let _ = std::fs::remove_file(m);
        }
        for d in &self.stale_dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        let _ = std::fs::remove_file(undo_file());
    }
}

/// Polls `ready` every 100 ms until it holds, or says what it waited for.
fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if ready() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(format!("waited {limit:?} for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One test guest: its size and what its workload does.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    pub name: String,
    /// `<memory>` and the initial `<currentMemory>`.
    pub memory_mib: u64,
    pub workload: Workload,
}

/// The program the guest's `/init` runs, with its parameters, which go
/// on the kernel command line.
#[derive(Debug, Clone)]
pub enum Workload {
    /// memtouch (`guest/memtouch.c`): `touch_mib` written once, each page
    /// distinct; `free_mib` of those unmapped again (free in the guest,
    /// still held by QEMU).
    Memtouch { touch_mib: u64, free_mib: u64 },
    /// memwork (`guest/memwork.c`) with these `memwork.*` keys and values
    /// (`("rate", "2000")` for `memwork.rate=2000`).
    Memwork(Vec<(String, String)>),
}

impl Workload {
    /// The program's name: its ready line starts with `NAME: ready`.
    pub fn program(&self) -> &'static str {
        match self {
            Workload::Memtouch { .. } => "memtouch",
            Workload::Memwork(_) => "memwork",
        }
    }

    /// Its part of the kernel command line.
    pub fn cmdline(&self) -> String {
        match self {
            Workload::Memtouch { touch_mib, free_mib } => {
                format!("memtouch.mib={touch_mib} memtouch.free_mib={free_mib}")
            }
            Workload::Memwork(keys) => {
                keys.iter().map(|(k, v)| format!("memwork.{k}={v}")).collect::<Vec<_>>().join(" ")
            }
        }
    }
}

/// The line the workload printed when it was ready (`memtouch: ready
/// touched_mib=...`, `memwork: ready pages=...`): its `key=value` words.
#[derive(Debug, Clone)]
pub struct Ready {
    pub line: String,
    pub fields: BTreeMap<String, String>,
}

impl Ready {
    pub fn parse(line: &str) -> Ready {
        let fields = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ready { line: line.to_string(), fields }
    }

    /// A numeric field; panics, showing the line, if it is missing or not
    /// a number. memtouch's: `touched_mib`, `resident_mib`, `freed_mib`,
    /// `memtotal_kib` and `memfree_kib` (the guest kernel's MemTotal and
    /// MemFree then).
    pub fn u64(&self, key: &str) -> u64 {
        self.fields
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number {key}= in the ready line {:?}", self.line))
    }
}

/// A running guest.
#[derive(Debug, Clone)]
pub struct Domain {
    pub spec: GuestSpec,
    /// The QEMU process (from libvirt's `/run/libvirt/qemu/NAME.pid`).
    pub pid: u32,
    /// The guest's serial console, as a file.
    pub console: PathBuf,
    /// From `virsh start` returning to the workload's ready line.
    pub boot_time: Duration,
    /// When the ready line was seen (to tell balloon statistics taken
    /// after it, by their `last_update`, from older ones).
    pub ready_at: std::time::SystemTime,
    pub ready: Ready,
}

impl Domain {
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// A QEMU process's memory as the host kernel counts it, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct ProcMem {
    /// `VmRSS` of /proc/PID/status.
    pub rss_kib: u64,
    /// `VmSwap` of /proc/PID/status.
    pub swap_kib: u64,
    /// `AnonHugePages` of /proc/PID/smaps_rollup: RSS held in THPs.
    pub anon_huge_kib: u64,
    /// The resident part of the guest's RAM block: `Rss` of the mappings
    /// in /proc/PID/smaps exactly the guest's size (QEMU maps a guest's
    /// RAM as one anonymous block). The rest of `rss_kib` is QEMU's own.
    pub guest_ram_kib: u64,
}

/// Reads a QEMU process's [`ProcMem`]; `guest_kib` is its guest's `<memory>`.
pub fn proc_mem(pid: u32, guest_kib: u64) -> ProcMem {
    let read = |file: &str| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let value = |line: &str, name: &str| -> Option<u64> {
        line.strip_prefix(name)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok()
    };
    let field = |file: &str, name: &str| {
        read(file).lines().find_map(|l| value(l, name)).unwrap_or_else(|| panic!("/proc/{pid}/{file} has no {name}"))
    };
    // smaps: a header line per mapping, then its fields; Size comes before Rss.
    let (mut size, mut guest_ram_kib, mut found) = (0, 0, false);
    for line in read("smaps").lines() {
        if let Some(v) = value(line, "Size") {
            size = v;
        } else if let Some(v) = value(line, "Rss")
            && size == guest_kib
        {
            guest_ram_kib += v;
            found = true;
        }
    }
    assert!(found, "QEMU pid {pid} maps no block of the guest's {guest_kib} KiB");
    ProcMem {
        rss_kib: field("status", "VmRSS"),
        swap_kib: field("status", "VmSwap"),
        anon_huge_kib: field("smaps_rollup", "AnonHugePages"),
        guest_ram_kib,
    }
}

/// Guests running under libvirt; all of it undone when dropped.
pub struct LibvirtEnv {
    /// Names defined in libvirt by this environment, started or not.
    defined: Vec<String>,
    domains: Vec<Domain>,
    /// Domain XML and console logs are in its scratch directory.
    libvirt: Libvirt,
    _lock: HostLock,
}

impl LibvirtEnv {
    /// Starts libvirt if needed, boots one guest per spec from `kit`, all at
    /// once, and waits for every ready line. Panics (after cleaning up)
    /// if a guest does not come up.
    pub fn boot(lock: HostLock, kit: &GuestKit, specs: &[GuestSpec]) -> Result<LibvirtEnv, Unavailable> {
        let libvirt = Libvirt::connect_or_start()?;
        let dir = libvirt.scratch().to_path_buf();
        let mut env = LibvirtEnv { defined: Vec::new(), domains: Vec::new(), libvirt, _lock: lock };
        for spec in specs {
            // A domain of this name is left from a test process that was
            // killed: the host lock says no live test uses it.
            if env.try_virsh(&["domstate", &spec.name]).is_ok() {
                eprintln!("removing {} left by an earlier run", spec.name);
                let _ = env.try_virsh(&["destroy", &spec.name]);
                env.virsh(&["undefine", &spec.name]);
            }
            let console = dir.join(format!("{}.console", spec.name));
            let xml = dir.join(format!("{}.xml", spec.name));
            std::fs::write(&xml, domain_xml(spec, kit, &console)).expect("domain XML written");
            env.virsh(&["define", &xml.to_string_lossy()]);
            env.defined.push(spec.name.clone());
        }
        let mut starting = Vec::new();
        for spec in specs {
            let t = Instant::now();
            env.virsh(&["start", &spec.name]);
            eprintln!("{}: virsh start took {:.1?}", spec.name, t.elapsed());
            starting.push((spec.clone(), Instant::now()));
        }
        for (spec, started) in starting {
            let console = dir.join(format!("{}.console", spec.name));
            let ready = env.wait_ready(&spec.name, spec.workload.program(), &console);
            let (boot_time, ready_at) = (started.elapsed(), std::time::SystemTime::now());
            let pid_file = format!("/run/libvirt/qemu/{}.pid", spec.name);
            let pid: u32 = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or_else(|| panic!("no QEMU pid in {pid_file}"));
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            assert!(comm.starts_with("qemu-system"), "pid {pid} of {} is {comm:?}, not QEMU", spec.name);
            eprintln!("{}: ready {:.1?} after virsh start (QEMU pid {pid}): {}", spec.name, boot_time, ready.line);
            env.domains.push(Domain { spec, pid, console, boot_time, ready_at, ready });
        }
        Ok(env)
    }

    /// Waits for the ready line of `program` (memtouch, memwork) on the
    /// console; panics with the console's tail if the guest stops, the
    /// program fails or the time runs out.
    fn wait_ready(&self, name: &str, program: &str, console: &Path) -> Ready {
        let start = Instant::now();
        let mut last_state_check = Instant::now();
        let marker = format!("{program}: ready");
        loop {
            let text = std::fs::read(console).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            // A complete line only: the console file may end mid-line.
            if let Some(line) = text.split_inclusive('\n').find(|l| l.contains(&marker) && l.ends_with('\n')) {
                return Ready::parse(line[line.find(&marker).unwrap_or(0)..].trim());
            }
            let failed = ["Kernel panic".to_string(), format!("{program}: failed"), format!("init: {program} exited")]
                .into_iter()
                .find(|f| text.contains(f));
            if let Some(f) = failed {
                panic!("{name}: {f:?} on the console:\n{}", tail(console, 40));
            }
            if last_state_check.elapsed() > Duration::from_secs(2) {
                last_state_check = Instant::now();
                let state = self.try_virsh(&["domstate", name]).unwrap_or_else(|e| e);
                if state.trim() != "running" {
                    panic!(
                        "{name} is {:?}, not running; console:\n{}\n{}",
                        state.trim(),
                        tail(console, 40),
                        self.libvirt.logs()
                    );
                }
            }
            if start.elapsed() > BOOT_LIMIT {
                panic!("{name}: no ready line after {BOOT_LIMIT:?}; console:\n{}", tail(console, 40));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// The daemons this environment started, with their pids.
    pub fn started_daemons(&self) -> Vec<(&'static str, u32)> {
        self.libvirt.started_daemons()
    }

    pub fn try_virsh(&self, args: &[&str]) -> Result<String, String> {
        self.libvirt.try_virsh(args)
    }

    /// virsh's output; panics with what it printed if it fails.
    pub fn virsh(&self, args: &[&str]) -> String {
        self.try_virsh(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `virsh dumpxml NAME`: the live domain XML.
    pub fn dumpxml(&self, name: &str) -> String {
        self.virsh(&["dumpxml", name])
    }

    /// `virsh setmem NAME KIB --live`: asks the guest's balloon for a new size.
    pub fn setmem_live(&self, name: &str, kib: u64) {
        self.virsh(&["setmem", name, &kib.to_string(), "--live"]);
    }

    /// `virsh dommemstat NAME` as a map (`actual`, `rss`, and, once the
    /// guest's balloon driver reports, `unused`, `available`, `usable`, ...),
    /// in KiB (`last_update` in seconds).
    pub fn dommemstat(&self, name: &str) -> BTreeMap<String, u64> {
        self.virsh(&["dommemstat", name])
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }
}

impl Drop for LibvirtEnv {
    fn drop(&mut self) {
        for name in self.defined.drain(..).rev() {
            // `destroy` fails for a domain that is not running; that is fine.
            let _ = self.libvirt.try_virsh(&["destroy", &name]);
            match self.libvirt.try_virsh(&["undefine", &name]) {
                Ok(_) => {
                    let _ = std::fs::remove_file(format!("/var/log/libvirt/qemu/{name}.log"));
                }
                Err(e) => eprintln!("cannot undefine {name}: {e}"),
            }
        }
        // Then `libvirt` stops what it started, and the files go.
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;").replace('"', "&quot;")
}

/// The domain XML of a test guest. TCG (`type='qemu'`: KVM does not work
/// on the project's machines), one vCPU, direct kernel boot, no disk and
/// no network. QEMU runs as root without relabelling (a static DAC label),
/// so it reads the kit in the target directory and writes the console in a
/// private temporary directory without libvirt changing their owners.
/// `init_on_alloc=0`: Debian's kernel zeroes every page it allocates by
/// default, which would have the balloon driver write each page it takes.
fn domain_xml(spec: &GuestSpec, kit: &GuestKit, console: &Path) -> String {
    let path = |p: &Path| xml_escape(&p.to_string_lossy());
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <currentMemory unit='MiB'>{mem}</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 init_on_alloc=0 panic=-1 {workload}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='{console}'/>
      <target port='0'/>
    </serial>
    <memballoon model='virtio'>
      <stats period='1'/>
    </memballoon>
  </devices>
  <seclabel type='static' model='dac' relabel='no'>
    <label>+0:+0</label>
  </seclabel>
</domain>
",
        name = xml_escape(&spec.name),
        mem = spec.memory_mib,
        kernel = path(&kit.kernel),
        initrd = path(&kit.initramfs),
        workload = xml_escape(&spec.workload.cmdline()),
        console = path(console),
    )
}
