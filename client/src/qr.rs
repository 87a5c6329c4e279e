//! A QR code drawn as one SVG path, for joining from the room.

use qrcodegen::{QrCode, QrCodeEcc};

/// A QR code: its width in modules (with the quiet zone around it) and an SVG
/// path that draws every dark module as a one-by-one square.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawing {
    pub size: i32,
    pub path: String,
}

/// The four-module light border a reader needs around the code.
const QUIET_ZONE: i32 = 4;

/// Draws `text` as a QR code, or `None` if it is too long to encode.
pub fn draw(text: &str) -> Option<Drawing> {
    let code = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let mut path = String::new();
    for y in 0..code.size() {
        for x in 0..code.size() {
            if code.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + QUIET_ZONE, y + QUIET_ZONE));
            }
        }
    }
    Some(Drawing {
        size: code.size() + 2 * QUIET_ZONE,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_address_becomes_a_code_with_its_quiet_zone() {
        let drawing = draw("https://roundtable.example.org/lobby?code=ABC234").unwrap();
        // A QR code is 17 modules plus 4 per version, inside its quiet zone.
        let modules = drawing.size - 2 * QUIET_ZONE;
        assert!(modules > 21 && (modules - 17) % 4 == 0, "{modules}");
        // The top-left finder pattern starts just inside the quiet zone.
        assert!(drawing.path.starts_with("M4,4h1v1h-1z"));
    }
}
