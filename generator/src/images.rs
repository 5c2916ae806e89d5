//! Responsive images. Every JPEG or PNG a petition shows — its cover (`image` in the front
//! matter) and the images its Markdown references — becomes derivatives at a few widths
//! ([`WIDTHS`], never upscaled: an image narrower than the largest gets one at its own width),
//! with the EXIF orientation applied and every metadata block dropped, in the original's
//! format. The original file is still published beside them as it was uploaded (a link may
//! point to it), metadata included: a phone photo's GPS position is in it unless the
//! collective strips it first (docs/writing-petitions.md says so). Pages get `srcset`, `sizes`,
//! `width` and `height`, so the browser picks the size it needs and reserves the space.
//!
//! Resampling is Lanczos3 by fast_image_resize (SIMD), JPEG encoding jpeg-encoder's (AVX2 where
//! the CPU has it): image's own filter and encoder took three quarters of a cold build.
//!
//! WebP and AVIF are not produced: the `image` crate's WebP encoder is lossless only (a photo
//! comes out larger than its JPEG), and its AVIF encoder (rav1e) is a heavy build that takes
//! seconds per photo. JPEG at quality 80 and PNG are what every browser reads.
//!
//! Derivatives are cached by content hash beside the Open Graph cards, in
//! `.cahier/image-cache/`: `<key>-<width>.<ext>` for each and `<key>.json`, the index written
//! last (the widths, sizes and SHA-256 of the derivatives), so a warm build decodes nothing and
//! links the cached files into the output (see [`crate::og`] for the same scheme). Nor does it
//! hash the sources again: `<stamp>.src` remembers the content key of a file by its path, size
//! and modification time.

use crate::content::Petition;
use crate::diag::{self, Diagnostic};
use anyhow::Context;
use image::{DynamicImage, ImageDecoder, ImageFormat};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Widths of the derivatives, in CSS pixels of a 1× screen (or device pixels of a 2× one).
pub const WIDTHS: &[u32] = &[480, 960, 1600];
/// JPEG quality of the derivatives.
pub const JPEG_QUALITY: u8 = 80;
/// Bump when the pipeline changes in a way the source bytes do not show.
const CACHE_VERSION: &str = "cahier-img-2";
/// `sizes` of an image in the petition's text column (`.prose`, 44rem; one column under 60rem).
pub const SIZES_PROSE: &str = "(max-width: 60rem) calc(100vw - 2.5rem), 44rem";
/// `sizes` of an image on an index card (cards of 18rem or more, one column on a phone).
pub const SIZES_CARD: &str = "(max-width: 40rem) calc(100vw - 2.5rem), 24rem";

/// One derivative in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Derivative {
    pub width: u32,
    pub height: u32,
    pub sha256: String,
    pub bytes: u64,
    /// The file in the cache folder.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Index {
    ext: String,
    derivatives: Vec<Derivative>,
}

/// The derivatives of one source image, narrowest first.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// The source's name in the petition folder (`photo.jpg`).
    pub source: String,
    /// `jpg` or `png`.
    pub ext: String,
    pub derivatives: Vec<Derivative>,
    /// Decoded and resized by this build (false: taken from the cache).
    pub rendered: bool,
}

/// What an `<img>` needs beside `alt`; paths are root-relative.
#[derive(Debug, Clone, Serialize)]
pub struct ImgAttrs {
    pub src: String,
    pub srcset: String,
    pub width: u32,
    pub height: u32,
}

impl ImageSet {
    /// Output name of a derivative: `photo-960.<10 hex of its SHA-256>.jpg`, so a CDN may cache
    /// it forever and a changed photo gets new names.
    pub fn name(&self, d: &Derivative) -> String {
        let stem = self
            .source
            .rsplit_once('.')
            .map_or(self.source.as_str(), |(s, _)| s);
        format!("{stem}-{}.{}.{}", d.width, &d.sha256[..10], self.ext)
    }

    pub fn largest(&self) -> &Derivative {
        self.derivatives.last().expect("at least one derivative")
    }

