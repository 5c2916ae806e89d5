//! Responsive images and the favicon: a 4,000 × 3,000 phone photo in a petition becomes
//! derivatives at 480, 960 and 1,600 pixels with `srcset`, `sizes`, `width` and `height`, a
//! second build takes them from the cache (nothing decoded, the cached files untouched), a
//! broken image stops the build with its file, line and path, and every page links a favicon
//! that the build writes.

mod common;

use scraper::{Html, Selector};
use std::io::Cursor;
use std::path::Path;
use std::time::SystemTime;

/// A photo-like JPEG (gradients, so that it compresses like one), `w` × `h`.
fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x ^ y) & 0xff) as u8,
        ])
    });
    let mut buf = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Jpeg)
        .unwrap();
    buf
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255])
    });
    let mut buf = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png)
        .unwrap();
    buf
}

/// `jpeg` with an EXIF block saying "rotate 90° clockwise to show" (orientation 6), as phones
/// write portrait photos.
fn jpeg_rotated(w: u32, h: u32) -> Vec<u8> {
    let plain = jpeg(w, h);
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 1]); // one entry
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]); // Orientation = 6
    tiff.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = plain[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

fn append(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    let mut s = std::fs::read_to_string(&p).unwrap();
    s.push_str(text);
    std::fs::write(p, s).unwrap();
}

fn page(out: &Path, rel: &str) -> Html {
    Html::parse_document(&std::fs::read_to_string(out.join(rel)).unwrap())
}

fn imgs(doc: &Html) -> Vec<scraper::ElementRef<'_>> {
    doc.select(&Selector::parse("img").unwrap()).collect()
}

/// (url, width) of each `srcset` candidate.
fn srcset(img: &scraper::ElementRef) -> Vec<(String, u32)> {
    img.attr("srcset")
        .expect("srcset")
        .split(", ")
        .map(|c| {
            let (u, w) = c.rsplit_once(' ').unwrap();
            (u.to_string(), w.trim_end_matches('w').parse().unwrap())
        })
        .collect()
}

fn dims(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap()
}

