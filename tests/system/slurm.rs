//! A real Slurm scheduler on this machine, for the system tests, and what
//! runs on it: `overcommit fleet` split into shards by a job array.
//!
//! [`Slurm::start`] brings up a one-node cluster on localhost that is the
//! test's own: Debian's `slurm-wlm` and `munge` (installed with apt-get
//! where missing), a munge key, slurm.conf, state, spool, pid and log
//! files all in a temporary directory, and `munged -F`, `slurmctld -D`
//! and `slurmd -D` run as children of the test, so a system Slurm and
//! munge (their `/etc` files, `/run/munge` socket and standard ports) are
//! never touched: munged listens on a socket in that directory (which
//! slurm.conf's `AuthInfo=socket=` names), slurmctld and slurmd on ports
//! free when the cluster starts, and every client call (`sbatch`,
//! `squeue`, `sinfo`, `scontrol`, `scancel`) gets `SLURM_CONF` pointing at
//! our slurm.conf. The node is declared as `slurmd -C` finds the machine
//! (its name, the short host name, and its real CPUs and memory); cores
//! are allocated (`select/cons_tres`), memory is not, no cgroups (tasks
//! tracked by `proctrack/linuxproc`), no accounting database, and batch
//! jobs are scheduled as they come (`batch_sched_delay=0`; by default
//! Slurm may hold them back up to 3 s).
//!
//! [`Slurm::submit_array`] submits a shell script as a job array of N
//! tasks; [`Slurm::wait`] polls `squeue` until the array is gone and then
//! reads each task's state and exit code from `scontrol show job` (there
//! is no `sacct` without slurmdbd), and the exit status the task's own
//! script returned, which a wrapper writes to a file next to its output.
//!
//! Everything is undone in `Drop`, also when a test panics: the jobs left
//! cancelled, then slurmd, slurmctld and munged stopped (SIGTERM, SIGKILL
//! after a grace period), then any process still carrying our
//! `SLURM_CONF` (a `slurmstepd`, a task) killed, then the directory
//! removed. A test process killed before that leaves a list of what to
//! undo (`overcommit-slurm.undo` in the temporary directory), which the
//! next start carries out first. A file lock keeps two test processes on
//! this machine from running clusters (and sharing that list) at once.

use crate::command::{FileLock, pids_named, run, tail, which};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the tests call, and what a cluster of ours runs.
const CLIENTS: [&str; 5] = ["sbatch", "squeue", "sinfo", "scontrol", "scancel"];
const DAEMONS: [&str; 3] = ["munged", "slurmctld", "slurmd"];

/// How long one client call may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(30);
/// From starting munged to the node idle (about a second here).
const UP_LIMIT: Duration = Duration::from_secs(60);
/// How long a daemon has to exit after SIGTERM before it is killed (each
/// stops in well under a second here, slurmctld slowest, saving its state).
const GRACE: Duration = Duration::from_secs(20);
/// The overcommit runs' limit, in a job or not.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Why a cluster cannot run on this machine; the test prints it and skips.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// What a killed test process left to undo: `daemon NAME PID` and `dir
/// PATH` lines, rewritten as daemons start.
fn undo_file() -> PathBuf {
    std::env::temp_dir().join("overcommit-slurm.undo")
}

/// Sends SIGTERM to `pid` and waits for `gone`; SIGKILL after [`GRACE`].
fn stop(name: &str, pid: u32, mut gone: impl FnMut() -> bool) {
    use rustix::process::{Pid, Signal, kill_process};
    let Some(p) = Pid::from_raw(pid as i32) else { return };
    if gone() {
        return;
    }
    let _ = kill_process(p, Signal::TERM);
    let asked = Instant::now();
    while asked.elapsed() < GRACE {
        if gone() {
            eprintln!("stopped {name} (pid {pid}) in {:.1?}", asked.elapsed());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{name} (pid {pid}) ignored SIGTERM for {GRACE:?}: killing it");
    let _ = kill_process(p, Signal::KILL);
}

/// Kills every process but this one whose environment has `SLURM_CONF=conf`:
/// our daemons and whatever they started (slurmstepd, job tasks), which
/// inherit it.
fn kill_carriers(conf: &Path) {
    use rustix::process::{Pid, Signal, kill_process};
    let mut entry = b"SLURM_CONF=".to_vec();
    entry.extend_from_slice(conf.as_os_str().as_encoded_bytes());
    let carriers = || -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != std::process::id())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == entry))
            })
            .filter(|pid| {
                // Not a zombie: that one is dead already.
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])))
            })
            .collect()
    };
    let found = carriers();
    if found.is_empty() {
        return;
    }
    eprintln!("killing processes left running under {}: {found:?}", conf.display());
    for pid in &found {
        if let Some(p) = Pid::from_raw(*pid as i32) {
            let _ = kill_process(p, Signal::KILL);
        }
    }
    let t = Instant::now();
    while !carriers().is_empty() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the daemons and removes the directories a killed test process