    /// `src` (the largest derivative), `srcset`, and the largest one's intrinsic size, under
    /// `dir` (the petition's root-relative folder, ending in `/`).
    pub fn attrs(&self, dir: &str) -> ImgAttrs {
        let srcset = self
            .derivatives
            .iter()
            .map(|d| format!("{dir}{} {}w", self.name(d), d.width))
            .collect::<Vec<_>>()
            .join(", ");
        let l = self.largest();
        ImgAttrs {
            src: format!("{dir}{}", self.name(l)),
            srcset,
            width: l.width,
            height: l.height,
        }
    }
}

/// The formats derivatives are made for, by file extension (the content decides in the end).
pub fn is_raster(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e))
}

/// The widths made for an image `w` pixels wide: those of [`WIDTHS`] below it, and the largest
/// one or `w` itself, whichever is smaller.
pub fn widths_for(w: u32) -> Vec<u32> {
    let max = *WIDTHS.last().expect("widths");
    let mut v: Vec<u32> = WIDTHS.iter().copied().filter(|&x| x < w.min(max)).collect();
    v.push(w.min(max));
    v
}

pub struct ImageCache {
    dir: PathBuf,
}

impl ImageCache {
    pub fn new(dir: PathBuf) -> ImageCache {
        ImageCache { dir }
    }

    fn key(source: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(CACHE_VERSION.as_bytes());
        h.update(format!("{WIDTHS:?} q{JPEG_QUALITY}").as_bytes());
        h.update(source);
        hex::encode(h.finalize())
    }

    /// The cached derivatives of `key`, when the index and every file it names are there.
    fn cached(&self, key: &str) -> Option<(String, Vec<Derivative>)> {
        let text = std::fs::read_to_string(self.dir.join(format!("{key}.json"))).ok()?;
        let index: Index = serde_json::from_str(&text).ok()?;
        if index.derivatives.is_empty() || !matches!(index.ext.as_str(), "jpg" | "png") {
            return None;
        }
        let mut ds = index.derivatives;
        for d in &mut ds {
            d.path = self.dir.join(format!("{key}-{}.{}", d.width, index.ext));
            let ok = d.sha256.len() == 64
                && std::fs::metadata(&d.path).is_ok_and(|m| m.len() == d.bytes);
            if !ok {
                return None;
            }
        }
        Some((index.ext, ds))
    }

    /// The derivatives of the image `bytes` (named `source` in the petition folder): from the
    /// cache when complete there, else decoded, resized, encoded and cached.
    /// The derivatives of the image at `file`. A warm build does not even read it: a memo
    /// keyed by the file's path, size and modification time (`<stamp>.src`) names its content
    /// key, as make and cargo trust a file's stamp; a changed file is read and hashed again.
    pub fn derivatives_of_file(&self, source: &str, file: &Path) -> anyhow::Result<ImageSet> {
        let meta = std::fs::metadata(file).context("cannot read it")?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let mut h = Sha256::new();
        h.update(CACHE_VERSION.as_bytes());
        h.update(file.to_string_lossy().as_bytes());
        h.update(format!("\0{} {mtime}", meta.len()).as_bytes());
        let memo = self.dir.join(format!("{}.src", hex::encode(h.finalize())));
        if let Some(key) = std::fs::read_to_string(&memo)
            .ok()
            .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            if let Some((ext, derivatives)) = self.cached(&key) {
                return Ok(ImageSet {
                    source: source.to_string(),
                    ext,
                    derivatives,
                    rendered: false,
                });
            }
        }
        let bytes = std::fs::read(file).context("cannot read it")?;
        let key = Self::key(&bytes);
        let set = self.derivatives_keyed(source, &bytes, &key)?;
        crate::og::persist(&self.dir, &memo, key.as_bytes())?;
        Ok(set)
    }

    pub fn derivatives(&self, source: &str, bytes: &[u8]) -> anyhow::Result<ImageSet> {
        self.derivatives_keyed(source, bytes, &Self::key(bytes))
    }

    fn derivatives_keyed(&self, source: &str, bytes: &[u8], key: &str) -> anyhow::Result<ImageSet> {
        let key = key.to_string();
        if let Some((ext, derivatives)) = self.cached(&key) {
            return Ok(ImageSet {
                source: source.to_string(),
                ext,
                derivatives,
                rendered: false,
            });
        }
        let (ext, encoded) = render(bytes)?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("while creating {}", self.dir.display()))?;
        let mut derivatives = Vec::with_capacity(encoded.len());
        for (width, height, data) in encoded {
            let path = self.dir.join(format!("{key}-{width}.{ext}"));
            crate::og::persist(&self.dir, &path, &data)?;
            derivatives.push(Derivative {
                width,
                height,
                sha256: crate::integrity::sha256_hex(&data),
                bytes: data.len() as u64,
                path,
            });
        }
        // The index last: a reader that finds it finds every derivative it names.
        let index = Index {
            ext: ext.to_string(),
            derivatives,
        };
        let json = serde_json::to_vec_pretty(&index).expect("serialisable");
        crate::og::persist(&self.dir, &self.dir.join(format!("{key}.json")), &json)?;
        Ok(ImageSet {
            source: source.to_string(),
            ext: ext.to_string(),
            derivatives: index.derivatives,
            rendered: true,
        })
    }
}

