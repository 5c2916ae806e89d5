#!/usr/bin/env python3
"""Synthetic corpus for bench/generator.sh: N petitions x 2 languages, written twice from
the same texts — once as a Cahier site, once as an equivalent Hugo site (same pages: the
petition page with its form and five sub-pages, per language; home, privacy, 404, feeds,
sitemap, robots.txt).

With --images every petition also gets a cover photo, `cover.jpg` (2400x1600 JPEG, about
600 KB), declared as `image` on both sides: Cahier makes its responsive derivatives, and the
Hugo layouts (bench/hugo/layouts/partials/cover.html) make the same widths with Hugo's image
processing. Generating 10,000 distinct photos would take most of an hour, so PHOTOS base
photos (default 40) are drawn once, deterministically, with Pillow (seeded generator, no
clock), and each petition gets one of them with its own JPEG comment segment (COM, naming the
petition) inserted after the start-of-image marker: every file has its own bytes and content
hash (both tools cache derivatives by content), and decoding, resizing and encoding it costs
what the base photo costs. The Hugo site's photo is a hard link to the Cahier site's (a copy
when linking fails). Without --images the corpus is byte-for-byte what it always was."""
import argparse, os, random, shutil, struct, textwrap

WORDS = ("commune quartier bibliothèque vélo école marché jardin arbre rue place budget conseil "
         "habitants santé eau air bruit transport parc enfants climat logement emploi culture "
         "sport piste bus tram pont rivière forêt ferme commerce artisan musée théâtre hôpital").split()

def sentence(rng, n):
    w = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(w).capitalize() + "."

def body(rng):
    paras = []
    for h in ("Pourquoi", "Ce que nous demandons", "Calendrier"):
        paras.append(f"## {h}\n")
        paras.append(" ".join(sentence(rng, rng.randint(8, 16)) for _ in range(5)) + "\n")
    paras.append("1. " + sentence(rng, 8) + "\n2. " + sentence(rng, 9) + "\n3. " + sentence(rng, 7) + "\n")
    paras.append("| Étape | Date |\n|---|---|\n| Dépôt | janvier |\n| Vote | mars |\n")
    return "\n".join(paras)

COVER = "cover.jpg"
COVER_ALT = {"fr": "Photo de couverture de la pétition", "en": "The petition's cover photo"}

