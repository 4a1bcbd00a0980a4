//! A Kria (Zynq UltraScale+) board driven by its own ARM cores (`kria:`): the one top in
//! the programmable logic, its registers and interrupt through UIO, its memory a
//! physically contiguous u-dma-buf buffer in the PS DDR (docs/kria.md).
//!
//! - **Registers**: the UIO device of the accelerator's AXI4-Lite window (`generic-uio`
//!   in the device tree), found by its name in `/sys/class/uio/uio*/name`; map 0 is
//!   `mmap`ed from `/dev/uioN` and read and written with 32-bit volatile accesses.
//! - **Interrupt**: a 4-byte write of 1 to `/dev/uioN` enables the line (the kernel's
//!   `uio_pdrv_genirq` masks it each time it fires), `poll` waits for it with the
//!   timeout, a 4-byte read takes the event.
//! - **Memory**: `/dev/NAME` of a u-dma-buf buffer, opened with `O_SYNC` and moved with
//!   `pread`/`pwrite`: the driver copies through its own mapping and syncs the caches
//!   around each copy, so the ARM's caches never hold stale lines of what the fabric
//!   reads or wrote. Its bus address is `/sys/class/u-dma-buf/NAME/phys_addr`; the
//!   one-top driver gives it to the accelerator as `MEMORY_BASE`
//!   ([`Transport::memory_base`]).
//!
//! Everything here but the few lines of [`MappedRegisters`]' volatile access is tested
//! against a stand-in with the same files (flows/tests/accelerator.rs); those lines are
//! tested on a plain file, which has none of a register's side effects.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use tern_hdl::accelerator::shell::{DESIGN_ID, HW_ID};
use tern_hdl::top::regmap;

use crate::error::{HostError, Result};
use crate::transport::{check_dma, check_register, wait_readable, Info, Transport};

/// The UIO device's name when `kria:` names none: the device-tree node's name in
/// docs/kria.md's overlay.
pub const DEFAULT_UIO: &str = "tern_accelerator";
/// The u-dma-buf buffer's name when `kria:` names none.
pub const DEFAULT_BUFFER: &str = "tern_memory";
/// The accelerator's bursts must not cross 4 KiB on the bus, so its memory starts on one.
const BUS_PAGE: u64 = 4096;

/// What `kria:` found in sysfs: the devices to open and what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KriaDevices {
    /// `/dev/uioN`.
    pub uio: PathBuf,
    /// The bytes of the UIO device's map 0 (the register window).
    pub map_bytes: u64,
    /// `/dev/NAME` of the buffer.
    pub buffer: PathBuf,
    /// The buffer's address on the bus, where the accelerator's memory starts.
    pub phys_addr: u64,
    pub buffer_bytes: u64,
}

impl KriaDevices {
    /// Look up the UIO device called `uio` (its sysfs name, or `uioN` itself) and the
    /// u-dma-buf buffer called `buffer` in the sysfs and `/dev` under `root` (`/` on a
    /// board).
    pub fn find(root: &Path, uio: &str, buffer: &str) -> Result<KriaDevices> {
        let class = root.join("sys/class/uio");
        let node = if is_uio_node(uio) {
            uio.to_string()
        } else {
            uio_named(&class, uio)?
        };
        let sys = class.join(&node);
        if !sys.exists() {
            return Err(HostError::BoardSetup(format!(
                "{} does not exist: no UIO device {node} (is the overlay loaded? docs/kria.md)",
                sys.display()
            )));
        }
        let map_bytes = sysfs_number(&sys.join("maps/map0/size"))?;
        if map_bytes < u64::from(regmap::WINDOW_BYTES) {
            return Err(HostError::BoardSetup(format!(
                "{}: map 0 of {node} is {map_bytes} bytes, smaller than the accelerator's \
                 {}-byte register window (does the device tree's `reg` cover it?)",
                sys.join("maps/map0/size").display(),
                regmap::WINDOW_BYTES
            )));
        }
        let buf_sys = root.join("sys/class/u-dma-buf").join(buffer);
        if !buf_sys.exists() {
            return Err(HostError::BoardSetup(format!(
                "{} does not exist: no u-dma-buf buffer `{buffer}` (load u-dma-buf and create \
                 it, docs/kria.md)",
                buf_sys.display()
            )));
        }
        let phys_addr = sysfs_number(&buf_sys.join("phys_addr"))?;
        let buffer_bytes = sysfs_number(&buf_sys.join("size"))?;
        if !phys_addr.is_multiple_of(BUS_PAGE) {
            return Err(HostError::BoardSetup(format!(
                "{}: the buffer starts at 0x{phys_addr:x}, not on a 4 KiB boundary; the \
                 accelerator's bursts would cross one",
                buf_sys.join("phys_addr").display()
            )));
        }
        if buffer_bytes == 0 {
            return Err(HostError::BoardSetup(format!(
                "{}: the buffer is empty",
                buf_sys.join("size").display()
            )));
        }
        Ok(KriaDevices {
            uio: root.join("dev").join(&node),
            map_bytes,
            buffer: root.join("dev").join(buffer),
            phys_addr,
            buffer_bytes,
        })
    }
}