/// Largest side decoded: above it the image crate refuses before allocating.
const MAX_SIDE: u32 = 16_384;
/// Largest decode buffer (a 50-megapixel RGBA photo takes 200 MB).
const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;
/// Largest image resized: a few hundred KB of flat PNG can decode to gigabytes, and the
/// Lanczos filter needs several times the decoded size again, on every core at once.
const MAX_PIXELS: u64 = 50_000_000;
/// Longest side over shortest side: widths are capped but heights follow the ratio, so a
/// 1,600-pixel-wide derivative of a 1:50 strip would still be 80,000 pixels tall.
const MAX_ASPECT: u32 = 8;

/// One encoded derivative: width, height, bytes.
type Encoded = (u32, u32, Vec<u8>);

/// Decodes a JPEG or PNG, applies its EXIF orientation and encodes every width, largest first
/// resized from the original, each smaller one from the one above it. Returns the extension
/// and (width, height, bytes) narrowest first.
fn render(bytes: &[u8]) -> anyhow::Result<(&'static str, Vec<Encoded>)> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .context("cannot read it")?;
    let format = reader.format();
    let ext = match format {
        Some(ImageFormat::Jpeg) => "jpg",
        Some(ImageFormat::Png) => "png",
        Some(f) => anyhow::bail!(
            "{} images are not supported: use JPEG or PNG (or SVG, copied as it is)",
            f.extensions_str()
                .first()
                .unwrap_or(&"this kind of")
                .to_uppercase()
        ),
        None => anyhow::bail!("not a JPEG or PNG image (unknown content)"),
    };
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .context("cannot decode it (a damaged or truncated file?)")?;
    let (w0, h0) = decoder.dimensions();
    anyhow::ensure!(
        u64::from(w0) * u64::from(h0) <= MAX_PIXELS,
        "it is too large to resize ({w0}×{h0} pixels, at most {} megapixels): scale it down first",
        MAX_PIXELS / 1_000_000
    );
    anyhow::ensure!(
        h0 <= w0.saturating_mul(MAX_ASPECT) && w0 <= h0.saturating_mul(MAX_ASPECT),
        "it is too elongated to resize ({w0}×{h0} pixels, at most {MAX_ASPECT}:1): crop it or link it as a file"
    );
    let orientation = decoder
        .orientation()
        .context("cannot read its orientation")?;
    let mut img = DynamicImage::from_decoder(decoder)
        .context("cannot decode it (a damaged or truncated file?)")?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width(), img.height());
    anyhow::ensure!(w > 0 && h > 0, "the image is empty ({w}×{h})");
    if ext == "jpg"
        && !matches!(
            img,
            DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_)
        )
    {
        img = DynamicImage::ImageRgb8(img.to_rgb8());
    }
    let mut out = Vec::new();
    let mut current = img;
    let mut resizer = fast_image_resize::Resizer::new();
    for &width in widths_for(w).iter().rev() {
        let height = ((h as u64 * width as u64 + w as u64 / 2) / w as u64).max(1) as u32;
        if (width, height) != (current.width(), current.height()) {
            current = resize(&mut resizer, &current, width, height)?;
        }
        let buf = if ext == "jpg" {
            encode_jpeg(&current).context("while encoding a JPEG derivative")?
        } else {
            let mut buf = Vec::new();
            current
                .write_with_encoder(image::codecs::png::PngEncoder::new(&mut buf))
                .context("while encoding a PNG derivative")?;
            buf
        };
        out.push((width, height, buf));
    }
    out.reverse();
    Ok((ext, out))
}