fn mtimes(dir: &Path) -> Vec<(String, SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().to_string(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_phone_photo_becomes_cached_srcset_derivatives() {
    let site = common::example_site();
    let root = site.path();
    std::fs::write(
        root.join("content/noel-sans-geant/photo.jpg"),
        jpeg(4000, 3000),
    )
    .unwrap();
    append(
        root,
        "content/noel-sans-geant/index.md",
        "\n![La place du marché](photo.jpg \"Le marché\")\n",
    );
    append(
        root,
        "content/noel-sans-geant/index.en.md",
        "\n![The market square](./photo.jpg)\n",
    );
    // A cover narrower than the widest derivative: never upscaled, its own width is the largest.
    std::fs::write(
        root.join("content/mediatheque-des-tanneurs/facade.png"),
        png(1200, 800),
    )
    .unwrap();
    let md = root.join("content/mediatheque-des-tanneurs/index.md");
    let text = std::fs::read_to_string(&md)
        .unwrap()
        .replace("image: \"library.svg\"", "image: \"facade.png\"");
    std::fs::write(&md, text).unwrap();
    // A portrait photo whose EXIF says to turn it: derivatives come out upright.
    std::fs::write(
        root.join("content/mediatheque-des-tanneurs/portrait.jpg"),
        jpeg_rotated(400, 300),
    )
    .unwrap();
    append(
        root,
        "content/mediatheque-des-tanneurs/index.md",
        "\n![Une lectrice](portrait.jpg)\n",
    );

    let a = tempfile::tempdir().unwrap();
    let out = a.path().join("public");
    let ra = cahier::build(&common::opts(root, &out)).unwrap();
    eprintln!("cold build: {:?}", ra.elapsed);
    assert_eq!((ra.images_rendered, ra.images_cached), (3, 0));

    // The photo in the text, in both languages: three widths, the size of the largest, lazy.
    for (rel, dir, alt) in [
        (
            "noel-sans-geant/index.html",
            "/noel-sans-geant/",
            "La place du marché",
        ),
        (
            "en/noel-sans-geant/index.html",
            "/en/noel-sans-geant/",
            "The market square",
        ),
    ] {
        let doc = page(&out, rel);
        let all = imgs(&doc);
        let img = all
            .iter()
            .find(|i| i.attr("alt") == Some(alt))
            .unwrap_or_else(|| panic!("{rel}: no image {alt:?}"));
        let set = srcset(img);
        assert_eq!(
            set.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
            [480, 960, 1600],
            "{rel}"
        );
        for (url, w) in &set {
            let name = url.strip_prefix(dir).expect("in the petition's folder");
            let (stem, rest) = name.split_once('.').unwrap();
            assert_eq!(stem, format!("photo-{w}"), "{url}");
            let (hash, ext) = rest.split_once('.').unwrap();
            assert!(hash.len() == 10 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(ext, "jpg");
            let file = out.join(url.trim_start_matches('/'));
            assert_eq!(dims(&file), (*w, w * 3 / 4), "{url}");
        }
        assert_eq!(img.attr("src"), Some(set[2].0.as_str()));
        assert_eq!(img.attr("width"), Some("1600"), "{rel}");
        assert_eq!(img.attr("height"), Some("1200"), "{rel}");
        assert!(img.attr("sizes").is_some_and(|s| s.contains("44rem")));
        // Not the page's first image (the cover is): loaded and decoded lazily.
        assert_eq!(img.attr("loading"), Some("lazy"));
        assert_eq!(img.attr("decoding"), Some("async"));
        // The original is still there for whoever links to it.
        assert!(out
            .join(dir.trim_start_matches('/'))
            .join("photo.jpg")
            .is_file());
    }
    let doc = page(&out, "noel-sans-geant/index.html");
    let img = imgs(&doc)
        .into_iter()
        .find(|i| i.attr("alt") == Some("La place du marché"))
        .unwrap();
    assert_eq!(img.attr("title"), Some("Le marché"));

    // The PNG cover: 480, 960 and its own 1,200; the first image of its page, so not lazy.
    let doc = page(&out, "mediatheque-des-tanneurs/index.html");
    let cover = doc
        .select(&Selector::parse("figure.cover img").unwrap())
        .next()
        .expect("cover");
    let set = srcset(&cover);
    assert_eq!(
        set.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        [480, 960, 1200]
    );
    assert!(set.iter().all(|(u, _)| u.ends_with(".png")));
    assert_eq!(
        dims(&out.join(set[0].0.trim_start_matches('/'))),
        (480, 320)
    );
    assert_eq!(
        (cover.attr("width"), cover.attr("height")),
        (Some("1200"), Some("800"))
    );
    assert_eq!(cover.attr("loading"), None);
    assert_eq!(cover.attr("decoding"), None);
    // Its text's image comes second: lazy; turned upright by its EXIF orientation.
    let portrait = imgs(&doc)
        .into_iter()
        .find(|i| i.attr("alt") == Some("Une lectrice"))
        .unwrap();
    assert_eq!(
        (portrait.attr("width"), portrait.attr("height")),
        (Some("300"), Some("400"))
    );
    assert_eq!(portrait.attr("loading"), Some("lazy"));
    assert_eq!(
        dims(&out.join(srcset(&portrait)[0].0.trim_start_matches('/'))),
        (300, 400)
    );
    // The index card uses the derivatives too, lazily.
    let home = page(&out, "index.html");
    let card = imgs(&home)
        .into_iter()
        .find(|i| i.attr("src").is_some_and(|s| s.contains("facade-")))
        .expect("card image");
    assert_eq!(card.attr("width"), Some("1200"));
    assert_eq!(card.attr("loading"), Some("lazy"));
    assert!(card.attr("srcset").unwrap().contains("facade-480."));

    // The integrity manifest lists every derivative with its true hash.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("integrity.json")).unwrap()).unwrap();
    for (url, _) in srcset(&img) {
        let rel = url.trim_start_matches('/');
        let bytes = std::fs::read(out.join(rel)).unwrap();
        assert_eq!(
            manifest["files"][rel]["sha256"],
            cahier::integrity::sha256_hex(&bytes),
            "{rel}"
        );
    }
    let sizes: Vec<_> = srcset(&img)
        .iter()
        .map(|(u, w)| {
            let n = std::fs::metadata(out.join(u.trim_start_matches('/')))
                .unwrap()
                .len();
            format!("{w}w: {n} bytes")
        })
        .collect();
    eprintln!(
        "photo.jpg ({} bytes): {}",
        std::fs::metadata(root.join("content/noel-sans-geant/photo.jpg"))
            .unwrap()
            .len(),
        sizes.join(", ")
    );

    // A second build decodes nothing and leaves the cache untouched; same output, byte for byte.
    let cache = root.join(".cahier/image-cache");
    let before = mtimes(&cache);
    // index + 3 derivatives for the photo, index + 3 for the cover, index + 1 for the portrait,
    // and the memo of each source's content key.
    assert_eq!(before.len(), 4 + 4 + 2 + 3, "{before:?}");
    let b = tempfile::tempdir().unwrap();
    let rb = cahier::build(&common::opts(root, &b.path().join("public"))).unwrap();
    eprintln!("warm build: {:?}", rb.elapsed);
    assert_eq!((rb.images_rendered, rb.images_cached), (0, 3));
    assert_eq!(mtimes(&cache), before);
    assert_eq!(common::files(&out), common::files(&b.path().join("public")));
}

#[test]
fn a_broken_image_names_the_file_line_and_image_and_writes_nothing() {
    let site = common::example_site();
    let root = site.path();
    let tmp = tempfile::tempdir().unwrap();
    let public = tmp.path().join("public");
    cahier::build(&common::opts(root, &public)).unwrap();
    let before = common::files(&public);

    // A JPEG start and then nothing of an image (a failed upload, a truncated copy).
    let mut broken = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
    broken.extend_from_slice(b"JFIF\0garbage garbage garbage");
    std::fs::write(root.join("content/noel-sans-geant/broken.jpg"), broken).unwrap();
    let md = "content/noel-sans-geant/index.md";
    let lines = std::fs::read_to_string(root.join(md))
        .unwrap()
        .lines()
        .count();
    append(root, md, "\nAvant.\n\n![Une photo](broken.jpg)\n");
    let e = cahier::build(&common::opts(root, &public)).expect_err("must fail");
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&format!("{md}:{}:", lines + 4)),
        "file and line: {msg}"
    );
    assert!(
        msg.contains("image \"broken.jpg\" (content/noel-sans-geant/broken.jpg)"),
        "{msg}"
    );
    assert!(msg.contains("cannot decode"), "{msg}");
    // A text file named like a PNG, as a cover.
    std::fs::write(
        root.join("content/mediatheque-des-tanneurs/cover.png"),
        "not an image",
    )
    .unwrap();
    let md2 = root.join("content/mediatheque-des-tanneurs/index.md");
    let text = std::fs::read_to_string(&md2)
        .unwrap()
        .replace("image: \"library.svg\"", "image: \"cover.png\"");
    std::fs::write(&md2, text).unwrap();
    let e = cahier::build(&common::opts(root, &public)).expect_err("must fail");
    let msg = format!("{e:#}");
    assert!(msg.contains("2 errors"), "both reported at once: {msg}");
    assert!(
        msg.contains("content/mediatheque-des-tanneurs/index.md:11: key `image`: image \"cover.png\" (content/mediatheque-des-tanneurs/cover.png): not a JPEG or PNG"),
        "{msg}"
    );
    // Nothing half-written: the previous site as it was, and no cache entry for either.
    assert_eq!(common::files(&public), before);
    let cache = root.join(".cahier/image-cache");
    assert!(
        !cache.exists() || std::fs::read_dir(&cache).unwrap().next().is_none(),
        "{:?}",
        std::fs::read_dir(&cache).map(|d| d.count())
    );
}

/// A long strip (flat colour, it would be a few KB on disk) would need gigabytes to resize (its
/// 1,600-wide derivative 80,000 pixels tall): refused before decoding, with the reason.
#[test]
fn an_image_too_elongated_to_resize_is_refused_with_its_size() {
    let site = common::example_site();
    let root = site.path();
    let tmp = tempfile::tempdir().unwrap();
    let public = tmp.path().join("public");
    std::fs::write(
        root.join("content/noel-sans-geant/strip.png"),
        png(1601, 16_000),
    )
    .unwrap();
    append(
        root,
        "content/noel-sans-geant/index.md",
        "\n![Une bande](strip.png)\n",
    );
    let e = cahier::build(&common::opts(root, &public)).expect_err("must fail");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("image \"strip.png\"")
            && msg.contains("too elongated")
            && msg.contains("1601×16000"),
        "{msg}"
    );
    assert!(!public.exists(), "nothing written");
}

