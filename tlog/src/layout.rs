//! Where things are in a log's folder (C2SP tlog-tiles) and how entry bundles are framed.
//!
//! `checkpoint`, `tile/<L>/<N>[.p/<W>]` (hash tiles of height 8) and `tile/entries/<N>[.p/<W>]`
//! (entry bundles: each entry as a big-endian u16 length then its bytes). `<N>` is written three
//! digits at a time, all but the last element prefixed with `x`, as `tlog_tiles` does.

use tlog_tiles::Tile;

/// Tiles hold 2^8 = 256 hashes.
pub const HEIGHT: u8 = 8;
pub const WIDTH: u64 = 1 << HEIGHT;
pub const CHECKPOINT: &str = "checkpoint";

/// `tlog_tiles` writes the sumdb form `tile/<H>/<L>/…`; C2SP drops the height.
fn c2sp(sumdb_path: String) -> String {
    let rest = sumdb_path
        .strip_prefix("tile/8/")
        .expect("tiles of height 8");
    format!("tile/{rest}")
}

/// The receipt of a counted entry: `receipt/<first two hex digits>/<commitment in hex>`, a
/// C2SP tlog-proof ([`crate::proof::TlogProof`]) its signer fetches with the commitment their
/// receipt's secret gives. The commitment is in the public entry already: the name tells
/// nothing new.
pub fn receipt_path(commitment: &crate::Commitment) -> String {
    let h = hex::encode(commitment.0);
    format!("receipt/{}/{h}", &h[..2])
}

/// The path of a hash tile.
pub fn tile_path(t: &Tile) -> String {
    c2sp(t.path())
}

/// The path of the entry bundle beside a level-0 tile.
pub fn bundle_path(t: &Tile) -> String {
    debug_assert_eq!(t.level(), 0);
    let mut d = *t;
    d.set_is_data();
    c2sp(d.path()).replacen("tile/data/", "tile/entries/", 1)
}

/// The tile of level `level`, index `n` and `width` hashes (1..=256).
pub fn tile(level: u8, n: u64, width: u64) -> Tile {
    Tile::new(
        HEIGHT,
        level,
        n,
        u32::try_from(width).expect("width <= 256"),
        false,
    )
}

/// Every tile (all levels) of a tree of `size` entries, the rightmost ones partial.
pub fn tiles_of(size: u64) -> Vec<Tile> {
    Tile::new_tiles(HEIGHT, 0, size)
}

/// Width of the tile `(level, n)` in a tree of `size` entries (0 if the tree has none of it).
pub fn width_in(level: u8, n: u64, size: u64) -> u64 {
    let hashes = size >> (u32::from(HEIGHT) * u32::from(level));
    hashes.saturating_sub(n * WIDTH).min(WIDTH)
}

/// Frames entries into a bundle.
pub fn encode_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut b = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).expect("entries are short");
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(e);
    }
    b
}

/// The entries of a bundle; an error if it is cut short or has trailing bytes.
pub fn decode_bundle(mut b: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 2 {
            return Err("a bundle ends inside a length".into());
        }
        let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
        if b.len() < 2 + len {
            return Err(format!("a bundle ends inside entry {}", out.len()));
        }
        out.push(&b[2..2 + len]);
        b = &b[2 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp() {
        assert_eq!(tile_path(&tile(0, 0, 256)), "tile/0/000");
        assert_eq!(tile_path(&tile(1, 1234067, 5)), "tile/1/x001/x234/067.p/5");
        assert_eq!(bundle_path(&tile(0, 1000, 256)), "tile/entries/x001/000");
        assert_eq!(bundle_path(&tile(0, 2, 17)), "tile/entries/002.p/17");
    }

    #[test]
    fn widths_at_the_right_edge() {
        assert_eq!(width_in(0, 0, 257), 256);
        assert_eq!(width_in(0, 1, 257), 1);
        assert_eq!(width_in(1, 0, 257), 1);
        assert_eq!(width_in(1, 0, 255), 0);
        assert_eq!(width_in(0, 2, 257), 0);
    }

    #[test]
    fn bundles_round_trip_and_refuse_truncation() {
        let b = encode_bundle([&b"ab"[..], &b""[..], &b"xyz"[..]]);
        assert_eq!(decode_bundle(&b).unwrap(), vec![&b"ab"[..], b"", b"xyz"]);
        assert!(decode_bundle(&b[..b.len() - 1]).is_err());
        assert!(decode_bundle(&[0]).is_err());
    }
}
