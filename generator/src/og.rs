//! Open Graph cards: the theme's `og.svg` template rendered to a 1200×630 PNG with resvg,
//! using the fonts bundled in the theme (not the system's) so the bytes are reproducible.
//! PNGs are cached by content hash in `.cahier/og-cache/` (`<key>.png` and `<key>.sha256`,
//! its hash and size), so a warm build renders none and links the cached files into the output.

use crate::images::Derivative;
use anyhow::Context;
use resvg::usvg::{self, fontdb};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Covers kept scaled for the box, so that a petition's cards (one per language, rendered one
/// after the other by the same thread mostly) decode and resample its photo once.
const COVER_MEMO: usize = 8;
type CoverMemo = lru::LruCache<(String, u32, u32), Arc<image::RgbaImage>>;

pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 630;
/// Bump when the rendering pipeline changes in a way the SVG text does not show.
const CACHE_VERSION: &[u8] = b"cahier-og-2";

/// A rendered card in the cache.
#[derive(Debug, Clone)]
pub struct Card {
    /// The PNG in the cache folder.
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    /// Rendered by this call (false: taken from the cache).
    pub rendered: bool,
}

/// `<sha256 hex> <bytes>`, the content of a cache entry's `.sha256` sidecar.
fn parse_sidecar(s: &str) -> Option<(String, u64)> {
    let (sha, n) = s.trim().split_once(' ')?;
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Some((sha.to_string(), n.parse().ok()?)))
        .flatten()
}

pub struct OgRenderer {
    fontdb: Arc<fontdb::Database>,
    family: String,
    /// Hash of the fonts, part of every cache key.
    fonts_hash: [u8; 32],
    cache_dir: PathBuf,
    /// The last covers drawn, by the derivative's SHA-256 and the box's size.
    covers: Mutex<CoverMemo>,
}

