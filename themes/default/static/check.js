/* Cahier — "check my signature": the petition's transparency log checked in the browser from
   the static files alone (C2SP tlog-tiles, RFC 6962 hashing, a C2SP signed-note checkpoint
   under the collective's Ed25519 key), then the signer's receipt looked up in it and the count
   recomputed and compared with the public count. The receipt's secret stays in the URL
   fragment: it is never sent anywhere. The last checkpoint seen is remembered (size and root
   only), so that a log that later forks or shrinks is noticed. See docs/transparency-log.md. */
(function () {
  "use strict";
  var page = document.querySelector("[data-check-page]");
  if (!page) return;
  var subtle = window.crypto && window.crypto.subtle;
  var WIDTH = 256;
  var COMMITMENT_DOMAIN = "cahier/signature-commitment/v1";
  var REASONS = { 1: "invalidated", 2: "erased", 3: "withdrawn" };

  var results = page.querySelector("[data-check-results]");
  var verdictBox = page.querySelector("[data-check-verdict]");
  function text(name) { return page.getAttribute("data-text-" + name) || name; }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? String(values[k]) : m; });
  }
  function report(check, ok, message) {
    var li = document.createElement("li");
    li.className = ok ? "ok" : "error";
    li.setAttribute("data-check", check);
    li.setAttribute("data-ok", ok ? "yes" : "no");
    li.textContent = (ok ? "✓ " : "✗ ") + message;
    results.appendChild(li);
    return ok;
  }
  function verdict(state, message) {
    verdictBox.textContent = message;
    verdictBox.className = "status " + (state === "ok" ? "ok" : state === "wait" ? "" : "error");
    verdictBox.setAttribute("data-verdict", state);
  }

  /* ---- Bytes ---- */
  var encoder = new TextEncoder();
  function fromBase64(s) {
    s = s.trim().replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function toBase64(b) {
    var s = "";
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s);
  }
  function concat(parts) {
    var n = 0, i;
    for (i = 0; i < parts.length; i++) n += parts[i].length;
    var out = new Uint8Array(n), at = 0;
    for (i = 0; i < parts.length; i++) { out.set(parts[i], at); at += parts[i].length; }
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  function hex(b) {
    var s = "";
    for (var i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
    return s;
  }
  function sha256(bytes) {
    return subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }

  /* ---- RFC 6962 ---- */
  var ZERO = new Uint8Array([0]), ONE = new Uint8Array([1]);
  function leafHash(entry) { return sha256(concat([ZERO, entry])); }
  function nodeHash(l, r) { return sha256(concat([ONE, l, r])); }
  /* The root of leaves [lo, hi): the largest power of two below the size splits it. */
  function treeHash(leaves, lo, hi) {
    if (hi - lo === 0) return sha256(new Uint8Array(0));
    if (hi - lo === 1) return Promise.resolve(leaves[lo]);
    var k = 1;
    while (k * 2 < hi - lo) k *= 2;
    return Promise.all([treeHash(leaves, lo, lo + k), treeHash(leaves, lo + k, hi)])
      .then(function (h) { return nodeHash(h[0], h[1]); });
  }
  /* The hashes a tile level holds: level 0 the leaves, level L+1 the roots of each complete run
     of 256 level-L hashes (a complete subtree of 2^(8(L+1)) leaves). */
  function nextLevel(hashes) {
    var groups = [];
    for (var g = 0; g + WIDTH <= hashes.length; g += WIDTH) groups.push(hashes.slice(g, g + WIDTH));
    return Promise.all(groups.map(function (group) { return treeHash(group, 0, WIDTH); }));
  }

  /* ---- tlog-tiles paths ---- */
  function indexPath(n) {
    var s = String(n);
    while (s.length % 3) s = "0" + s;
    var parts = s.match(/.{3}/g);
    return parts.map(function (p, i) { return i < parts.length - 1 ? "x" + p : p; }).join("/");
  }
  /* The tiles of a level holding `count` hashes: full ones, then the last partial one. */
  function tilesOf(count) {
    var out = [];
    for (var n = 0; n * WIDTH < count; n++) {
      var width = Math.min(WIDTH, count - n * WIDTH);
      out.push({ index: n, width: width, suffix: indexPath(n) + (width < WIDTH ? ".p/" + width : "") });
    }
    return out;
  }

  var logBase = page.getAttribute("data-log");
  function fetchBytes(rel) {
    /* Revalidated every time: the check is of what the site serves now, not of a copy. */
    return fetch(logBase + rel, { credentials: "omit", cache: "no-cache" })
      .then(function (r) {
        if (!r.ok) throw new Error(fill(text("missing"), { file: rel, status: r.status }));
        return r.arrayBuffer();
      })
      .then(function (b) { return new Uint8Array(b); });
  }

  /* ---- The checkpoint (C2SP tlog-checkpoint in a C2SP signed note) ---- */
  function publicKey() {
    var raw = fromBase64(page.getAttribute("data-key") || "");
    if (raw.length === 33 && raw[0] === 1) raw = raw.slice(1);
    if (raw.length !== 32) throw new Error(text("no-key"));
    return raw;
  }
  function openCheckpoint(bytes) {
    var note = new TextDecoder().decode(bytes);
    var split = note.indexOf("\n\n");
    if (split < 0) throw new Error(text("bad-note"));
    var body = note.slice(0, split + 1);
    var lines = body.split("\n");
    var origin = page.getAttribute("data-origin");
    if (lines[0] !== origin) throw new Error(fill(text("bad-origin"), { origin: lines[0] }));
    if (!/^\d+$/.test(lines[1])) throw new Error(text("bad-note"));
    var size = Number(lines[1]);
    var root = fromBase64(lines[2]);
    if (root.length !== 32 || !Number.isSafeInteger(size)) throw new Error(text("bad-note"));
    var key = publicKey();
    var prefix = "\u2014 " + origin + " ";
    var sigs = note.slice(split + 2).split("\n").filter(function (l) { return l.indexOf(prefix) === 0; });
    var expectedId = sha256(concat([encoder.encode(origin + "\n"), ONE, key])).then(function (h) { return h.slice(0, 4); });
    var imported = subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
    return Promise.all([expectedId, imported]).then(function (k) {
      var checks = sigs.map(function (l) {
        var sig = fromBase64(l.slice(prefix.length));
        if (sig.length !== 68 || !equal(sig.slice(0, 4), k[0])) return Promise.resolve(false);
        return subtle.verify({ name: "Ed25519" }, k[1], sig.slice(4), encoder.encode(body));
      });
      return Promise.all(checks);
    }).then(function (verified) {
      if (verified.indexOf(true) < 0) throw new Error(text("bad-signature"));
      return { size: size, root: root };
    });
  }

  /* ---- Entries ---- */
  function entriesOf(bundle, expected) {
    var out = [], at = 0;
    while (at < bundle.length) {
      if (at + 2 > bundle.length) throw new Error(text("bad-bundle"));
      var len = (bundle[at] << 8) | bundle[at + 1];
      at += 2;
      if (at + len > bundle.length) throw new Error(text("bad-bundle"));
      out.push(bundle.slice(at, at + len));
      at += len;
    }
    if (out.length !== expected) throw new Error(text("bad-bundle"));
    return out;
  }
  function decodeEntry(e) {
    if ((e.length !== 39 && e.length !== 43) || e[0] !== 1) return null;
    var kind = e[1];
    return {
      kind: kind === 1 ? "counted" : kind === 2 ? "uncounted" : kind === 3 ? "offline" : null,
      reason: REASONS[e[2]] || ("code " + e[2]),
      commitment: hex(e.slice(7, 39)),
      size: e.length === 43 ? ((e[39] << 24) >>> 0) + (e[40] << 16) + (e[41] << 8) + e[42] : 1
    };
  }
  /* counted − uncounted + offline; an uncount of nothing or a double count is an anomaly. */
  function tally(entries) {
    var live = {}, t = { count: 0, counted: 0, uncounted: 0, offline: 0, anomalies: 0 };
    entries.forEach(function (e) {
      if (!e || !e.kind) { t.anomalies++; return; }
      if (e.kind === "uncounted") {
        if (!(e.commitment in live)) { t.anomalies++; return; }
        t.count -= live[e.commitment];
        delete live[e.commitment];
        t.uncounted++;
        return;
      }
      if (e.commitment in live) { t.anomalies++; return; }
      live[e.commitment] = e.size;
      t.count += e.size;
      if (e.kind === "offline") t.offline += e.size; else t.counted++;
    });
    return t;
  }

  /* ---- The receipt's proof (C2SP tlog-proof; Cahier puts the entry in "extra") ---- */
  function parseProof(bytes) {
    var all = new TextDecoder().decode(bytes);
    var split = all.indexOf("\n\n");
    if (split < 0) throw new Error("no checkpoint");
    var lines = all.slice(0, split).split("\n");
    if (lines.shift() !== "c2sp.org/tlog-proof@v1") throw new Error("not a tlog-proof");
    var extra = null;
    if (lines[0] && lines[0].indexOf("extra ") === 0) extra = fromBase64(lines.shift().slice(6));
    var m = /^index (0|[1-9]\d*)$/.exec(lines.shift() || "");
    if (!m || !extra) throw new Error("no index or entry");
    var hashes = lines.map(function (l) {
      var h = fromBase64(l);
      if (h.length !== 32) throw new Error("a proof hash is not 32 bytes");
      return h;
    });
    return { index: Number(m[1]), entry: extra, hashes: hashes, checkpoint: encoder.encode(all.slice(split + 2)) };
  }
  /* RFC 9162, 2.1.3.2: the root an inclusion proof gives for leaf `index` of `size`. */
  function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) return Promise.resolve(null);
    var fn = index, sn = size - 1, i = 0;
    function step(r) {
      if (i === proof.length) return sn === 0 ? r : null;
      if (sn === 0) return null;
      var p = proof[i++];
      var next;
      if (fn % 2 === 1 || fn === sn) {
        next = nodeHash(p, r);
        if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        next = nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
      return next.then(step);
    }
    return leafHash(leaf).then(step);
  }
  /* The receipt's proof, fetched with the commitment alone: its checkpoint is the collective's,
     its entry is this signature's, counted, in that tree; and that tree is a prefix of today's.
     Resolves to the message, rejects with the reason; null when the site has no proof for it. */
  function checkProof(mine, head, leaves) {
    var rel = "receipt/" + mine.slice(0, 2) + "/" + mine;
    return fetch(logBase + rel, { credentials: "omit", cache: "no-cache" }).then(function (r) {
      if (r.status === 404 || r.status === 403) return null;
      if (!r.ok) throw new Error(fill(text("missing"), { file: rel, status: r.status }));
      return r.arrayBuffer().then(function (b) {
        var proof = parseProof(new Uint8Array(b));
        var e = decodeEntry(proof.entry);
        if (!e || e.kind !== "counted" || e.commitment !== mine) throw new Error("the entry is not this signature's");
        return openCheckpoint(proof.checkpoint).then(function (signed) {
          return rootFromInclusion(proof.index, signed.size, proof.entry, proof.hashes).then(function (root) {
            if (!root || !equal(root, signed.root)) throw new Error("the inclusion proof does not give its checkpoint");
            /* Integrated after this page read the log (the checkpoint is cached for seconds):
               valid, just newer than what it can compare with. */
            if (signed.size > head.size) return null;
            return treeHash(leaves, 0, signed.size);
          }).then(function (prefix) {
            if (prefix === null) return fill(text("proof-newer"), { index: proof.index, size: signed.size });
            if (!equal(prefix, signed.root)) throw new Error("its checkpoint is not a prefix of today's log");
            var link = document.querySelector("[data-check-proof]");
            if (link) {
              link.href = URL.createObjectURL(new Blob([new Uint8Array(b)], { type: "text/plain" }));
              link.hidden = false;
            }
            return fill(text("proof-ok"), { index: proof.index, size: signed.size });
          });
        });
      });
    });
  }

  function receiptCommitment(secret) {
    var petition = encoder.encode(page.getAttribute("data-petition"));
    var len = new Uint8Array([petition.length >> 8, petition.length & 255]);
    return sha256(concat([encoder.encode(COMMITMENT_DOMAIN), ZERO, len, petition, secret])).then(hex);
  }

  function remembered(origin) {
    try { return JSON.parse(localStorage.getItem("cahier-log:" + origin) || "null"); } catch (e) { return null; }
  }
  function remember(origin, head) {
    try { localStorage.setItem("cahier-log:" + origin, JSON.stringify({ size: head.size, root: toBase64(head.root) })); } catch (e) { /* private mode */ }
  }

  function run() {
    if (!subtle) { verdict("fail", text("no-crypto")); return; }
    var origin = page.getAttribute("data-origin");
    var secretText = new URLSearchParams(window.location.hash.replace(/^#/, "")).get("r");
    var secret = null;
    if (secretText && /^[A-Za-z0-9_-]{43}$/.test(secretText)) secret = fromBase64(secretText);
    verdict("wait", text("working"));
    var failed = false;
    function check(name, ok, message) { if (!report(name, ok, message)) failed = true; }
    var head, leaves, entries;
    fetchBytes("checkpoint").then(openCheckpoint).then(function (h) {
      head = h;
      check("signature", true, fill(text("signed"), { size: h.size }));
      var bundles = tilesOf(head.size).map(function (t) {
        return fetchBytes("tile/entries/" + t.suffix).then(function (b) { return entriesOf(b, t.width); });
      });
      return Promise.all(bundles);
    }).then(function (bundles) {
      var raw = [].concat.apply([], bundles);
      entries = raw.map(decodeEntry);
      return Promise.all(raw.map(leafHash));
    }).then(function (hashes) {
      leaves = hashes;
      return treeHash(leaves, 0, leaves.length);
    }).then(function (root) {
      check("tree", equal(root, head.root), equal(root, head.root) ? fill(text("tree-ok"), { size: head.size }) : text("tree-bad"));
      /* Every tile, level by level, against the hashes recomputed from the entries. */
      var level = 0, hashes = leaves, bad = [];
      function next() {
        var tiles = tilesOf(hashes.length);
        if (!tiles.length) return Promise.resolve();
        var current = hashes, l = level;
        var reads = tiles.map(function (t) {
          var want = concat(current.slice(t.index * WIDTH, t.index * WIDTH + t.width));
          return fetchBytes("tile/" + l + "/" + t.suffix).then(function (got) {
            if (!equal(got, want)) bad.push("tile/" + l + "/" + t.suffix);
          }, function () { bad.push("tile/" + l + "/" + t.suffix); });
        });
        return Promise.all(reads).then(function () { return nextLevel(current); }).then(function (up) {
          hashes = up;
          level++;
          return next();
        });
      }
      return next().then(function () {
        check("tiles", bad.length === 0, bad.length === 0 ? text("tiles-ok") : fill(text("tiles-bad"), { files: bad.join(", ") }));
      });
    }).then(function () {
      /* The view this browser saw before: the log may only have grown from it. */
      var seen = remembered(origin);
      if (!seen) { check("consistency", true, text("first-visit")); return; }
      if (seen.size > head.size) { check("consistency", false, fill(text("shrank"), { was: seen.size, now: head.size })); return; }
      return treeHash(leaves, 0, seen.size).then(function (old) {
        var same = toBase64(old) === seen.root;
        check("consistency", same, same ? fill(text("grew"), { was: seen.size, now: head.size }) : fill(text("forked"), { was: seen.size }));
      });
    }).then(function () {
      var t = tally(entries);
      check("entries", t.anomalies === 0, t.anomalies === 0 ? fill(text("tally"), t) : fill(text("anomalies"), t));
      var countUrl = page.getAttribute("data-count-api");
      var published = fetch(countUrl, { credentials: "omit", cache: "no-cache", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); });
      return published.then(function (c) {
        check("count", c.count === t.count, fill(text(c.count === t.count ? "count-ok" : "count-bad"), { log: t.count, published: c.count }));
      }, function () { check("count", false, text("count-unavailable")); });
    }).then(function () {
      if (!secret) return "none";
      return receiptCommitment(secret).then(function (mine) {
        return checkProof(mine, head, leaves).then(function (message) {
          if (message) check("proof", true, message);
          return mine;
        }, function (e) {
          check("proof", false, fill(text("proof-bad"), { why: e.message || String(e) }));
          return mine;
        });
      }).then(function (mine) {
        var state = "absent", reason = "";
        entries.forEach(function (e) {
          if (!e || e.commitment !== mine) return;
          if (e.kind === "counted") state = "counted";
          if (e.kind === "uncounted") { state = "uncounted"; reason = page.getAttribute("data-text-reason-" + e.reason) || e.reason; }
        });
        if (state === "counted") check("receipt", true, text("receipt-counted"));
        else if (state === "uncounted") check("receipt", false, fill(text("receipt-uncounted"), { reason: reason }));
        else report("receipt", false, text("receipt-absent"));
        return state;
      });
    }).then(function (mine) {
      if (!failed) remember(origin, head);
      if (failed) verdict("fail", text("verdict-fail"));
      else if (mine === "absent") verdict("wait", text("verdict-pending"));
      else verdict("ok", text(mine === "counted" ? "verdict-counted" : "verdict-ok"));
    }).catch(function (e) {
      report("log", false, e.message || String(e));
      verdict("fail", text("verdict-fail"));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run); else run();
})();