def base_photo(seed, w=2400, h=1600):
    """A photo-sized JPEG (quality 85) from a seeded generator: a smooth coarse colour field
    (sky, ground, light), a few dozen solid shapes with blurred edges, and a fine grain (the
    texture that makes a photo's JPEG as large and as slow to decode as a real one)."""
    from PIL import Image, ImageDraw, ImageFilter
    import io
    rng = random.Random(seed)
    cw, ch = 12, 8
    top = [rng.randint(60, 220) for _ in range(3)]
    bot = [rng.randint(20, 160) for _ in range(3)]
    coarse = Image.new("RGB", (cw, ch))
    px = coarse.load()
    for y in range(ch):
        for x in range(cw):
            t = y / (ch - 1)
            px[x, y] = tuple(max(0, min(255, int(top[c] * (1 - t) + bot[c] * t + rng.randint(-40, 40))))
                             for c in range(3))
    img = coarse.resize((w, h), Image.BICUBIC)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(30, 60)):
        x, y = rng.randint(-200, w), rng.randint(h // 4, h)
        sw, sh = rng.randint(40, 500), rng.randint(40, 700)
        col = tuple(rng.randint(0, 255) for _ in range(3))
        (d.rectangle if rng.random() < 0.5 else d.ellipse)([x, y - sh, x + sw, y], fill=col)
    img = img.filter(ImageFilter.GaussianBlur(2))
    grain = Image.frombytes("L", (w // 2, h // 2), rng.randbytes((w // 2) * (h // 2))).resize((w, h), Image.BILINEAR)
    img = Image.blend(img, Image.merge("RGB", (grain, grain, grain)), 0.12)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()

def with_comment(jpeg, text):
    """The JPEG with a COM segment right after SOI: other bytes, the same pixels."""
    assert jpeg[:2] == b"\xff\xd8"
    c = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(c) + 2) + c + jpeg[2:]

def write_cover(photo, cahier_dir, hugo_dir):
    a = os.path.join(cahier_dir, COVER)
    with open(a, "wb") as f:
        f.write(photo)
    b = os.path.join(hugo_dir, COVER)
    try:
        os.link(a, b)
    except OSError:
        shutil.copy(a, b)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--repo", default=".")
    ap.add_argument("--images", action="store_true", help="a cover photo per petition (needs Pillow)")
    ap.add_argument("--photos", type=int, default=40, help="distinct base photos with --images")
    a = ap.parse_args()
    rng = random.Random(42)
    photos = []
    if a.images:
        try:
            import PIL  # noqa: F401
        except ImportError:
            raise SystemExit("--images needs Pillow (IMAGES=1 bench/generator.sh installs it in bench/out/pyenv)")
        # Seeds of their own: the texts are the same as without --images.
        photos = [base_photo(1000 + k) for k in range(a.photos)]
    cahier = os.path.join(a.out, "cahier")
    hugo = os.path.join(a.out, "hugo")
    for d in (os.path.join(cahier, "content"), os.path.join(hugo, "content")):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    # Cahier site: the example's configuration and theme.
    shutil.copy(os.path.join(a.repo, "cahier.toml"), os.path.join(cahier, "cahier.toml"))
    shutil.rmtree(os.path.join(cahier, "themes"), ignore_errors=True)
    shutil.copytree(os.path.join(a.repo, "themes"), os.path.join(cahier, "themes"))
    # Hugo site: configuration and layouts from bench/hugo/.
    shutil.rmtree(os.path.join(hugo, "layouts"), ignore_errors=True)
    shutil.copytree(os.path.join(a.repo, "bench", "hugo", "layouts"), os.path.join(hugo, "layouts"))
    shutil.copytree(os.path.join(a.repo, "bench", "hugo", "i18n"), os.path.join(hugo, "i18n"), dirs_exist_ok=True)
    shutil.copy(os.path.join(a.repo, "bench", "hugo", "config.toml"), os.path.join(hugo, "config.toml"))
    if a.images:
        # bench/hugo/images.toml says why.
        with open(os.path.join(hugo, "config.toml")) as f:
            conf = f.read()
        for sub in ("check-email", "confirm", "thanks", "erase", "embed"):
            old = f'baseName = "index"\npath = "{sub}"\n'
            assert old in conf, old
            conf = conf.replace(old, f'baseName = "{sub}/index"\n')
        with open(os.path.join(a.repo, "bench", "hugo", "images.toml")) as f:
            conf += "\n" + f.read()
        with open(os.path.join(hugo, "config.toml"), "w") as f:
            f.write(conf)
    shutil.rmtree(os.path.join(hugo, "assets"), ignore_errors=True)
    shutil.copytree(os.path.join(a.repo, "themes", "default", "static"), os.path.join(hugo, "assets"))
    # The privacy page (Cahier renders it from the theme; Hugo needs a content file per language).
    for lang in ("fr", "en"):
        d = os.path.join(hugo, "content", "privacy")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"index.{lang}.md"), "w") as f:
            f.write('+++\ntitle = "privacy"\nlayout = "privacy"\noutputs = ["HTML"]\nslug = "privacy"\n+++\n')
    for i in range(a.n):
        slug = f"petition-{i:05d}"
        goal = rng.choice([500, 1000, 5000, 10000, 50000])
        month = 1 + i % 12
        day = 1 + i % 28
        texts = {}
        for lang in ("fr", "en"):
            title = sentence(rng, rng.randint(4, 9))[:-1]
            summary = sentence(rng, rng.randint(12, 20))
            texts[lang] = (title, summary, body(rng))
        d = os.path.join(cahier, "content", slug)
        os.makedirs(d)
        for lang, (title, summary, b) in texts.items():
            name = "index.md" if lang == "fr" else f"index.{lang}.md"
            with open(os.path.join(d, name), "w") as f:
                if lang == "fr":
                    f.write(f'+++\ntitle = "{title}"\nsummary = "{summary}"\naddressee = "Conseil municipal"\n'
                            f'goal = {goal}\ndate = 2026-{month:02d}-{day:02d}\nopens = 2026-{month:02d}-{day:02d}\n'
                            f'closes = 2027-{month:02d}-{day:02d}\n'
                            + (f'image = "{COVER}"\nimage_alt = "{COVER_ALT[lang]}"\n' if a.images else '')
                            + f'\n[[fields]]\nname = "postcode"\nrequired = true\n\n'
                            f'[[fields]]\nname = "city"\n\n[[fields]]\nname = "comment"\n+++\n\n{b}')
                else:
                    f.write(f'+++\ntitle = "{title}"\nsummary = "{summary}"\n'
                            + (f'image_alt = "{COVER_ALT[lang]}"\n' if a.images else '')
                            + f'+++\n\n{b}')
        h = os.path.join(hugo, "content", slug)
        os.makedirs(h)
        for lang, (title, summary, b) in texts.items():
            with open(os.path.join(h, f"index.{lang}.md"), "w") as f:
                f.write(f'+++\ntitle = "{title}"\nsummary = "{summary}"\naddressee = "Conseil municipal"\n'
                        f'goal = {goal}\ndate = 2026-{month:02d}-{day:02d}\nopens = 2026-{month:02d}-{day:02d}\n'
                        f'closes = 2027-{month:02d}-{day:02d}\nslug = "{slug}"\n'
                        + (f'image = "{COVER}"\nimage_alt = "{COVER_ALT[lang]}"\n' if a.images else '')
                        + f'\n[[fields]]\nname = "postcode"\nrequired = true\n\n[[fields]]\nname = "city"\n\n'
                        f'[[fields]]\nname = "comment"\n+++\n\n{b}')
        if a.images:
            write_cover(with_comment(photos[i % len(photos)], f"cahier bench cover {slug}"), d, h)

if __name__ == "__main__":
    main()
