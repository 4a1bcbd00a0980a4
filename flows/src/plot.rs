//! Plot helpers shared by the flows' figures.

use anyhow::{Context, Result};
use plotters::style::FontStyle;
use std::path::Path;

/// The font plotters lays text out with in PNGs. DejaVu comes with `fonts-dejavu-core`.
pub fn register_png_font() -> Result<()> {
    const CANDIDATES: [&str; 2] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let path = CANDIDATES
        .iter()
        .find(|p| Path::new(p).exists())
        .with_context(|| {
            format!(
                "no font for the PNG plot (looked for {}); install fonts-dejavu-core (scripts/setup.sh does)",
                CANDIDATES.join(", ")
            )
        })?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    // Captions, axis descriptions and labels ask for different families and styles.
    for family in ["sans-serif", "serif", "monospace"] {
        for style in [
            FontStyle::Normal,
            FontStyle::Bold,
            FontStyle::Italic,
            FontStyle::Oblique,
        ] {
            plotters::style::register_font(family, style, bytes)
                .map_err(|_| anyhow::anyhow!("{path} is not a usable font"))?;
        }
    }
    Ok(())
}

pub fn plot_error(e: &dyn std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}