/// `img` resampled to `width` × `height` with Lanczos3 (SIMD, alpha premultiplied meanwhile).
fn resize(
    resizer: &mut fast_image_resize::Resizer,
    img: &DynamicImage,
    width: u32,
    height: u32,
) -> anyhow::Result<DynamicImage> {
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions};
    // Every colour type the JPEG and PNG decoders give is one fast_image_resize takes; any other
    // (none today) goes through RGBA8.
    let converted;
    let src = if fast_image_resize::IntoImageView::pixel_type(img).is_some() {
        img
    } else {
        converted = DynamicImage::ImageRgba8(img.to_rgba8());
        &converted
    };
    let mut dst = DynamicImage::new(width, height, src.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(src, &mut dst, &options)
        .context("while resizing")?;
    Ok(dst)
}

/// A JPEG at [`JPEG_QUALITY`], 4:4:4 (no chroma subsampling, as image's encoder wrote them),
/// with jpeg-encoder's AVX2 path where the CPU has it. `img` is Luma8 or Rgb8 (see [`render`]).
fn encode_jpeg(img: &DynamicImage) -> anyhow::Result<Vec<u8>> {
    let color = match img {
        DynamicImage::ImageLuma8(_) => jpeg_encoder::ColorType::Luma,
        DynamicImage::ImageRgb8(_) => jpeg_encoder::ColorType::Rgb,
        _ => anyhow::bail!("unexpected colour type {:?}", img.color()),
    };
    let (w, h) = (
        u16::try_from(img.width()).context("too wide for JPEG")?,
        u16::try_from(img.height()).context("too tall for JPEG")?,
    );
    let mut buf = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut buf, JPEG_QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1);
    encoder.encode(img.as_bytes(), w, h, color)?;
    Ok(buf)
}

/// Every petition's image sets, by slug then source name.
#[derive(Debug, Default)]
pub struct SiteImages {
    by_slug: BTreeMap<String, BTreeMap<String, ImageSet>>,
    /// Source images decoded by this build / taken from the cache.
    pub rendered: usize,
    pub cached: usize,
}

impl SiteImages {
    pub fn get(&self, slug: &str, source: &str) -> Option<&ImageSet> {
        self.by_slug.get(slug)?.get(source)
    }

    pub fn of(&self, slug: &str) -> impl Iterator<Item = &ImageSet> {
        self.by_slug.get(slug).into_iter().flat_map(|m| m.values())
    }
}

/// The name in the petition folder that an image reference of its Markdown points at, when it
/// is one of the folder's files (`photo.jpg`, `./photo.jpg`; not a URL nor a root path).
pub fn local_asset<'a>(p: &'a Petition, dest: &str) -> Option<&'a str> {
    if dest.is_empty() || dest.starts_with('/') || dest.contains("//") || dest.contains(':') {
        return None;
    }
    let dest = dest.split(['?', '#']).next().unwrap_or(dest);
    let dest = dest.strip_prefix("./").unwrap_or(dest);
    let decoded = percent_decode(dest);
    p.assets
        .iter()
        .find(|a| **a == dest || **a == decoded)
        .map(String::as_str)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Where a petition shows one of its raster images first: file, line and key, for messages.