fn is_uio_node(name: &str) -> bool {
    name.strip_prefix("uio")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The `uioN` whose `name` is `wanted`; exactly one must be.
fn uio_named(class: &Path, wanted: &str) -> Result<String> {
    let entries = std::fs::read_dir(class).map_err(|cause| HostError::Io {
        context: format!(
            "listing {} (no UIO devices: is the overlay loaded? docs/kria.md)",
            class.display()
        ),
        cause,
    })?;
    let mut found = vec![];
    let mut seen = vec![];
    for entry in entries.flatten() {
        let node = entry.file_name().to_string_lossy().into_owned();
        let Ok(name) = std::fs::read_to_string(entry.path().join("name")) else {
            continue;
        };
        let name = name.trim().to_string();
        if name == wanted {
            found.push(node.clone());
        }
        seen.push(format!("{node} ({name})"));
    }
    seen.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(HostError::BoardSetup(format!(
            "no UIO device named `{wanted}` in {} (found: {}); is the overlay loaded? \
             docs/kria.md",
            class.display(),
            if seen.is_empty() {
                "none".into()
            } else {
                seen.join(", ")
            }
        ))),
        many => Err(HostError::BoardSetup(format!(
            "{} UIO devices are named `{wanted}` in {} ({}); name one as uioN",
            many.len(),
            class.display(),
            many.join(", ")
        ))),
    }
}

/// A sysfs number: `0x` hex (`%pa`, `%pad`) or decimal (`%zu`), one line.
fn sysfs_number(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).map_err(|cause| HostError::Io {
        context: format!("reading {}", path.display()),
        cause,
    })?;
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| {
        HostError::BoardSetup(format!(
            "{}: `{}` is not a number",
            path.display(),
            t.escape_debug()
        ))
    })
}

/// The accelerator's register window, 32 bits at a byte offset.
pub trait RegisterWindow {
    fn read32(&mut self, offset: u32) -> u32;
    fn write32(&mut self, offset: u32, value: u32);
}

/// Map 0 of a UIO device, `mmap`ed: every access is one volatile 32-bit load or store,
/// as the AXI4-Lite slave behind it needs (a register read can clear what it reads).
pub struct MappedRegisters {
    base: NonNull<u32>,
    bytes: usize,
    _file: File,
}

impl MappedRegisters {
    /// Map the first `bytes` of `path` (a UIO device: map N is at offset N pages).
    pub fn map(path: &Path, bytes: u64) -> Result<MappedRegisters> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|cause| HostError::Io {
                context: format!("opening {} for its registers", path.display()),
                cause,
            })?;
        let bytes = usize::try_from(bytes)
            .ok()
            .filter(|&b| b > 0 && b <= 1 << 30)
            .ok_or_else(|| {
                HostError::BoardSetup(format!(
                    "{}: a register window of {bytes} bytes is not 1 B..1 GiB",
                    path.display()
                ))
            })?;
        // SAFETY: a fresh shared mapping of an open file; the kernel picks the address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(HostError::Io {
                context: format!("mapping {} bytes of {}", bytes, path.display()),
                cause: std::io::Error::last_os_error(),
            });
        }
        Ok(MappedRegisters {
            base: NonNull::new(p.cast()).expect("mmap returned a null mapping"),
            bytes,
            _file: file,
        })
    }

    fn word(&self, offset: u32) -> *mut u32 {
        let at = offset as usize;
        assert!(
            at.is_multiple_of(4) && at + 4 <= self.bytes,
            "register 0x{offset:x} is outside the {}-byte map",
            self.bytes
        );
        // In bounds and aligned: the mapping is page aligned and `at` a multiple of 4.
        self.base.as_ptr().wrapping_add(at / 4)
    }
}