#[test]
fn every_page_links_the_theme_favicon_or_the_configured_one() {
    let site = common::example_site();
    let root = site.path();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("public");
    cahier::build(&common::opts(root, &out)).unwrap();
    let files = common::files(&out);
    let icon = Selector::parse("link[rel=icon]").unwrap();
    let mut pages = 0;
    for (rel, bytes) in &files {
        if !rel.ends_with(".html") {
            continue;
        }
        pages += 1;
        let doc = Html::parse_document(std::str::from_utf8(bytes).unwrap());
        let link = doc
            .select(&icon)
            .next()
            .unwrap_or_else(|| panic!("{rel} has no <link rel=icon>"));
        assert_eq!(link.attr("href"), Some("/static/favicon.svg"), "{rel}");
        assert_eq!(link.attr("type"), Some("image/svg+xml"), "{rel}");
    }
    assert!(pages > 10);
    let svg = std::str::from_utf8(&files["static/favicon.svg"]).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");

    // Overridden in cahier.toml: a file of the site's static/ (served at the root) ...
    let cfg = root.join("cahier.toml");
    let base = std::fs::read_to_string(&cfg).unwrap();
    std::fs::create_dir_all(root.join("static")).unwrap();
    std::fs::write(root.join("static/my.png"), png(32, 32)).unwrap();
    std::fs::write(&cfg, format!("favicon = \"static/my.png\"\n{base}")).unwrap();
    cahier::build(&common::opts(root, &out)).unwrap();
    let doc = page(&out, "en/index.html");
    let link = doc.select(&icon).next().unwrap();
    assert_eq!(
        (link.attr("href"), link.attr("type")),
        (Some("/my.png"), Some("image/png"))
    );
    assert!(out.join("my.png").is_file());
    // ... or anywhere else in the site, copied under a fingerprinted name.
    common::write(
        root,
        "brand/icon.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    );
    std::fs::write(&cfg, format!("favicon = \"brand/icon.svg\"\n{base}")).unwrap();
    cahier::build(&common::opts(root, &out)).unwrap();
    let doc = page(&out, "index.html");
    let href = doc
        .select(&icon)
        .next()
        .unwrap()
        .attr("href")
        .unwrap()
        .to_string();
    assert!(
        href.starts_with("/static/icon.") && href.ends_with(".svg"),
        "{href}"
    );
    assert!(out.join(href.trim_start_matches('/')).is_file());
    // A missing one is an error on its line.
    std::fs::write(&cfg, format!("favicon = \"static/nope.png\"\n{base}")).unwrap();
    let e = cahier::build(&common::opts(root, &out)).expect_err("missing favicon");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("cahier.toml:1: `favicon` \"static/nope.png\" not found"),
        "{msg}"
    );
}

