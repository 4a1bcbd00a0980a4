//! Board URIs: `sim:`, `unix:PATH`, `tcp:HOST:PORT`, `xdma:/dev/xdma0`, `usb:VID:PID`,
//! `kria:[UIO[,BUFFER]]`.

use std::path::PathBuf;

use crate::error::{HostError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardUri {
    /// The Verilator model of the top, in this process.
    Sim,
    /// `tern serve` on a Unix socket.
    Unix(PathBuf),
    /// `tern serve` over TCP.
    Tcp(String),
    /// An XDMA card: the prefix of its character devices (`/dev/xdma0` gives
    /// `/dev/xdma0_user`, `/dev/xdma0_h2c_0`, ...).
    Xdma(PathBuf),
    /// A USB board by vendor and product id.
    Usb { vid: u16, pid: u16 },
    /// The Kria board this program runs on: the accelerator's UIO device and its
    /// u-dma-buf buffer, by name (`kria:` alone: `tern_accelerator`, `tern_memory`).
    Kria { uio: String, buffer: String },
}

impl BoardUri {
    pub fn parse(s: &str) -> Result<BoardUri> {
        let bad = |reason: String| HostError::BadUri {
            uri: s.to_string(),
            reason,
        };
        let (scheme, rest) = s.split_once(':').ok_or_else(|| {
            bad(
                "no scheme; expected sim:, unix:PATH, tcp:HOST:PORT, xdma:PREFIX, usb:VID:PID \
                 or kria:[UIO[,BUFFER]]"
                    .into(),
            )
        })?;
        match scheme {
            "sim" if rest.is_empty() => Ok(BoardUri::Sim),
            "sim" => Err(bad("sim: takes nothing after the colon".into())),
            "unix" if rest.is_empty() => Err(bad("unix: needs a socket path".into())),
            "unix" => Ok(BoardUri::Unix(PathBuf::from(rest))),
            "tcp" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| bad("tcp: needs HOST:PORT".into()))?;
                if host.is_empty() {
                    return Err(bad("tcp: the host is empty".into()));
                }
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(format!("tcp: port `{port}` is not 1..=65535")))?;
                Ok(BoardUri::Tcp(rest.to_string()))
            }
            "xdma" if rest.is_empty() => {
                Err(bad("xdma: needs a device prefix such as /dev/xdma0".into()))
            }
            "xdma" => Ok(BoardUri::Xdma(PathBuf::from(rest))),
            "usb" => {
                let (v, p) = rest
                    .split_once(':')
                    .ok_or_else(|| bad("usb: needs VID:PID in hex".into()))?;
                let hex = |x: &str, what: &str| {
                    let x = x.trim_start_matches("0x");
                    if x.is_empty() || x.len() > 4 {
                        return Err(bad(format!("usb: {what} `{x}` is not 1 to 4 hex digits")));
                    }
                    u16::from_str_radix(x, 16)
                        .map_err(|_| bad(format!("usb: {what} `{x}` is not hex")))
                };
                Ok(BoardUri::Usb {
                    vid: hex(v, "vendor id")?,
                    pid: hex(p, "product id")?,
                })
            }
            "kria" => {
                let (uio, buffer) = rest.split_once(',').unwrap_or((rest, ""));
                let name = |x: &str, default: &str, what: &str| {
                    let x = if x.is_empty() { default } else { x };
                    if x.contains('/') || x.contains(',') || x.starts_with('.') {
                        return Err(bad(format!(
                            "kria: {what} `{x}` must be a device name, not a path"
                        )));
                    }
                    Ok(x.to_string())
                };
                Ok(BoardUri::Kria {
                    uio: name(uio, crate::kria::DEFAULT_UIO, "UIO device")?,
                    buffer: name(buffer, crate::kria::DEFAULT_BUFFER, "buffer")?,
                })
            }
            other => Err(bad(format!(
                "unknown scheme `{other}`; expected sim, unix, tcp, xdma, usb or kria"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_uris_parse() {
        assert_eq!(BoardUri::parse("sim:").unwrap(), BoardUri::Sim);
        assert_eq!(
            BoardUri::parse("unix:/tmp/b.sock").unwrap(),
            BoardUri::Unix("/tmp/b.sock".into())
        );
        assert_eq!(
            BoardUri::parse("tcp:127.0.0.1:7000").unwrap(),
            BoardUri::Tcp("127.0.0.1:7000".into())
        );
        assert_eq!(
            BoardUri::parse("xdma:/dev/xdma0").unwrap(),
            BoardUri::Xdma("/dev/xdma0".into())
        );
        assert_eq!(
            BoardUri::parse("usb:0403:601f").unwrap(),
            BoardUri::Usb {
                vid: 0x0403,
                pid: 0x601f
            }
        );
        let kria = |uio: &str, buffer: &str| BoardUri::Kria {
            uio: uio.into(),
            buffer: buffer.into(),
        };
        assert_eq!(
            BoardUri::parse("kria:").unwrap(),
            kria("tern_accelerator", "tern_memory")
        );
        assert_eq!(
            BoardUri::parse("kria:uio4").unwrap(),
            kria("uio4", "tern_memory")
        );
        assert_eq!(
            BoardUri::parse("kria:,udmabuf0").unwrap(),
            kria("tern_accelerator", "udmabuf0")
        );
        assert_eq!(BoardUri::parse("kria:acc,buf").unwrap(), kria("acc", "buf"));
    }

    #[test]
    fn bad_uris_say_what_is_wrong() {
        for (uri, says) in [
            ("", "no scheme"),
            ("board", "no scheme"),
            ("sim:x", "takes nothing"),
            ("unix:", "socket path"),
            ("tcp:localhost", "HOST:PORT"),
            ("tcp::80", "host is empty"),
            ("tcp:h:99999", "not 1..=65535"),
            ("tcp:h:0", "not 1..=65535"),
            ("xdma:", "prefix"),
            ("usb:0403", "VID:PID"),
            ("usb:zz:1", "not hex"),
            ("usb:12345:1", "1 to 4 hex"),
            ("kria:/dev/uio0", "not a path"),
            ("kria:uio0,/dev/udmabuf0", "not a path"),
            ("kria:uio0,a,b", "not a path"),
            ("pcie:0", "unknown scheme `pcie`"),
        ] {
            let err = BoardUri::parse(uri).unwrap_err().to_string();
            assert!(err.contains(says), "{uri}: {err}");
            assert!(err.contains(&format!("`{uri}`")), "{uri}: {err}");
        }
    }
}