impl RegisterWindow for MappedRegisters {
    fn read32(&mut self, offset: u32) -> u32 {
        // SAFETY: `word` checked the offset against the live mapping.
        unsafe { self.word(offset).read_volatile() }
    }

    fn write32(&mut self, offset: u32, value: u32) {
        // SAFETY: as for `read32`.
        unsafe { self.word(offset).write_volatile(value) }
    }
}

impl Drop for MappedRegisters {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.bytes);
        }
    }
}

/// The transport of `kria:`: registers through `R` (the UIO map on a board), the
/// interrupt and the memory through the device files.
pub struct KriaTransport<R: RegisterWindow = MappedRegisters> {
    devices: KriaDevices,
    registers: R,
    uio: File,
    buffer: File,
}

impl KriaTransport<MappedRegisters> {
    /// Open the board's accelerator `uio` and its buffer `buffer` (names as in
    /// [`KriaDevices::find`]), its registers mapped from the UIO device.
    pub fn open(uio: &str, buffer: &str) -> Result<KriaTransport> {
        let devices = KriaDevices::find(Path::new("/"), uio, buffer)?;
        let registers = MappedRegisters::map(&devices.uio, devices.map_bytes)?;
        KriaTransport::with_registers(devices, registers)
    }
}

impl<R: RegisterWindow> KriaTransport<R> {
    /// The transport over `devices` with the register window `registers`.
    pub fn with_registers(devices: KriaDevices, registers: R) -> Result<KriaTransport<R>> {
        let open = |path: &Path, what: &str, flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(path)
                .map_err(|cause| HostError::Io {
                    context: format!("opening {} ({what})", path.display()),
                    cause,
                })
        };
        Ok(KriaTransport {
            uio: open(&devices.uio, "the accelerator's interrupt", 0)?,
            buffer: open(&devices.buffer, "the accelerator's memory", libc::O_SYNC)?,
            devices,
            registers,
        })
    }

    pub fn devices(&self) -> &KriaDevices {
        &self.devices
    }
}

impl<R: RegisterWindow> Transport for KriaTransport<R> {
    /// A Kria board carries the one top: its shell's identity registers.
    fn info(&mut self) -> Result<Info> {
        let hw_id = self.read32(HW_ID.into())?;
        let design_id = self.read32(DESIGN_ID.into())?;
        let d = &self.devices;
        Ok(Info {
            description: format!(
                "kria: registers {}, memory {} at 0x{:x}",
                d.uio.display(),
                d.buffer.display(),
                d.phys_addr
            ),
            hw_id,
            design_id,
            card_bytes: d.buffer_bytes,
            memory_base: d.phys_addr,
        })
    }

