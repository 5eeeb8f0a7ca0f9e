//! From the YAML tree to a [`Scenario`]: every key checked against the
//! schema (with "did you mean"), every unit parsed, every default filled in,
//! and every error kept with its position and field path.

mod guests;
mod host;
mod scalars;
mod sweep;

use super::schema::*;
use crate::input::node::Node;
pub use crate::input::reader::{Decoder, Fields, Positions, join};
use crate::units::Span;
use scalars::{int, span, text};

pub use scalars::parse_pattern;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "warmup",
    "sample_every",
    "host",
    "guests",
    "calibration",
    "sweep",
    "variants",
];

impl Decoder<'_> {
    pub fn scenario(&mut self, root: &Node, default_name: &str) -> Option<Scenario> {
        let f = self.map(root, "", TOP_KEYS)?;
        let name = self.field(&f, "name", text).unwrap_or_else(|| default_name.to_string());
        let description = self.field(&f, "description", text).unwrap_or_default();
        let seed = self.field(&f, "seed", |n| int::<u64>(n, "a seed (0 or more)")).unwrap_or(1);
        let duration = self.field(&f, "duration", span).unwrap_or(Span::from_secs(60));
        let sample_every = self.field(&f, "sample_every", span).unwrap_or(Span::from_secs(1));
        let warmup = self.field(&f, "warmup", span).unwrap_or(Span(0));
        if warmup >= duration
            && let Some(n) = f.get("warmup")
        {
            self.error(
                n.pos,
                "warmup",
                format!("{} is not shorter than the run's duration {}: nothing would be measured", warmup, duration),
            );
        }
        let calibration = self.field(&f, "calibration", text);
        for section in ["host", "guests"] {
            if let Some(n) = f.get(section) {
                self.positions.insert(section.to_string(), n.pos);
            }
        }
        let host = match f.get("host") {
            Some(h) => self.host(h, "host"),
            None => {
                self.error(root.pos, "host", "missing `host:` section (at least `host: { ram: 64G }`)");
                None
            }
        };
        // Guests without a stated huge page size take the host's default.
        let default_huge = host.as_ref().map_or(HugePageSize::Size2M, |h| h.hugepages.size);
        let guests = match f.get("guests") {
            Some(g) => self.guests(g, default_huge),
            None => Some(Vec::new()),
        };
        let sweep = match f.get("sweep") {
            Some(n) => Some(self.sweep(n)?),
            None => None,
        };
        let variants = match f.get("variants") {
            Some(n) => self.variants(n)?,
            None => Vec::new(),
        };
        let (host, guests) = (host?, guests?);
        Some(Scenario {
            name,
            description,
            seed,
            duration,
            warmup,
            sample_every,
            host,
            guests,
            calibration,
            sweep,
            variants,
        })
    }
}
