//! The guest kit: what a real test guest boots from. A Debian kernel (the
//! one `linux-image-amd64` currently depends on, fetched with `apt-get
//! download` and unpacked with `dpkg -x`) and an initramfs holding
//! busybox-static, an `/init` script, the virtio modules that kernel builds
//! as modules (PCI transport and balloon) and the two known workloads,
//! `memtouch` (`guest/memtouch.c`) and `memwork` (`guest/memwork.c`), both
//! compiled here with `gcc -static`; `/init` runs memwork when the kernel
//! command line has `memwork.*` keys, memtouch otherwise.
//!
//! Built once and kept under the target directory (`guest-kit/`): the
//! kernel per package version, the initramfs per hash of everything that
//! goes into it, so a changed memtouch.c, memwork.c, init script, busybox
//! or kernel gives a new one and the old is removed. [`host_memwork`]
//! builds memwork for the host too, kept there per hash of its source.

use crate::command::{run, which};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Why real guests cannot run on this machine; the test prints it and skips.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// A kernel and an initramfs ready for direct kernel boot.
#[derive(Debug, Clone)]
pub struct GuestKit {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The Debian package the kernel came from, with its version.
    pub kernel_package: String,
    /// `uname -r` inside the guest.
    pub kernel_release: String,
    /// Whether this call built any of it (false: all of it was cached).
    pub built: bool,
}

const MEMTOUCH_C: &str = include_str!("guest/memtouch.c");
const MEMWORK_C: &str = include_str!("guest/memwork.c");

/// Modules the guest loads, with what they depend on added (in load
/// order) from each module's own `depends=`: Debian builds the PCI
/// transport of virtio and the balloon driver as modules. The serial
/// console needs none (the 8250 UART is built in).
const MODULES: &[&str] = &["virtio_pci", "virtio_balloon"];

/// The guest's `/init`. It reports which driver took each virtio device,
/// so a console log shows the balloon driver bound (`driver=virtio_balloon`).
const INIT: &str = r#"#!/bin/sh
# /init of the system tests' guests: mount what the kernel offers, load the
# virtio modules, show which driver took each virtio device, run the
# workload: memwork when the kernel command line has memwork.* keys (it
# reads them there), memtouch otherwise.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load-order); do
  insmod /lib/modules/$m.ko || echo "init: insmod $m failed"