    fn read32(&mut self, offset: u64) -> Result<u32> {
        Ok(self.registers.read32(check_register(offset)?))
    }

    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        self.registers.write32(check_register(offset)?, value);
        Ok(())
    }

    fn dma_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()> {
        check_dma(
            "DMA write",
            card_addr,
            data.len(),
            self.devices.buffer_bytes,
        )?;
        let what = format!(
            "writing {} bytes at 0x{card_addr:x} of {}",
            data.len(),
            self.devices.buffer.display()
        );
        self.buffer
            .write_all_at(data, card_addr)
            .map_err(crate::error::io(what))
    }

    fn dma_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()> {
        check_dma("DMA read", card_addr, out.len(), self.devices.buffer_bytes)?;
        let what = format!(
            "reading {} bytes at 0x{card_addr:x} of {}",
            out.len(),
            self.devices.buffer.display()
        );
        self.buffer
            .read_exact_at(out, card_addr)
            .map_err(crate::error::io(what))
    }

    fn wait_irq(&mut self, mask: u32, timeout: Duration) -> Result<u32> {
        let deadline = Instant::now() + timeout;
        let uio = self.devices.uio.display().to_string();
        let timed_out = || HostError::Timeout {
            what: format!("interrupt on {uio}"),
            timeout,
        };
        if mask & 1 == 0 {
            std::thread::sleep(timeout);
            return Err(timed_out());
        }
        // Unmask the line: the kernel masked it when it last fired, and the level the
        // shell holds until ISR is acknowledged fires again only once unmasked.
        (&self.uio)
            .write_all(&1i32.to_ne_bytes())
            .map_err(crate::error::io(format!("enabling the interrupt of {uio}")))?;
        if !wait_readable(&self.uio, deadline, &uio)? {
            return Err(timed_out());
        }
        // The event count; UIO reads exactly 4 bytes.
        let mut count = [0u8; 4];
        (&self.uio)
            .read_exact(&mut count)
            .map_err(crate::error::io(format!("reading the interrupt of {uio}")))?;
        Ok(1)
    }

    fn reset(&mut self) -> Result<()> {
        Err(HostError::Unsupported(
            "UIO gives no reset of the programmable logic; reload the overlay (`xmutil \
             unloadapp`, `xmutil loadapp`) and reopen"
                .into(),
        ))
    }

    fn memory_base(&self) -> u64 {
        self.devices.phys_addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sysfs tree as the kernel writes it: `uio0` a serial port, `uio1` the accelerator.
    fn sysfs(phys: &str, size: &str, map: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let put = |rel: &str, text: &str| {
            let p = root.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        put("sys/class/uio/uio0/name", "axi_uart\n");
        put("sys/class/uio/uio0/maps/map0/size", "0x0000000000001000\n");
        put("sys/class/uio/uio1/name", "tern_accelerator\n");
        put("sys/class/uio/uio1/maps/map0/size", map);
        put("sys/class/u-dma-buf/tern_memory/phys_addr", phys);
        put("sys/class/u-dma-buf/tern_memory/size", size);
        root
    }

    #[test]
    fn the_devices_are_found_by_name_in_sysfs() {
        let root = sysfs(
            "0x0000000060000000\n",
            "268435456\n",
            "0x0000000000010000\n",
        );
        let d = KriaDevices::find(root.path(), DEFAULT_UIO, DEFAULT_BUFFER).unwrap();
        assert_eq!(d.uio, root.path().join("dev/uio1"));
        assert_eq!(d.buffer, root.path().join("dev/tern_memory"));
        assert_eq!(
            (d.map_bytes, d.phys_addr, d.buffer_bytes),
            (0x10000, 0x6000_0000, 256 << 20)
        );
        // A node named directly.
        let d = KriaDevices::find(root.path(), "uio1", DEFAULT_BUFFER).unwrap();
        assert_eq!(d.uio, root.path().join("dev/uio1"));
    }

    #[test]
    fn what_is_missing_or_wrong_in_sysfs_is_named() {
        let good = ("0x60000000", "4096", "0x10000");
        for ((phys, size, map), uio, says) in [
            (good, "nothing", "no UIO device named `nothing`"),
            (good, "uio7", "no UIO device uio7"),
            (("0x60000000", "4096", "0x20"), DEFAULT_UIO, "smaller than"),
            (("0x60000010", "4096", "0x10000"), DEFAULT_UIO, "4 KiB"),
            (
                ("zz", "4096", "0x10000"),
                DEFAULT_UIO,
                "`zz` is not a number",
            ),
            (("0x60000000", "0", "0x10000"), DEFAULT_UIO, "empty"),
        ] {
            let root = sysfs(phys, size, map);
            let err = KriaDevices::find(root.path(), uio, DEFAULT_BUFFER)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{uio} {phys} {size} {map}: {err}");
        }
        let root = sysfs(good.0, good.1, good.2);
        let err = KriaDevices::find(root.path(), DEFAULT_UIO, "udmabuf9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no u-dma-buf buffer `udmabuf9`"), "{err}");
        let err = KriaDevices::find(&root.path().join("absent"), DEFAULT_UIO, DEFAULT_BUFFER)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no UIO devices"), "{err}");
    }

    /// The volatile accesses land at their offsets of the mapped file, and nowhere else.
    #[test]
    fn mapped_registers_read_and_write_the_file_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map0");
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        {
            let mut r = MappedRegisters::map(&path, 4096).unwrap();
            r.write32(0x5C, 0x6000_0000);
            r.write32(0xFFC, 0xDEAD_BEEF);
            assert_eq!(r.read32(0x5C), 0x6000_0000);
            assert_eq!(r.read32(0x60), 0);
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[0x5C..0x60], &0x6000_0000u32.to_ne_bytes());
        assert_eq!(&bytes[0xFFC..], &0xDEAD_BEEFu32.to_ne_bytes());
        let elsewhere = bytes
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b != 0 && !(0x5C..0x60).contains(&i) && i < 0xFFC)
            .count();
        assert_eq!(elsewhere, 0);
        let err = MappedRegisters::map(&dir.path().join("absent"), 4096)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("absent"), "{err}");
    }
}