impl OgRenderer {
    /// Loads every `.ttf`/`.otf` of `<theme>/fonts/`.
    pub fn new(theme_dir: &Path, cache_dir: PathBuf) -> anyhow::Result<OgRenderer> {
        let dir = theme_dir.join("fonts");
        let mut db = fontdb::Database::new();
        let mut hasher = Sha256::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("while reading the theme's fonts in {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("ttf" | "otf")))
            .collect();
        files.sort();
        anyhow::ensure!(
            !files.is_empty(),
            "no font (.ttf/.otf) in {}: the Open Graph cards need one",
            dir.display()
        );
        for f in &files {
            let bytes =
                std::fs::read(f).with_context(|| format!("while reading {}", f.display()))?;
            hasher.update(&bytes);
            db.load_font_data(bytes);
        }
        let family = db
            .faces()
            .next()
            .and_then(|f| f.families.first().map(|(n, _)| n.clone()))
            .unwrap_or_else(|| "sans-serif".into());
        db.set_sans_serif_family(&family);
        Ok(OgRenderer {
            fontdb: Arc::new(db),
            family,
            fonts_hash: hasher.finalize().into(),
            cache_dir,
            covers: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(COVER_MEMO).expect("non-zero"),
            )),
        })
    }

    fn key(&self, svg: &str, cover: Option<&Derivative>) -> String {
        let mut h = Sha256::new();
        h.update(CACHE_VERSION);
        h.update(self.fonts_hash);
        h.update(svg.as_bytes());
        if let Some(c) = cover {
            h.update(b"cover");
            h.update(c.sha256.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The card for `svg`, with `cover` (a derivative of the petition's photo) drawn into the
    /// template's `<rect id="cover">` when it has one: from the cache when present, else
    /// rendered and cached. A warm build neither reads nor hashes the PNG: its SHA-256 and size
    /// are kept beside it, and the photo is not decoded.
    pub fn card(&self, svg: &str, cover: Option<&Derivative>) -> anyhow::Result<Card> {
        let key = self.key(svg, cover);
        let path = self.cache_dir.join(format!("{key}.png"));
        let side = self.cache_dir.join(format!("{key}.sha256"));
        if let Ok(meta) = std::fs::metadata(&path) {
            if let Some((sha256, bytes)) = std::fs::read_to_string(&side)
                .ok()
                .and_then(|s| parse_sidecar(&s))
                .filter(|(_, n)| *n == meta.len())
            {
                return Ok(Card {
                    path,
                    sha256,
                    bytes,
                    rendered: false,
                });
            }
            // A cache entry without its sidecar (older cache): hash it once.
            if let Ok(png) = std::fs::read(&path) {
                let sha256 = crate::integrity::sha256_hex(&png);
                self.persist(&side, format!("{sha256} {}\n", png.len()).as_bytes())?;
                return Ok(Card {
                    path,
                    sha256,
                    bytes: png.len() as u64,
                    rendered: false,
                });
            }
        }
        let png = self.render(svg, cover)?;
        let sha256 = crate::integrity::sha256_hex(&png);
        std::fs::create_dir_all(&self.cache_dir)
            .with_context(|| format!("while creating {}", self.cache_dir.display()))?;
        // The PNG first, then its sidecar: a reader that finds the sidecar finds the PNG.
        self.persist(&path, &png)?;
        self.persist(&side, format!("{sha256} {}\n", png.len()).as_bytes())?;
        Ok(Card {
            path,
            sha256,
            bytes: png.len() as u64,
            rendered: true,
        })
    }

    fn persist(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        persist(&self.cache_dir, path, bytes)
    }

    pub fn render(&self, svg: &str, cover: Option<&Derivative>) -> anyhow::Result<Vec<u8>> {
        let opts = usvg::Options {
            fontdb: self.fontdb.clone(),
            font_family: self.family.clone(),
            ..Default::default()
        };
        let tree = usvg::Tree::from_str(svg, &opts)
            .context("while parsing the Open Graph SVG (og.svg)")?;
        let mut pixmap =
            resvg::tiny_skia::Pixmap::new(WIDTH, HEIGHT).context("allocating the card")?;
        let size = tree.size();
        let t = resvg::tiny_skia::Transform::from_scale(
            WIDTH as f32 / size.width(),
            HEIGHT as f32 / size.height(),
        );
        resvg::render(&tree, t, &mut pixmap.as_mut());
        if let (Some(cover), Some(node)) = (cover, tree.node_by_id(COVER_ID)) {
            let b = node
                .abs_bounding_box()
                .transform(t)
                .context("the cover's box")?;
            self.draw_cover(&mut pixmap, cover, b.x(), b.y(), b.width(), b.height())?;
        }
        pixmap
            .encode_png()
            .context("while encoding the Open Graph PNG")
    }
}

/// The id of the `og.svg` element whose box the cover photo fills.
pub const COVER_ID: &str = "cover";

impl OgRenderer {
    /// Fills the box (card pixels) with the photo, scaled to cover it and cropped to its centre.
    fn draw_cover(
        &self,
        pixmap: &mut resvg::tiny_skia::Pixmap,
        cover: &Derivative,
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    ) -> anyhow::Result<()> {
        let x0 = x.round().clamp(0.0, WIDTH as f32) as u32;
        let y0 = y.round().clamp(0.0, HEIGHT as f32) as u32;
        let w = (w.round() as u32).min(WIDTH - x0);
        let h = (h.round() as u32).min(HEIGHT - y0);
        if w == 0 || h == 0 {
            return Ok(());
        }
        let key = (cover.sha256.clone(), w, h);
        let memo = self.covers.lock().expect("cover memo").get(&key).cloned();
        let photo = match memo {
            Some(p) => p,
            None => {
                let p = Arc::new(fill(cover, w, h).with_context(|| {
                    format!("while reading {} for the card", cover.path.display())
                })?);
                self.covers.lock().expect("cover memo").put(key, p.clone());
                p
            }
        };
        blend(pixmap, &photo, x0, y0);
        Ok(())
    }
}

/// The derivative decoded, resampled (Lanczos3) to cover `w` × `h` and cropped to its centre.
fn fill(cover: &Derivative, w: u32, h: u32) -> anyhow::Result<image::RgbaImage> {
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions};
    let mut src = image::open(&cover.path)?;
    if fast_image_resize::IntoImageView::pixel_type(&src).is_none() {
        src = image::DynamicImage::ImageRgba8(src.to_rgba8());
    }
    let mut dst = image::DynamicImage::new(w, h, src.color());
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .fit_into_destination(Some((0.5, 0.5)));
    fast_image_resize::Resizer::new()
        .resize(&src, &mut dst, &options)
        .context("while resizing")?;
    Ok(dst.to_rgba8())
}

/// Draws `photo` at (x0, y0) over the card.
fn blend(pixmap: &mut resvg::tiny_skia::Pixmap, photo: &image::RgbaImage, x0: u32, y0: u32) {
    let data = pixmap.data_mut();
    for (px, py, p) in photo.enumerate_pixels() {
        let [r, g, b, a] = p.0;
        let i = (((y0 + py) * WIDTH + x0 + px) * 4) as usize;
        // tiny-skia holds premultiplied RGBA: blend the photo over what is there.
        let a = u32::from(a);
        for (c, v) in [r, g, b].into_iter().enumerate() {
            data[i + c] = ((u32::from(v) * a + u32::from(data[i + c]) * (255 - a)) / 255) as u8;
        }
        data[i + 3] = (a + u32::from(data[i + 3]) * (255 - a) / 255) as u8;
    }
}

/// Writes beside, then renames: a concurrent or interrupted build never sees half a file.
/// World-readable, since the build output links to the cached files. Shared with the image
/// derivatives' cache ([`crate::images`]).
pub(crate) fn persist(cache_dir: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = tempfile::NamedTempFile::new_in(cache_dir)
        .with_context(|| format!("while caching in {}", cache_dir.display()))?;
    std::fs::write(tmp.path(), bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("while caching {}", path.display()))?;
    Ok(())
}

/// Breaks `text` into at most `max_lines` lines of about `width` characters, with an ellipsis
/// when it does not fit (SVG has no automatic wrapping).
pub fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut words = text.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let len = cur.chars().count();
        if len > 0 && len + 1 + w.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
            if lines.len() == max_lines {
                let last = lines.last_mut().expect("one line");
                while last.chars().count() + 1 > width {
                    last.pop();
                }
                last.push('…');
                return lines;
            }
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
        let _ = words.peek();
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_with_ellipsis() {
        assert_eq!(wrap("a bb ccc", 4, 3), ["a bb", "ccc"]);
        let l = wrap("one two three four five six", 7, 2);
        assert_eq!(l.len(), 2);
        assert!(l[1].ends_with('…'));
    }
}
