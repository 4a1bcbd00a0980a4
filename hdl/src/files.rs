//! Reading the text files users hand to tern (configs, design spaces, workloads)
//! without trusting their size: a file beyond `MAX_TEXT_FILE` is refused after reading
//! only that much, so a device such as /dev/zero cannot run the reader out of memory.

use std::io::{self, Read};
use std::path::Path;

/// Far beyond any config, space or workload TOML.
pub const MAX_TEXT_FILE: u64 = 4 << 20;

pub fn read_text(path: &Path) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_TEXT_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEXT_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB: not a file tern reads as text",
                MAX_TEXT_FILE >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_after_the_limit() {
        let e = read_text(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("MiB"), "{e}");
    }
}