struct Use {
    source: String,
    file: PathBuf,
    line: Option<usize>,
    key: Option<&'static str>,
}

fn uses(p: &Petition, default_lang: &str) -> Vec<Use> {
    let mut v: Vec<Use> = Vec::new();
    if !p.assets.iter().any(|a| is_raster(a)) {
        return v; // the common case: nothing to decode, no Markdown to scan
    }
    if let Some(img) = p.meta.image.as_deref().filter(|i| is_raster(i)) {
        if p.assets.iter().any(|a| a == img) {
            let t = &p.texts[default_lang];
            v.push(Use {
                source: img.to_string(),
                file: t.file.clone(),
                line: diag::line_of_key(&t.front, "image").map(|l| l + t.front_line - 1),
                key: Some("image"),
            });
        }
    }
    for t in p.texts.values() {
        for (dest, off) in crate::markdown::image_refs(&t.body) {
            let Some(name) = local_asset(p, &dest).filter(|n| is_raster(n)) else {
                continue;
            };
            if v.iter().any(|u| u.source == name) {
                continue;
            }
            v.push(Use {
                source: name.to_string(),
                file: t.file.clone(),
                line: Some(t.body_line + diag::line_of_offset(&t.body, off) - 1),
                key: None,
            });
        }
    }
    v
}

/// The derivatives of every raster image the petitions show, in parallel. A file that cannot
/// be decoded is an error naming the petition's file and line and the image's path; every
/// such problem is reported at once, and the cache only ever holds complete entries.
pub fn prepare(
    root: &Path,
    petitions: &[Petition],
    default_lang: &str,
    cache: &ImageCache,
) -> Result<SiteImages, Vec<Diagnostic>> {
    let jobs: Vec<(&Petition, Use)> = petitions
        .iter()
        .flat_map(|p| uses(p, default_lang).into_iter().map(move |u| (p, u)))
        .collect();
    let results: Vec<Result<(String, ImageSet), Diagnostic>> = jobs
        .into_par_iter()
        .map(|(p, u)| {
            let path = p.dir.join(&u.source);
            let r = cache.derivatives_of_file(&u.source, &root.join(&path));
            match r {
                Ok(set) => Ok((p.slug.clone(), set)),
                Err(e) => {
                    let d = Diagnostic::new(
                        &u.file,
                        u.line,
                        format!(
                            "image {:?} ({}): {:#}",
                            u.source,
                            path.display().to_string().replace('\\', "/"),
                            e
                        ),
                    );
                    Err(match u.key {
                        Some(k) => d.with_key(k),
                        None => d,
                    })
                }
            }
        })
        .collect();
    let mut out = SiteImages::default();
    let mut errs = Vec::new();
    for r in results {
        match r {
            Ok((slug, set)) => {
                if set.rendered {
                    out.rendered += 1;
                } else {
                    out.cached += 1;
                }
                out.by_slug
                    .entry(slug)
                    .or_default()
                    .insert(set.source.clone(), set);
            }
            Err(d) => errs.push(d),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        errs.sort();
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_never_upscale() {
        assert_eq!(widths_for(4000), [480, 960, 1600]);
        assert_eq!(widths_for(1600), [480, 960, 1600]);
        assert_eq!(widths_for(1200), [480, 960, 1200]);
        assert_eq!(widths_for(960), [480, 960]);
        assert_eq!(widths_for(300), [300]);
    }

    #[test]
    fn orientation_is_applied_and_png_stays_png() {
        let img = image::RgbaImage::from_pixel(600, 200, image::Rgba([10, 20, 30, 128]));
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(img)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let (ext, out) = render(&png).unwrap();
        assert_eq!(ext, "png");
        let sizes: Vec<_> = out.iter().map(|(w, h, _)| (*w, *h)).collect();
        assert_eq!(sizes, [(480, 160), (600, 200)]);
        let back = image::load_from_memory(&out[0].2).unwrap();
        assert_eq!(back.color(), image::ColorType::Rgba8);
        assert!(render(b"GIF89a....").is_err());
        assert!(render(b"not an image").is_err());
    }
}