/// A solid-colour JPEG, `w` × `h`.
fn solid_jpeg(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    let mut buf = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Jpeg)
        .unwrap();
    buf
}

/// The colour of the card's pixel at (x, y).
fn card_pixel(out: &Path, slug: &str, x: u32, y: u32) -> [u8; 3] {
    let card = image::open(out.join(slug).join("og.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(card.dimensions(), (1200, 630));
    card.get_pixel(x, y).0
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) < 24)
}

/// The Open Graph card shows the petition's cover photo in the template's `<rect id="cover">`;
/// a petition whose cover is an SVG keeps the plain card; a new photo gives a new card.
#[test]
fn the_open_graph_card_shows_the_cover_photo() {
    let site = common::example_site();
    let root = site.path();
    std::fs::write(
        root.join("content/mediatheque-des-tanneurs/facade.jpg"),
        solid_jpeg(2000, 1500, [200, 30, 40]),
    )
    .unwrap();
    let md = root.join("content/mediatheque-des-tanneurs/index.md");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("image: \"library.svg\""));
    std::fs::write(
        &md,
        text.replace("image: \"library.svg\"", "image: \"facade.jpg\""),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let public = out.path().join("public");
    cahier::build(&common::opts(root, &public)).unwrap();
    let red = card_pixel(&public, "mediatheque-des-tanneurs", 1000, 315);
    assert!(
        near(red, [200, 30, 40]),
        "the cover's colour in its box: {red:?}"
    );
    // Left of the box: the theme's background, not the photo.
    let left = card_pixel(&public, "mediatheque-des-tanneurs", 40, 600);
    assert!(!near(left, [200, 30, 40]), "{left:?}");
    // An SVG cover: the plain card.
    let plain = card_pixel(&public, "noel-sans-geant", 1000, 315);
    assert!(!near(plain, [200, 30, 40]), "{plain:?}");

    // Another photo, another card (the cache is keyed on the photo too).
    std::fs::write(
        root.join("content/mediatheque-des-tanneurs/facade.jpg"),
        solid_jpeg(2000, 1500, [20, 60, 210]),
    )
    .unwrap();
    cahier::build(&common::opts(root, &public)).unwrap();
    let blue = card_pixel(&public, "mediatheque-des-tanneurs", 1000, 315);
    assert!(near(blue, [20, 60, 210]), "{blue:?}");
}
