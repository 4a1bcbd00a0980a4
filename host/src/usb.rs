//! USB boards: the framed protocol of [`crate::wire`] over a pair of bulk endpoints,
//! through `nusb`. The protocol logic above the byte pipe is the same code the socket
//! transport runs, and is tested through [`crate::pipe::memory_pipe`]; this adapter
//! itself needs a device and is only compiled here.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use nusb::transfer::{Bulk, In, Out};
use nusb::MaybeFuture;

use crate::error::{HostError, Result};
use crate::framed::FramedTransport;
use crate::pipe::BytePipe;

/// The board's USB function: interface 0 with one bulk OUT and one bulk IN endpoint.
pub const INTERFACE: u8 = 0;
pub const ENDPOINT_OUT: u8 = 0x01;
pub const ENDPOINT_IN: u8 = 0x81;
/// Bytes per bulk transfer the adapter queues.
const TRANSFER_BYTES: usize = 64 * 1024;

pub struct UsbPipe {
    tx: nusb::io::EndpointWrite<Bulk>,
    rx: nusb::io::EndpointRead<Bulk>,
}

fn left(deadline: Instant) -> std::io::Result<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err(std::io::ErrorKind::TimedOut.into())
    } else {
        Ok(d)
    }
}

impl BytePipe for UsbPipe {
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
        self.tx.set_write_timeout(left(deadline)?);
        self.tx.write_all(bytes)?;
        self.tx.flush()
    }
    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> std::io::Result<usize> {
        self.rx.set_read_timeout(left(deadline)?);
        self.rx.read(buf)
    }
}

fn usb_err(context: String) -> impl FnOnce(nusb::Error) -> HostError {
    move |e| HostError::Io {
        context,
        cause: std::io::Error::other(e.to_string()),
    }
}

/// Open the first device with this vendor and product id.
pub fn open(vid: u16, pid: u16, timeout: Duration) -> Result<FramedTransport<UsbPipe>> {
    let name = format!("usb:{vid:04x}:{pid:04x}");
    let info = nusb::list_devices()
        .wait()
        .map_err(usb_err("listing USB devices".into()))?
        .find(|d| d.vendor_id() == vid && d.product_id() == pid)
        .ok_or_else(|| HostError::Io {
            context: format!("opening {name}"),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no such USB device attached"),
        })?;
    let device = info
        .open()
        .wait()
        .map_err(usb_err(format!("opening {name}")))?;
    let interface = device
        .claim_interface(INTERFACE)
        .wait()
        .map_err(usb_err(format!("claiming interface {INTERFACE} of {name}")))?;
    let tx = interface
        .endpoint::<Bulk, Out>(ENDPOINT_OUT)
        .map_err(usb_err(format!("bulk OUT endpoint of {name}")))?
        .writer(TRANSFER_BYTES);
    let rx = interface
        .endpoint::<Bulk, In>(ENDPOINT_IN)
        .map_err(usb_err(format!("bulk IN endpoint of {name}")))?
        .reader(TRANSFER_BYTES);
    FramedTransport::connect(UsbPipe { tx, rx }, name, timeout)
}