/// left (see [`undo_file`]). Called holding the [`FileLock`], so nothing
/// listed there belongs to a live test.
fn clean_leftovers() {
    let Ok(text) = std::fs::read_to_string(undo_file()) else { return };
    let mut dirs = Vec::new();
    for line in text.lines().rev() {
        if let Some(path) = line.strip_prefix("dir ") {
            dirs.push(PathBuf::from(path));
            continue;
        }
        let ["daemon", name, pid] = line.split_whitespace().collect::<Vec<_>>()[..] else { continue };
        let (Some(name), Ok(pid)) = (DAEMONS.into_iter().find(|n| *n == name), pid.parse::<u32>()) else {
            continue;
        };
        if pids_named(name).contains(&pid) {
            eprintln!("stopping {name} (pid {pid}) left by an earlier run");
            stop(name, pid, || !pids_named(name).contains(&pid));
        }
    }
    for dir in dirs.iter().filter(|d| d.starts_with(std::env::temp_dir()) && d.is_dir()) {
        kill_carriers(&dir.join("slurm.conf"));
        eprintln!("removing {} left by an earlier run", dir.display());
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_file(undo_file());
}

/// A daemon of the cluster, started in the foreground as our child.
struct Daemon {
    name: &'static str,
    child: Child,
    /// Its standard output and error.
    out: PathBuf,
    /// Its log file, if it writes one besides.
    log: Option<PathBuf>,
}

impl Daemon {
    fn start(name: &'static str, cmd: &mut Command, dir: &Path, log: Option<PathBuf>) -> Daemon {
        let out = dir.join(format!("{name}.out"));
        let stdout = std::fs::File::create(&out).expect("daemon output file");
        let stderr = stdout.try_clone().expect("daemon output file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon { name, child, out, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs (an exited one is reaped here).
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn logs(&self) -> String {
        let mut text = format!("{} output:\n{}", self.name, tail(&self.out, 20));
        if let Some(log) = &self.log {
            text += &format!("\n{} log:\n{}", self.name, tail(log, 20));
        }
        text
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let (name, pid) = (self.name, self.pid());
        stop(name, pid, || !self.running());
        let _ = self.child.wait();
    }
}

/// A job array submitted by [`Slurm::submit_array`].
#[derive(Debug, Clone)]
pub struct ArrayJob {
    pub id: u32,
    /// Its tasks are numbered 1 to `tasks`.
    pub tasks: u32,
    /// The scripts, each task's output (`task-I.out`, standard output and
    /// error) and exit status (`status-I`).
    pub files: PathBuf,
}

/// How one task of an array ended.
#[derive(Debug, Clone)]
pub struct Task {
    /// `SLURM_ARRAY_TASK_ID`, from 1.
    pub index: u32,
    /// Slurm's `JobState` (`COMPLETED`, `FAILED`, `CANCELLED`, ...).
    pub state: String,
    /// Slurm's `ExitCode`: `STATUS:SIGNAL`, `0:0` for success.
    pub exit_code: String,
    /// The exit status of the task's script, as its wrapper wrote it; none
    /// if the task never got there (not started, killed).
    pub status: Option<i32>,
    /// What the script printed, standard output and error together.
    pub output: String,
}

impl Task {
    /// Slurm and the task's own script both say it succeeded.
    pub fn succeeded(&self) -> bool {
        self.state == "COMPLETED" && self.exit_code == "0:0" && self.status == Some(0)
    }
}

/// The batch script of every array: runs the task's script and writes its
/// exit status to `status-I` before returning it to Slurm. `$0` is not the
/// script's path (slurmd runs a copy), so the files' directory is written
/// into it.
fn batch_script(files: &Path) -> String {
    let files = sh_quote(&files.to_string_lossy());
    format!(
        "#!/bin/sh\n/bin/sh {files}/task.sh\nstatus=$?\necho \"$status\" > {files}/status-\"$SLURM_ARRAY_TASK_ID\"\nexit \"$status\"\n"
    )
}

/// `s` as one shell word.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A one-node Slurm cluster of this test process; stopped when dropped.
pub struct Slurm {
    /// The node's name (the machine's short host name).
    node: String,
    conf: PathBuf,
    /// munged, slurmctld, slurmd, in start order; stopped in reverse.
    daemons: Vec<Daemon>,
    /// Arrays submitted, cancelled when dropped if still queued.
    jobs: Vec<u32>,
    /// slurm.conf, the munge key, state, spool, logs, the jobs' files.
    dir: tempfile::TempDir,
    _lock: FileLock,
}

impl Slurm {
    /// Installs Slurm and munge if needed and starts a cluster of our own;
    /// returns once its node is idle. Panics, after stopping what it
    /// started, if the cluster does not come up.
    pub fn start() -> Result<Slurm, Unavailable> {
        if !rustix::process::geteuid().is_root() {
            return Err(Unavailable("a Slurm cluster of the test's own needs root (munged, slurmd)".into()));
        }
        install_if_missing()?;
        let lock = FileLock::acquire("overcommit-slurm.lock", "Slurm cluster");
        clean_leftovers();
        let started = Instant::now();
        let dir = tempfile::Builder::new().prefix("overcommit-slurm-").tempdir().expect("a temporary directory");
        // munged refuses a socket in a directory others cannot traverse.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod 755");
        let d = dir.path().to_path_buf();
        let conf = d.join("slurm.conf");
        let mut slurm =
            Slurm { node: String::new(), conf: conf.clone(), daemons: Vec::new(), jobs: Vec::new(), dir, _lock: lock };
        slurm.write_undo();

        // The machine as slurmd sees it: `NodeName=HOST CPUs=.. Boards=..
        // SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..`.
        let probe = run(Command::new(tool("slurmd")).arg("-C"), CLIENT_LIMIT).unwrap_or_else(|e| panic!("{e}"));
        let node_line = probe
            .lines()
            .find(|l| l.starts_with("NodeName="))
            .unwrap_or_else(|| panic!("slurmd -C printed no NodeName= line: {probe}"))
            .trim()
            .to_string();
        slurm.node = node_line["NodeName=".len()..].split_whitespace().next().unwrap_or_default().to_string();
        let (ctld_port, slurmd_port) = free_ports();

        let key = d.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").expect("/dev/urandom"), &mut bytes)
            .expect("random bytes for the munge key");
        std::fs::write(&key, &bytes).expect("munge key written");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
        for sub in ["state", "spool", "jobs", "scratch"] {
            std::fs::create_dir(d.join(sub)).expect("a directory of the cluster");
        }
        let socket = d.join("munge.socket");
        let p = |name: &str| d.join(name).display().to_string();
        let text = format!(
            "# A one-node cluster of the overcommit system tests.\n\
             ClusterName=overcommit-test\n\
             SlurmctldHost={node}(127.0.0.1)\n\
             SlurmctldPort={ctld_port}\n\
             SlurmdPort={slurmd_port}\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             MpiDefault=none\n\
             SwitchType=switch/none\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             SchedulerParameters=batch_sched_delay=0\n\
             ReturnToService=2\n\
             StateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={ctld_pid}\n\
             SlurmdPidFile={slurmd_pid}\n\
             SlurmctldLogFile={ctld_log}\n\
             SlurmdLogFile={slurmd_log}\n\
             {node_line} NodeAddr=127.0.0.1 State=UNKNOWN\n\
             PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP\n",
            node = slurm.node,
            socket = socket.display(),
            state = p("state"),
            spool = p("spool"),
            ctld_pid = p("slurmctld.pid"),
            slurmd_pid = p("slurmd.pid"),
            ctld_log = p("slurmctld.log"),
            slurmd_log = p("slurmd.log"),
        );
        std::fs::write(&conf, text).expect("slurm.conf written");

        // munged in the foreground logs to its standard error, not --log-file.
        let mut munged = Command::new(tool("munged"));
        munged.arg("-F").arg("--key-file").arg(&key).arg("--socket").arg(&socket);
        for (option, file) in
            [("--pid-file", "munged.pid"), ("--log-file", "munged.log"), ("--seed-file", "munged.seed")]
        {
            munged.arg(option).arg(d.join(file));
        }
        slurm.spawn(Daemon::start("munged", &mut munged, &d, None));
        slurm.wait_up("munged's socket", |_| {
            std::os::unix::net::UnixStream::connect(&socket).map(drop).map_err(|e| format!("{}: {e}", socket.display()))
        });
        for (name, extra) in [("slurmctld", vec![]), ("slurmd", vec!["-N".to_string(), slurm.node.clone()])] {
            let mut cmd = Command::new(tool(name));
            cmd.arg("-D").arg("-f").arg(&conf).args(extra).env("SLURM_CONF", &conf);
            slurm.spawn(Daemon::start(name, &mut cmd, &d, Some(d.join(format!("{name}.log")))));
        }
        slurm.wait_up("the node to be idle", |s| match s.try_client("sinfo", &["-h", "-o", "%T"]) {
            Ok(state) if state.trim() == "idle" => Ok(()),
            Ok(state) => Err(format!("sinfo says {:?}", state.trim())),
            Err(e) => Err(e),
        });
        eprintln!(
            "Slurm up in {:.1?}: node {} idle, ports {ctld_port} and {slurmd_port}, daemons {:?}",
            started.elapsed(),
            slurm.node,
            slurm.daemons()
        );
        Ok(slurm)
    }

    fn spawn(&mut self, d: Daemon) {
        eprintln!("started {} (pid {})", d.name, d.pid());
        self.daemons.push(d);
        self.write_undo();
    }

    /// Polls `ready` until it holds (an error says what it saw instead);
    /// panics with that and the daemons' logs if one of them exits or
    /// [`UP_LIMIT`] passes.
    fn wait_up(&mut self, what: &str, mut ready: impl FnMut(&Slurm) -> Result<(), String>) {
        let t = Instant::now();
        loop {
            let seen = match ready(self) {
                Ok(()) => return,
                Err(seen) => seen,
            };
            if let Some(i) = self.daemons.iter_mut().position(|d| !d.running()) {
                let name = self.daemons[i].name;
                panic!("{name} exited while waiting for {what} ({seen}):\n{}", self.logs());
            }
            if t.elapsed() > UP_LIMIT {
                panic!("waited {UP_LIMIT:?} for {what} ({seen}):\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_undo(&self) {
        let mut text = format!("dir {}\n", self.dir.path().display());
        for d in &self.daemons {
            text += &format!("daemon {} {}\n", d.name, d.pid());
        }
        std::fs::write(undo_file(), text).unwrap_or_else(|e| panic!("{}: {e}", undo_file().display()));
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The daemons running, with their pids.
    pub fn daemons(&self) -> Vec<(&'static str, u32)> {
        self.daemons.iter().map(|d| (d.name, d.pid())).collect()
    }

    /// The cluster's directory, removed when it stops.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An empty directory for a test's own files (its jobs' working
    /// directory, their outputs), removed with the cluster, or by the next
    /// start if this test process is killed.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// A Slurm client (`sinfo`, `squeue`, ...) talking to this cluster.
    pub fn client(&self, name: &str) -> Command {
        let mut c = Command::new(tool(name));
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// A client's output, or an error with what it printed.
    pub fn try_client(&self, name: &str, args: &[&str]) -> Result<String, String> {
        run(self.client(name).args(args), CLIENT_LIMIT)
    }

    /// The tail of each daemon's output and log, for failure messages.
    pub fn logs(&self) -> String {
        self.daemons.iter().map(Daemon::logs).collect::<Vec<_>>().join("\n")
    }

    /// Submits `script` (run by `/bin/sh` in `workdir`) as an array of
    /// tasks 1 to `tasks`; each sees its number in `SLURM_ARRAY_TASK_ID`,
    /// and the submitting environment besides (Slurm's default).
    pub fn submit_array(&mut self, tasks: u32, workdir: &Path, script: &str) -> ArrayJob {
        let files = self.dir.path().join("jobs").join(self.jobs.len().to_string());
        std::fs::create_dir(&files).expect("a directory for the job's files");
        std::fs::write(files.join("task.sh"), script).expect("task script written");
        let batch = files.join("batch.sh");
        std::fs::write(&batch, batch_script(&files)).expect("batch script written");
        let out = self
            .try_client(
                "sbatch",
                &[
                    "--parsable",
                    &format!("--array=1-{tasks}"),
                    "--job-name=overcommit-test",
                    &format!("--chdir={}", workdir.display()),
                    &format!("--output={}/task-%a.out", files.display()),
                    &batch.to_string_lossy(),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        // `ID` or `ID;CLUSTER`.
        let id: u32 = out
            .trim()
            .split(';')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("sbatch --parsable printed {out:?}, not a job id"));
        self.jobs.push(id);
        eprintln!("submitted job array {id} of {tasks} tasks");
        ArrayJob { id, tasks, files }
    }

    /// Waits for every task of `job` to end, and says how each did.
    /// Panics, after cancelling the job, if that takes longer than `limit`.
    pub fn wait(&self, job: &ArrayJob, limit: Duration) -> Vec<Task> {
        let t = Instant::now();
        let id = job.id.to_string();
        loop {
            // Empty once every task has left the queue; an id Slurm no
            // longer knows is gone too.
            match self.try_client("squeue", &["-h", "-j", &id, "-o", "%i %T"]) {
                Ok(out) if out.trim().is_empty() => break,
                Err(e) if e.contains("Invalid job id") => break,
                Ok(out) if t.elapsed() > limit => {
                    let _ = self.try_client("scancel", &[&id]);
                    let outputs: Vec<String> = (1..=job.tasks)
                        .map(|i| format!("task {i}:\n{}", tail(&job.files.join(format!("task-{i}.out")), 20)))
                        .collect();
                    panic!(
                        "job {id} still queued after {limit:?}, cancelled:\n{}\n{}\n{}",
                        out.trim(),
                        outputs.join("\n"),
                        self.logs()
                    );
                }
                Ok(_) => {}
                Err(e) => panic!("{e}\n{}", self.logs()),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // One line per task: `JobId=.. ArrayJobId=ID ArrayTaskId=I .. JobState=S .. ExitCode=C:G ..`,
        // kept by slurmctld for MinJobAge (300 s) after the task ends.
        let shown = self.try_client("scontrol", &["-o", "show", "job", &id]).unwrap_or_default();
        let field = |line: &str, key: &str| -> Option<String> {
            line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')).map(str::to_string)
        };
        let tasks: Vec<Task> = (1..=job.tasks)
            .map(|index| {
                let line = shown.lines().find(|l| field(l, "ArrayTaskId").is_some_and(|i| i == index.to_string()));
                let read = |name: String| std::fs::read_to_string(job.files.join(name)).ok();
                Task {
                    index,
                    state: line.and_then(|l| field(l, "JobState")).unwrap_or_else(|| "unknown".into()),
                    exit_code: line.and_then(|l| field(l, "ExitCode")).unwrap_or_else(|| "unknown".into()),
                    status: read(format!("status-{index}")).and_then(|s| s.trim().parse().ok()),
                    output: read(format!("task-{index}.out")).unwrap_or_default(),
                }
            })
            .collect();
        eprintln!(
            "job array {id} done in {:.1?}: {}",
            t.elapsed(),
            tasks.iter().map(|t| format!("{} {} {}", t.index, t.state, t.exit_code)).collect::<Vec<_>>().join(", ")
        );
        tasks
    }

    /// Submits `script` as an array of `tasks`, waits for it, and panics,
    /// showing their output, unless every task succeeded.
    pub fn run_array(&mut self, tasks: u32, workdir: &Path, script: &str, limit: Duration) -> Vec<Task> {
        let job = self.submit_array(tasks, workdir, script);
        let done = self.wait(&job, limit);
        let failed: Vec<String> = done
            .iter()
            .filter(|t| !t.succeeded())
            .map(|t| {
                format!("task {}: {} exit code {} status {:?}:\n{}", t.index, t.state, t.exit_code, t.status, t.output)
            })
            .collect();
        assert!(failed.is_empty(), "job array {} failed:\n{}\n{}", job.id, failed.join("\n"), self.logs());
        done
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let t = Instant::now();
        let ctld_up = self.daemons.iter_mut().any(|d| d.name == "slurmctld" && d.running());
        if ctld_up && !self.jobs.is_empty() {
            let ids: Vec<String> = self.jobs.iter().map(u32::to_string).collect();
            let _ = self.try_client("scancel", &ids.iter().map(String::as_str).collect::<Vec<_>>());
            let queued = || self.try_client("squeue", &["-h"]).is_ok_and(|o| !o.trim().is_empty());
            while queued() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let had = !self.daemons.is_empty();
        while let Some(d) = self.daemons.pop() {
            drop(d);
        }
        kill_carriers(&self.conf);
        let _ = std::fs::remove_file(undo_file());
        if had {
            eprintln!("Slurm stopped in {:.1?}", t.elapsed());
        }
        // Then the directory goes, and the lock is released.
    }
}

/// Where an installed tool is (checked by [`install_if_missing`]).
fn tool(name: &str) -> PathBuf {
    which(name).unwrap_or_else(|| panic!("`{name}` is not installed"))
}

/// Installs Debian's `slurm-wlm` and `munge` unless every tool is there.
fn install_if_missing() -> Result<(), Unavailable> {
    let missing: Vec<&str> = CLIENTS.into_iter().chain(DAEMONS).filter(|t| which(t).is_none()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let apt_get = which("apt-get").ok_or_else(|| {
        Unavailable(format!("{missing:?} not installed, and no apt-get to install slurm-wlm and munge"))
    })?;
    eprintln!("{missing:?} not installed: installing slurm-wlm and munge");
    let install = || {
        let mut c = Command::new(&apt_get);
        c.args(["install", "-y", "--no-install-recommends", "slurm-wlm", "munge"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c, Duration::from_secs(900))
    };
    // Package lists may be stale or absent (a fresh container): update once.
    let installed = install().or_else(|_| {
        run(Command::new(&apt_get).arg("update").env("DEBIAN_FRONTEND", "noninteractive"), Duration::from_secs(300))
            .and_then(|_| install())
    });
    installed.map_err(|e| Unavailable(format!("cannot install slurm-wlm and munge: {e}")))?;
    match CLIENTS.into_iter().chain(DAEMONS).find(|t| which(t).is_none()) {
        Some(t) => Err(Unavailable(format!("slurm-wlm and munge installed, yet `{t}` is missing"))),
        None => Ok(()),
    }
}

/// Two TCP ports free now, for slurmctld and slurmd, so a system Slurm on
/// the standard ones (6817, 6818) or another cluster does not clash.
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("0.0.0.0:0").expect("a free port");
    let (a, b) = (bind(), bind());
    let port = |l: &std::net::TcpListener| l.local_addr().expect("a bound port").port();
    (port(&a), port(&b))
}

/// Starts the cluster, or prints why it cannot and gives none.
fn start_or_skip() -> Option<Slurm> {
    match Slurm::start() {
        Ok(slurm) => Some(slurm),
        Err(Unavailable(reason)) => {
            eprintln!("skipped: {reason}");
            None
        }
    }
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                found.push(path.strip_prefix(root).expect("under the root").to_path_buf());
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found.sort();
    found
}

#[test]
#[ignore = "opt-in (root; starts a Slurm cluster of its own, about 10 s): cargo test --release --test system -- --ignored slurm --test-threads 1"]
fn slurm_runs_a_job_array_on_localhost() {
    let _lock = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // The harness itself: a job array submitted to our cluster runs each
    // of its tasks once, on our node, in the directory asked for, with
    // its own task number; a task that fails is reported failed, by Slurm
    // and by its own exit status, while the others still succeed; and
    // stopping the cluster leaves none of its processes or files behind.
    let Some(mut slurm) = start_or_skip() else { return };
    let work = slurm.scratch();
    let script = "echo \"$SLURM_ARRAY_TASK_ID $SLURMD_NODENAME $(pwd)\" > \"id-$SLURM_ARRAY_TASK_ID\"\n";
    let done = slurm.run_array(3, &work, script, Duration::from_secs(120));
    assert_eq!(done.iter().map(|t| t.index).collect::<Vec<_>>(), [1, 2, 3]);
    for i in 1..=3 {
        let file = work.join(format!("id-{i}"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(text.trim(), format!("{i} {} {}", slurm.node(), work.display()), "task {i}'s file");
    }
    assert_eq!(files_under(&work), ["id-1", "id-2", "id-3"].map(PathBuf::from), "each task ran once");

    let failing = slurm.submit_array(
        3,
        &work,
        "echo \"task $SLURM_ARRAY_TASK_ID\"\n[ \"$SLURM_ARRAY_TASK_ID\" != 2 ] || exit 3\n",
    );
    let done = slurm.wait(&failing, Duration::from_secs(120));
    let seen: Vec<_> = done.iter().map(|t| (t.index, t.state.as_str(), t.exit_code.as_str(), t.status)).collect();
    assert_eq!(
        seen,
        [(1, "COMPLETED", "0:0", Some(0)), (2, "FAILED", "3:0", Some(3)), (3, "COMPLETED", "0:0", Some(0))],
        "a failing task is told from the others"
    );
    assert_eq!(done[1].output.trim(), "task 2");

    let (dir, daemons) = (slurm.dir().to_path_buf(), slurm.daemons());
    drop(slurm);
    for (name, pid) in daemons {
        assert!(!pids_named(name).contains(&pid), "{name} (pid {pid}) still runs after the cluster stopped");
    }
    assert!(!dir.exists(), "{} is left after the cluster stopped", dir.display());
    assert!(!undo_file().exists(), "{} is left after the cluster stopped", undo_file().display());
}

#[test]
#[ignore = "opt-in (root; starts a Slurm cluster of its own, about a minute): cargo test --release --test system -- --ignored slurm --test-threads 1"]
fn sharded_fleet_on_slurm_merges_to_the_unsharded_run() {
    let _lock = crate::LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // Sharded fleet planning on a real scheduler: scenarios/fleet.yaml
    // planned under three placements in one run, and the same plan split
    // into 3 shards run as the tasks of a Slurm job array (each its own
    // process, started by slurmd, two at a time on this node's cores) and
    // joined by `overcommit merge`, give the same files, byte for byte,
    // and no file more or less.
    const SHARDS: u32 = 3;
    const PLACEMENTS: &str = "first-fit,spread,sharing";
    let exe = env!("CARGO_BIN_EXE_overcommit");
    let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join("fleet.yaml");
    let help = run(Command::new(exe).args(["fleet", "--help"]), CLIENT_LIMIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(help.contains("--shard"), "`overcommit fleet` has no --shard option:\n{help}");
    let Some(mut slurm) = start_or_skip() else { return };
    let tmp = slurm.scratch();
    let out = |name: &str| tmp.join(name).to_string_lossy().into_owned();

    let script = format!(
        "exec {exe} fleet {fleet} --placements {PLACEMENTS} --shard \"$SLURM_ARRAY_TASK_ID/{SHARDS}\" --out {out}/shard-\"$SLURM_ARRAY_TASK_ID\"\n",
        exe = sh_quote(exe),
        fleet = sh_quote(&fleet.to_string_lossy()),
        out = sh_quote(&tmp.to_string_lossy()),
    );
    let t = Instant::now();
    slurm.run_array(SHARDS, &tmp, &script, RUN_LIMIT);
    eprintln!("{SHARDS} shards on Slurm in {:.1?}", t.elapsed());

    let t = Instant::now();
    let mut merge = Command::new(exe);
    merge.arg("merge").args((1..=SHARDS).map(|i| out(&format!("shard-{i}")))).args(["--out", &out("merged")]);
    run(&mut merge, RUN_LIMIT).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("merged in {:.1?}", t.elapsed());

    let t = Instant::now();
    let mut whole = Command::new(exe);
    whole.arg("fleet").arg(&fleet).args(["--placements", PLACEMENTS, "--out", &out("whole")]);
    run(&mut whole, RUN_LIMIT).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("unsharded in {:.1?}", t.elapsed());

    let (whole, merged) = (tmp.join("whole"), tmp.join("merged"));
    let files = files_under(&whole);
    assert!(!files.is_empty(), "the unsharded run wrote nothing to {}", whole.display());
    assert_eq!(files_under(&merged), files, "the merged shards' files against the unsharded run's");
    for file in &files {
        let (a, b) = (std::fs::read(whole.join(file)).expect("read"), std::fs::read(merged.join(file)).expect("read"));
        if a != b {
            let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
            let line = a[..at].iter().filter(|&&c| c == b'\n').count() + 1;
            let show = |bytes: &[u8]| {
                String::from_utf8_lossy(&bytes[at.saturating_sub(80)..(at + 80).min(bytes.len())]).into_owned()
            };
            panic!(
                "{} differs: {} bytes unsharded, {} merged, first at byte {at} (line {line}):\nunsharded: {:?}\nmerged:    {:?}",
                file.display(),
                a.len(),
                b.len(),
                show(&a),
                show(&b)
            );
        }
    }
    eprintln!("{} files identical: {files:?}", files.len());
}