done
for d in /sys/bus/virtio/devices/*; do
  [ -e "$d" ] || continue
  echo "init: $(basename $d) device=$(cat $d/device) driver=$(basename $(readlink $d/driver) 2>/dev/null)"
done
case " $(cat /proc/cmdline) " in
  *" memwork."*) w=memwork ;;
  *) w=memtouch ;;
esac
/bin/$w
echo "init: $w exited with status $?"
while :; do sleep 3600; done
"#;

/// Bump when the kit's layout or build steps change in a way its inputs
/// do not show.
const KIT_FORMAT: &str = "guest-kit 1";

/// `guest-kit/` in the target directory this test binary was built in.
pub fn kit_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("guest-kit")
}

/// The kit, from the cache or built now. `Err` when this machine cannot
/// build it (not Debian, a tool missing, the kernel not downloadable).
/// A step that fails once its tools are there is a bug and panics.
pub fn build() -> Result<GuestKit, Unavailable> {
    let tool = |name: &str, package: &str| {
        which(name).ok_or_else(|| Unavailable(format!("`{name}` is not installed (Debian package {package})")))
    };
    let (apt_cache, apt_get, dpkg) = (tool("apt-cache", "apt")?, tool("apt-get", "apt")?, tool("dpkg", "dpkg")?);
    let gcc = tool("gcc", "gcc")?;
    // `gcc -static` needs the C library's archive, which gcc alone does not bring.
    let libc = run(Command::new(&gcc).arg("-print-file-name=libc.a"), Duration::from_secs(30)).unwrap_or_default();
    if !Path::new(libc.trim()).is_absolute() {
        return Err(Unavailable("no static C library for the guest programs (Debian package libc6-dev)".into()));
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .map(PathBuf::from)
        .into_iter()
        .find(|p| std::fs::read(p).is_ok_and(|b| is_static_elf(&b)))
        .ok_or_else(|| Unavailable("no static busybox (Debian package busybox-static)".into()))?;
    let dir = kit_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));

    let (package, version) = kernel_package(&apt_cache)?;
    let kernel_dir = dir.join(format!("kernel-{package}_{version}"));
    let mut built = false;
    if !kernel_dir.join("vmlinuz").exists() {
        fetch_kernel(&apt_get, &dpkg, &package, &version, &kernel_dir)?;
        built = true;
    }
    let kernel_release = read(&kernel_dir.join("release")).trim().to_string();
    let order = read(&kernel_dir.join("load-order"));

    // Everything the initramfs is made of goes into its name.
    let busybox_bytes = std::fs::read(&busybox).unwrap_or_else(|e| panic!("{}: {e}", busybox.display()));
    let mut key = Fnv::new();
    for part in [
        KIT_FORMAT.as_bytes(),
        MEMTOUCH_C.as_bytes(),
        MEMWORK_C.as_bytes(),
        INIT.as_bytes(),
        &busybox_bytes,
        kernel_dir.as_os_str().as_encoded_bytes(),
    ] {
        key.add(part);
    }
    let initramfs_dir = dir.join(format!("initramfs-{:016x}", key.0));
    let initramfs = initramfs_dir.join("initramfs.cpio");
    if !initramfs.exists() {
        let staging = tempfile::Builder::new().prefix(".staging-").tempdir_in(&dir).expect("a staging directory");
        let memtouch = compile(&gcc, staging.path(), "memtouch", MEMTOUCH_C, true);
        let memwork = compile(&gcc, staging.path(), "memwork", MEMWORK_C, true);
        let mut cpio = Cpio::default();
        for d in ["bin", "dev", "proc", "sys", "lib", "lib/modules"] {
            cpio.dir(d);
        }
        cpio.char_device("dev/console", 5, 1);
        cpio.file("bin/busybox", 0o755, &busybox_bytes);
        cpio.symlink("bin/sh", "busybox");
        cpio.file("bin/memtouch", 0o755, &std::fs::read(&memtouch).expect("memtouch built"));
        cpio.file("bin/memwork", 0o755, &std::fs::read(&memwork).expect("memwork built"));
        cpio.file("init", 0o755, INIT.as_bytes());
        cpio.file("lib/modules/load-order", 0o644, order.as_bytes());
        for m in order.split_whitespace() {
            let ko = std::fs::read(kernel_dir.join(format!("{m}.ko"))).expect("a module of the kit");
            cpio.file(&format!("lib/modules/{m}.ko"), 0o644, &ko);
        }
        std::fs::write(staging.path().join("initramfs.cpio"), cpio.finish()).expect("initramfs written");
        for f in ["memtouch.c", "memwork.c"] {
            std::fs::remove_file(staging.path().join(f)).ok();
        }
        let staging = staging.keep();
        std::fs::rename(&staging, &initramfs_dir)
            .unwrap_or_else(|e| panic!("cannot move {} into place: {e}", staging.display()));
        built = true;
    }

    // What an older kit left: other kernels and initramfs builds.
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = p == kernel_dir || p == initramfs_dir;
        if !ours && (name.starts_with("kernel-") || name.starts_with("initramfs-") || name.starts_with(".staging-")) {
            std::fs::remove_dir_all(&p).ok();
        }
    }
    Ok(GuestKit {
        kernel: kernel_dir.join("vmlinuz"),
        initramfs,
        kernel_package: format!("{package} {version}"),
        kernel_release,
        built,
    })
}

/// Compiles `source` (C) as `dir/name` with gcc, `-static` for a guest;
/// panics with gcc's errors if it does not compile.
fn compile(gcc: &Path, dir: &Path, name: &str, source: &str, static_: bool) -> PathBuf {
    let out = dir.join(name);
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap_or_else(|e| panic!("{}: {e}", c.display()));
    let mut cmd = Command::new(gcc);
    if static_ {
        cmd.arg("-static");
    }
    run(cmd.args(["-O2", "-Wall", "-o"]).arg(&out).arg(&c), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
    out
}

/// memwork built for the host (an ordinary dynamic program), from the
/// cache under [`kit_dir`] (`host-memwork-HASH/memwork`, HASH of its
/// source) or compiled now; older builds are removed. `Err` when there is
/// no gcc.
pub fn host_memwork() -> Result<PathBuf, Unavailable> {
    let gcc = which("gcc").ok_or_else(|| Unavailable("`gcc` is not installed (Debian package gcc)".into()))?;
    let dir = kit_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let mut key = Fnv::new();
    key.add(MEMWORK_C.as_bytes());
    let ours = dir.join(format!("host-memwork-{:016x}", key.0));
    let exe = ours.join("memwork");
    if !exe.exists() {
        let staging = tempfile::Builder::new().prefix(".staging-").tempdir_in(&dir).expect("a staging directory");
        compile(&gcc, staging.path(), "memwork", MEMWORK_C, false);
        std::fs::remove_file(staging.path().join("memwork.c")).ok();
        let staging = staging.keep();
        // Another test process may have put the same build in place first.
        if std::fs::rename(&staging, &ours).is_err() && !exe.exists() {
            panic!("cannot move {} to {}", staging.display(), ours.display());
        }
        std::fs::remove_dir_all(&staging).ok();
    }
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("host-memwork-") && entry.path() != ours {
            std::fs::remove_dir_all(entry.path()).ok();
        }
    }
    Ok(exe)
}

/// The package `linux-image-amd64` depends on now, and its version.
fn kernel_package(apt_cache: &Path) -> Result<(String, String), Unavailable> {
    let depends = run(Command::new(apt_cache).args(["depends", "linux-image-amd64"]), Duration::from_secs(60))
        .map_err(|e| Unavailable(format!("apt does not know linux-image-amd64: {e}")))?;
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|p| p.trim_matches(|c| c == '<' || c == '>'))
        .find(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| Unavailable(format!("linux-image-amd64 depends on no linux-image package: {depends}")))?
        .to_string();
    let show = run(Command::new(apt_cache).args(["show", "--no-all-versions", &package]), Duration::from_secs(60))
        .map_err(|e| Unavailable(format!("apt cannot show {package}: {e}")))?;
    let version = show
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .ok_or_else(|| Unavailable(format!("apt shows no version of {package}")))?
        .trim()
        .to_string();
    Ok((package, version))
}

/// Downloads and unpacks the kernel package in a staging directory, keeps
/// `vmlinuz`, the modules [`MODULES`] need (uncompressed) and their load
/// order, and moves the result to `into`.
fn fetch_kernel(apt_get: &Path, dpkg: &Path, package: &str, version: &str, into: &Path) -> Result<(), Unavailable> {
    let parent = into.parent().expect("the kit directory");
    let staging = tempfile::Builder::new().prefix(".staging-").tempdir_in(parent).expect("a staging directory");
    let work = staging.path();
    run(
        Command::new(apt_get).args(["download", &format!("{package}={version}")]).current_dir(work),
        Duration::from_secs(600),
    )
    .map_err(|e| Unavailable(format!("cannot download the guest kernel: {e}")))?;
    let deb = std::fs::read_dir(work)
        .expect("the staging directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("apt-get download leaves a .deb");
    let root = work.join("root");
    run(Command::new(dpkg).arg("-x").arg(&deb).arg(&root), Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("cannot unpack the kernel package: {e}"));
    std::fs::remove_file(&deb).ok();

    let boot = root.join("boot");
    let vmlinuz = std::fs::read_dir(&boot)
        .unwrap_or_else(|e| panic!("{}: {e}", boot.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .expect("the kernel package holds boot/vmlinuz-*");
    let release = vmlinuz.file_name().unwrap().to_string_lossy()["vmlinuz-".len()..].to_string();
    // Newer packages install under usr/lib (merged /usr).
    let modules = ["lib/modules", "usr/lib/modules"]
        .map(|m| root.join(m).join(&release))
        .into_iter()
        .find(|p| p.is_dir())
        .expect("the kernel package holds its modules");

    let out = work.join("kit");
    std::fs::create_dir(&out).expect("the kernel's kit directory");
    std::fs::copy(&vmlinuz, out.join("vmlinuz")).expect("vmlinuz copied");
    std::fs::write(out.join("release"), format!("{release}\n")).expect("release written");
    let mut files = std::collections::BTreeMap::new();
    index_modules(&modules, &mut files);
    let mut order = Vec::new();
    for m in MODULES {
        add_with_dependencies(m, &files, &mut order);
    }
    for m in &order {
        std::fs::write(out.join(format!("{m}.ko")), module_bytes(&files[m])).expect("module written");
    }
    std::fs::write(out.join("load-order"), order.join("\n") + "\n").expect("load order written");
    std::fs::rename(&out, into).unwrap_or_else(|e| panic!("cannot move the kernel to {}: {e}", into.display()));
    Ok(())
}

/// Every module file under `dir`, by module name (`-` spelt `_`, as
/// `depends=` spells them).
fn index_modules(dir: &Path, files: &mut std::collections::BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            index_modules(&p, files);
        } else if let Some(name) = p.file_name().and_then(|n| n.to_str())
            && let Some(stem) = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].iter().find_map(|ext| name.strip_suffix(ext))
        {
            files.insert(stem.replace('-', "_"), p);
        }
    }
}

/// Appends `name` after the modules it depends on, each once.
fn add_with_dependencies(name: &str, files: &std::collections::BTreeMap<String, PathBuf>, order: &mut Vec<String>) {
    if order.iter().any(|m| m == name) {
        return;
    }
    let path = files.get(name).unwrap_or_else(|| panic!("the kernel package has no module {name}"));
    let bytes = module_bytes(path);
    // The .modinfo section holds "depends=a,b" as a NUL-terminated string.
    let depends = bytes
        .split(|&b| b == 0)
        .find_map(|s| s.strip_prefix(b"depends="))
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    for d in depends.split(',').filter(|d| !d.is_empty()) {
        add_with_dependencies(d, files, order);
    }
    order.push(name.to_string());
}

/// A module's ELF bytes: compressed modules are unpacked here on the host,
/// so the guest's busybox `insmod` never has to.
fn module_bytes(path: &Path) -> Vec<u8> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else if name.ends_with(".gz") {
        "gzip"
    } else {
        return std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    };
    let tool_path = which(tool).unwrap_or_else(|| panic!("{name} is compressed and `{tool}` is not installed"));
    // The output is binary; read it through a file rather than as text.
    let out = tempfile::NamedTempFile::new().expect("a temporary file");
    let status = Command::new(tool_path)
        .args(["-dc"])
        .arg(path)
        .stdout(out.reopen().expect("the temporary file"))
        .status()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(status.success(), "{tool} -dc {name}: {status}");
    std::fs::read(out.path()).expect("the unpacked module")
}

/// Whether an ELF executable has no program interpreter (links nothing at
/// run time): the initramfs has no libc for a dynamic one.
fn is_static_elf(b: &[u8]) -> bool {
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as usize);
    let u64_at = |o: usize| b.get(o..o + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap()) as usize);
    if !b.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else { return false };
    const PT_INTERP: u32 = 3;
    (0..count).all(|i| {
        let o = phoff + i * size;
        b.get(o..o + 4).is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != PT_INTERP)
    })
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// FNV-1a, 64 bits: a stable name for the initramfs's inputs (std's hasher
/// may change between Rust releases; this only has to tell inputs apart).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, bytes: &[u8]) {
        // The length first, so ("ab", "c") and ("a", "bc") differ.
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A cpio archive in the "newc" format the kernel unpacks as its
/// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst):
/// per entry a 110-byte ASCII header of thirteen 8-digit hex fields, the
/// NUL-terminated name and the data, each padded to 4 bytes; then an entry
/// named `TRAILER!!!`. Owners are root and times zero, so the same inputs
/// give the same bytes.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    next_ino: u32,
}

impl Cpio {
    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, 2, (0, 0), b"");
    }
    fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | perm, 1, (0, 0), data);
    }
    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, 1, (0, 0), target.as_bytes());
    }
    fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, 1, (major, minor), b"");
    }
    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        self.next_ino += 1;
        let fields = [
            self.next_ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).expect("an initramfs file under 4 GiB"),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).expect("a short name"),
            0, // check (unused by newc)
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), b"");
        self.out
    }
}
