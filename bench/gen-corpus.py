#!/usr/bin/env python3
"""Synthetic corpus for bench/generator.sh: N petitions x 2 languages, written twice from
the same texts — once as a Cahier site, once as an equivalent Hugo site (same pages: the
petition page with its form and five sub-pages, per language; home, privacy, 404, feeds,
sitemap, robots.txt)."""
import argparse, os, random, shutil, textwrap

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

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--repo", default=".")
    a = ap.parse_args()
    rng = random.Random(42)
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
                            f'closes = 2027-{month:02d}-{day:02d}\n\n[[fields]]\nname = "postcode"\nrequired = true\n\n'
                            f'[[fields]]\nname = "city"\n\n[[fields]]\nname = "comment"\n+++\n\n{b}')
                else:
                    f.write(f'+++\ntitle = "{title}"\nsummary = "{summary}"\n+++\n\n{b}')
        h = os.path.join(hugo, "content", slug)
        os.makedirs(h)
        for lang, (title, summary, b) in texts.items():
            with open(os.path.join(h, f"index.{lang}.md"), "w") as f:
                f.write(f'+++\ntitle = "{title}"\nsummary = "{summary}"\naddressee = "Conseil municipal"\n'
                        f'goal = {goal}\ndate = 2026-{month:02d}-{day:02d}\nopens = 2026-{month:02d}-{day:02d}\n'
                        f'closes = 2027-{month:02d}-{day:02d}\nslug = "{slug}"\n\n'
                        f'[[fields]]\nname = "postcode"\nrequired = true\n\n[[fields]]\nname = "city"\n\n'
                        f'[[fields]]\nname = "comment"\n+++\n\n{b}')

if __name__ == "__main__":
    main()
