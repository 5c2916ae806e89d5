/* Cahier default theme: live counts, the sign form (fetch + per-field errors), and the
   confirm / erase pages (token read from the URL fragment, posted only on a click).
   Every text comes from data-* attributes written by the templates from i18n/<lang>.toml. */
(function () {
  "use strict";
  var started = (window.performance && performance.now) ? performance.now() : Date.now();
  function now() { return (window.performance && performance.now) ? performance.now() : Date.now(); }
  function fill(text, vars) {
    return String(text || "").replace(/\{(\w+)\}/g, function (m, k) { return k in vars ? vars[k] : m; });
  }
  function fmt(n, lang) {
    try { return new Intl.NumberFormat(lang).format(n); } catch (e) { return String(n); }
  }
  /* The goal is raised when reached, as campaign tools do: next round step above the count. */
  function nextGoal(count, goal) {
    if (count < goal) return goal;
    var steps = [100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000];
    for (var i = 0; i < steps.length; i++) if (steps[i] > count * 1.1) return steps[i];
    return Math.ceil(count * 1.5 / 1000000) * 1000000;
  }
  function fetchJson(url, opts, timeoutMs) {
    var ctrl = window.AbortController ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, timeoutMs || 8000) : null;
    opts = opts || {};
    if (ctrl) opts.signal = ctrl.signal;
    return fetch(url, opts).then(function (res) {
      if (timer) clearTimeout(timer);
      var ct = res.headers.get("Content-Type") || "";
      var body = /json/.test(ct) ? res.json().catch(function () { return null; }) : Promise.resolve(null);
      return body.then(function (data) { return { status: res.status, ok: res.ok, data: data, headers: res.headers }; });
    }, function (err) { if (timer) clearTimeout(timer); throw err; });
  }

  /* Every POST carries x-amz-content-sha256, the lowercase hex SHA-256 of the exact body bytes:
     behind CloudFront with origin access control (deploy/aws, ApiAuth=AWS_IAM) the function URL
     refuses a POST without it. The bytes hashed are the bytes sent. WebCrypto computes it in
     secure contexts; elsewhere this script does: the embed widget framed by a plain-http page is
     not a secure context (no crypto.subtle), and its signature must not be refused for that. */
  function hex(buffer) {
    var bytes = new Uint8Array(buffer), out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out;
  }
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];
  function ror(x, n) { return (x >>> n) | (x << (32 - n)); }
  /* FIPS 180-4 SHA-256 of a Uint8Array, as lowercase hex. */
  function sha256Hex(bytes) {
    var n = bytes.length, words = new Array(((n + 72) >> 6) << 4), w = new Array(64), i, j;
    for (i = 0; i < words.length; i++) words[i] = 0;
    for (i = 0; i < n; i++) words[i >> 2] |= bytes[i] << (24 - (i & 3) * 8);
    words[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
    words[words.length - 2] = Math.floor(n / 0x20000000);
    words[words.length - 1] = (n * 8) | 0;
    var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    for (j = 0; j < words.length; j += 16) {
      for (i = 0; i < 64; i++) {
        if (i < 16) { w[i] = words[j + i]; continue; }
        var x = w[i - 15], y = w[i - 2];
        w[i] = (w[i - 16] + (ror(x, 7) ^ ror(x, 18) ^ (x >>> 3)) + w[i - 7] + (ror(y, 17) ^ ror(y, 19) ^ (y >>> 10))) | 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (i = 0; i < 64; i++) {
        var t1 = (k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
        var t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
    }
    var out = "";
    for (i = 0; i < 8; i++) out += ("0000000" + (h[i] >>> 0).toString(16)).slice(-8);
    return out;
  }
  function post(url, contentType, text, timeoutMs) {
    var bytes = new TextEncoder().encode(text);
    var headers = { Accept: "application/json", "Content-Type": contentType };
    var subtle = window.crypto && window.crypto.subtle;
    var inScript = function () { return sha256Hex(bytes); };
    var digest = subtle ? subtle.digest("SHA-256", bytes).then(hex, inScript) : Promise.resolve().then(inScript);
    return digest.then(function (sum) {
      headers["x-amz-content-sha256"] = sum;
      return fetchJson(url, { method: "POST", headers: headers, body: bytes, credentials: "omit" }, timeoutMs);
    });
  }

  /* ---- Live counts ---- */
  var counts = {};
  function countFor(url) {
    if (!counts[url]) {
      counts[url] = fetchJson(url, { headers: { Accept: "application/json" }, credentials: "omit", cache: "no-cache" }, 6000)
        .then(function (r) { if (!r.ok || !r.data || typeof r.data.count !== "number") throw new Error("count"); return r.data; });
    }
    return counts[url];
  }
  /* "1 signature" / "2 signatures", by the language's rules; the invitation at 0. */
  function countText(box, n, lang) {
    /* At 0 the line invites the first signer instead of announcing a nought. */
    var zero = box.getAttribute("data-text-count-zero");
    if (n === 0 && zero) return zero;
    var one = box.getAttribute("data-text-count-one");
    var form = "other";
    try { form = new Intl.PluralRules(lang).select(n); } catch (e) { form = n === 1 ? "one" : "other"; }
    return (form === "one" && one) ? one : box.getAttribute("data-text-count");
  }
  /* "3 minutes ago" / "il y a 3 minutes", in the page's language (a date where Intl lacks it). */
  function ago(at, lang) {
    var secs = Math.max(0, Math.round((Date.now() - at) / 1000));
    var units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    for (var i = 0; i < units.length; i++) {
      if (secs >= units[i][1] || i === units.length - 1) {
        try {
          return new Intl.RelativeTimeFormat(lang, { numeric: "always" }).format(-Math.floor(secs / units[i][1]), units[i][0]);
        } catch (e) { return new Date(at).toLocaleString(lang); }
      }
    }
  }
  function showCount(box) {
    var lang = box.getAttribute("data-lang") || document.documentElement.lang;
    countFor(box.getAttribute("data-count-url")).then(function (data) {
      var goal = nextGoal(data.count, Math.max(Number(data.goal) || 0, Number(box.getAttribute("data-goal")) || 1));
      var line = box.querySelector("[data-count-line]") || box.querySelector("[data-count-mini]");
      var bar = box.querySelector("[data-progress]");
      var goalLine = box.querySelector("[data-goal-line]");
      if (line) {
        /* The number stands out: "{count} signatures" -> <strong>1 234</strong> signatures. */
        var parts = String(countText(box, data.count, lang) || "{count}").split("{count}");
        line.textContent = "";
        parts.forEach(function (part, i) {
          if (i > 0) { var strong = document.createElement("strong"); strong.textContent = fmt(data.count, lang); line.appendChild(strong); }
          if (part) line.appendChild(document.createTextNode(part));
        });
        line.hidden = false;
      }
      if (bar) { bar.max = goal; bar.value = Math.min(data.count, goal); bar.textContent = data.count + " / " + goal; bar.hidden = false; }
      if (goalLine) goalLine.textContent = fill(box.getAttribute("data-text-goal"), { goal: fmt(goal, lang) });
      var offline = Number(data.offline) || 0, offlineLine = box.querySelector("[data-offline-line]");
      if (offlineLine && offline > 0) {
        offlineLine.textContent = fill(box.getAttribute("data-text-offline"), { offline: fmt(offline, lang) });
        offlineLine.hidden = false;
      }
      var last = data.last_confirmed_at ? Date.parse(data.last_confirmed_at) : NaN, lastLine = box.querySelector("[data-last-line]");
      if (lastLine && !isNaN(last)) {
        lastLine.textContent = fill(box.getAttribute("data-text-last"), { ago: ago(last, lang) });
        lastLine.hidden = false;
      }
    }).catch(function () {
      var fb = box.querySelector("[data-count-fallback]");
      if (fb) { fb.textContent = box.getAttribute("data-text-unavailable"); fb.hidden = false; }
    });
  }

  /* ---- Public list of signers (signers/ page): names as text, never as markup ---- */
  function showSigners(box) {
    var list = box.querySelector("[data-signers-list]"), status = box.querySelector("[data-signers-status]");
    var pager = box.querySelector("[data-signers-pager]");
    var newer = box.querySelector("[data-signers-newer]"), older = box.querySelector("[data-signers-older]");
    var lang = box.getAttribute("data-lang") || document.documentElement.lang;
    function pageNo() {
      var m = /page=(\d+)/.exec(location.hash || "");
      var n = m ? parseInt(m[1], 10) : 1;
      return n >= 1 ? n : 1;
    }
    function load() {
      var n = pageNo();
      fetchJson(box.getAttribute("data-api") + n, { headers: { Accept: "application/json" }, credentials: "omit" }, 8000).then(function (r) {
        if (!r.ok || !r.data || !Array.isArray(r.data.signers)) throw new Error("signers");
        list.textContent = "";
        r.data.signers.forEach(function (s) {
          var li = document.createElement("li");
          // <bdi>: a name in another direction (or one stored before overrides were refused)
          // cannot reorder the separators and dates around it.
          var name = document.createElement("bdi");
          name.className = "signer-name";
          name.textContent = String(s.name || "");
          li.appendChild(name);
          if (s.city) {
            var city = document.createElement("bdi");
            city.textContent = String(s.city);
            li.appendChild(document.createTextNode(" — "));
            li.appendChild(city);
          }
          if (s.date) {
            var t = document.createElement("time");
            t.dateTime = s.date;
            try { t.textContent = new Date(s.date + "T12:00:00Z").toLocaleDateString(lang); } catch (e) { t.textContent = s.date; }
            li.appendChild(document.createTextNode(" · "));
            li.appendChild(t);
          }
          list.appendChild(li);
        });
        list.start = (n - 1) * (Number(r.data.per_page) || 50) + 1;
        list.hidden = r.data.signers.length === 0;
        status.textContent = r.data.signers.length ? fill(box.getAttribute("data-text-page"), { page: n }) : box.getAttribute("data-text-empty");
        newer.hidden = n <= 1;
        newer.href = "#page=" + (n - 1);
        older.hidden = !r.data.next;
        if (r.data.next) older.href = "#page=" + r.data.next;
        pager.hidden = newer.hidden && older.hidden;
      }).catch(function () {
        status.textContent = box.getAttribute("data-text-unavailable");
        list.hidden = true;
        pager.hidden = true;
      });
    }
    window.addEventListener("hashchange", load);
    load();
  }

  /* ---- Geography (petition page): an accessible bar chart, a real table, text only ---- */
  /* Département names are proper nouns, the same in every language: one table for all. */
  var DEPARTEMENTS = ("01 Ain|02 Aisne|03 Allier|04 Alpes-de-Haute-Provence|05 Hautes-Alpes|06 Alpes-Maritimes|07 Ardèche|08 Ardennes|09 Ariège|10 Aube|11 Aude|12 Aveyron|13 Bouches-du-Rhône|14 Calvados|15 Cantal|16 Charente|17 Charente-Maritime|18 Cher|19 Corrèze|2A Corse-du-Sud|2B Haute-Corse|21 Côte-d'Or|22 Côtes-d'Armor|23 Creuse|24 Dordogne|25 Doubs|26 Drôme|27 Eure|28 Eure-et-Loir|29 Finistère|30 Gard|31 Haute-Garonne|32 Gers|33 Gironde|34 Hérault|35 Ille-et-Vilaine|36 Indre|37 Indre-et-Loire|38 Isère|39 Jura|40 Landes|41 Loir-et-Cher|42 Loire|43 Haute-Loire|44 Loire-Atlantique|45 Loiret|46 Lot|47 Lot-et-Garonne|48 Lozère|49 Maine-et-Loire|50 Manche|51 Marne|52 Haute-Marne|53 Mayenne|54 Meurthe-et-Moselle|55 Meuse|56 Morbihan|57 Moselle|58 Nièvre|59 Nord|60 Oise|61 Orne|62 Pas-de-Calais|63 Puy-de-Dôme|64 Pyrénées-Atlantiques|65 Hautes-Pyrénées|66 Pyrénées-Orientales|67 Bas-Rhin|68 Haut-Rhin|69 Rhône|70 Haute-Saône|71 Saône-et-Loire|72 Sarthe|73 Savoie|74 Haute-Savoie|75 Paris|76 Seine-Maritime|77 Seine-et-Marne|78 Yvelines|79 Deux-Sèvres|80 Somme|81 Tarn|82 Tarn-et-Garonne|83 Var|84 Vaucluse|85 Vendée|86 Vienne|87 Haute-Vienne|88 Vosges|89 Yonne|90 Territoire de Belfort|91 Essonne|92 Hauts-de-Seine|93 Seine-Saint-Denis|94 Val-de-Marne|95 Val-d'Oise|971 Guadeloupe|972 Martinique|973 Guyane|974 La Réunion|975 Saint-Pierre-et-Miquelon|976 Mayotte|984 Terres australes et antarctiques françaises|986 Wallis-et-Futuna|987 Polynésie française|988 Nouvelle-Calédonie").split("|").reduce(function (m, e) {
    var i = e.indexOf(" ");
    m[e.slice(0, i)] = e.slice(i + 1);
    return m;
  }, {});
  function showGeography(box) {
    var lang = box.getAttribute("data-lang") || document.documentElement.lang;
    var names = null;
    try { names = new Intl.DisplayNames([lang], { type: "region" }); } catch (e) { names = null; }
    function country(code) {
      try { return (names && names.of(code)) || code; } catch (e) { return code; }
    }
    function departement(code) { return DEPARTEMENTS[code] ? DEPARTEMENTS[code] + " (" + code + ")" : code; }
    function chart(table, groups, label) {
      var rows = Object.keys(groups || {}).map(function (k) { return { name: label(k), n: Number(groups[k]) || 0 }; })
        .filter(function (r) { return r.n > 0; })
        .sort(function (a, b) { return b.n - a.n || a.name.localeCompare(b.name, lang); });
      var body = table.querySelector("tbody"), max = rows.length ? rows[0].n : 0;
      body.textContent = "";
      rows.forEach(function (r) {
        var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
        th.scope = "row";
        th.textContent = r.name;
        /* The bar only repeats the figure beside it: hidden from assistive technology. */
        var row = document.createElement("span"), track = document.createElement("span"), bar = document.createElement("span");
        row.className = "bar-row";
        track.className = "bar-track";
        track.setAttribute("aria-hidden", "true");
        bar.className = "bar";
        bar.style.width = Math.max(2, Math.round(r.n / max * 100)) + "%";
        track.appendChild(bar);
        var num = document.createElement("span");
        num.className = "bar-n";
        num.textContent = fmt(r.n, lang);
        row.appendChild(track);
        row.appendChild(num);
        td.appendChild(row);
        tr.appendChild(th);
        tr.appendChild(td);
        body.appendChild(tr);
      });
      table.hidden = rows.length === 0;
      return rows.length;
    }
    fetchJson(box.getAttribute("data-api"), { headers: { Accept: "application/json" }, credentials: "omit" }, 8000).then(function (r) {
      if (!r.ok || !r.data) return;
      var shown = chart(box.querySelector("[data-geo-countries]"), r.data.countries, country) +
        chart(box.querySelector("[data-geo-departements]"), r.data.departements, departement);
      if (!shown) return;
      box.querySelector("[data-geo-intro]").textContent = fill(box.getAttribute("data-text-intro"), { threshold: fmt(Number(r.data.threshold) || 0, lang) });
      var hidden = box.querySelector("[data-geo-hidden]");
      hidden.textContent = fill(box.getAttribute("data-text-hidden"), { hidden: fmt(Number(r.data.hidden) || 0, lang) });
      hidden.hidden = !(Number(r.data.hidden) > 0);
      box.hidden = false;
    }).catch(function () { /* no chart rather than a broken one */ });
  }

  /* ---- Sign form ---- */
  function clearErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-error-for]"), function (p) { p.textContent = ""; p.hidden = true; });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (el) { el.removeAttribute("aria-invalid"); });
    var general = form.querySelector("[data-form-error]");
    general.textContent = ""; general.hidden = true;
  }
  function showGeneral(form, text) {
    var general = form.querySelector("[data-form-error]");
    general.textContent = text; general.hidden = false; general.focus();
  }
  function resetCaptcha() {
    try { if (window.hcaptcha && typeof window.hcaptcha.reset === "function") window.hcaptcha.reset(); } catch (e) { /* widget gone */ }
  }
  function statusText(form, status, data) {
    if (status === 403) return form.getAttribute("data-error-captcha");
    if (status === 410 || status === 404) return form.getAttribute("data-error-closed");
    if (status === 413) return form.getAttribute("data-error-too-large");
    if (status === 429) return form.getAttribute("data-error-rate");
    if (status === 400) return form.getAttribute("data-error-invalid");
    return (data && data.title) ? form.getAttribute("data-error-generic") : form.getAttribute("data-error-generic");
  }
  /* The function's details are in English: pages in other languages show the theme's words. */
  function fieldMessage(form, p, e) {
    var own = p.getAttribute("data-message");
    if (own) return own;
    var english = /^en\b/.test(document.documentElement.lang || "");
    return (english && e.detail) ? e.detail : (form.getAttribute("data-error-field") || e.detail || "");
  }
  function showFieldErrors(form, errors) {
    var first = null;
    errors.forEach(function (e) {
      if (!e || !e.field) return;
      var p = form.querySelector('[data-error-for="' + String(e.field).replace(/"/g, "") + '"]');
      var input = form.elements[e.field];
      if (p) { p.textContent = fieldMessage(form, p, e); p.hidden = false; }
      if (input && input.setAttribute) { input.setAttribute("aria-invalid", "true"); if (!first) first = input; }
    });
    return first;
  }
  function setupForm(form) {
    var opens = Number(form.getAttribute("data-opens") || 0) * 1000;
    var closes = Number(form.getAttribute("data-closes") || 0) * 1000;
    var status = document.querySelector("[data-form-status]");
    var t = Date.now();
    if ((opens && t < opens) || (closes && t >= closes)) {
      if (status) { status.textContent = form.getAttribute(opens && t < opens ? "data-text-not-open" : "data-text-closed"); status.hidden = false; }
      form.hidden = true;
      return;
    }
    var button = form.querySelector("button[type=submit]");
    var label = button ? button.textContent : "";
    form.addEventListener("submit", function (ev) {
      if (!window.fetch || !window.URLSearchParams || !window.TextEncoder) return; /* plain form post, 303 to check-email */
      ev.preventDefault();
      clearErrors(form);
      form.elements.fill_ms.value = String(Math.round(now() - started));
      var body = new URLSearchParams();
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.disabled) return;
        if ((el.type === "checkbox" || el.type === "radio") && !el.checked) return;
        if (el.type === "submit" || el.type === "button") return;
        body.append(el.name, el.value);
      });
      if (button) { button.disabled = true; button.textContent = form.getAttribute("data-text-sending"); }
      post(form.action, "application/x-www-form-urlencoded;charset=UTF-8", body.toString(), 20000).then(function (r) {
        if (r.ok) {
          /* In the embed widget the follow-up pages cannot be framed: say it in place. */
          var done = form.hasAttribute("data-done-inline") && document.querySelector("[data-sign-done]");
          if (done) { (form.closest("[data-sign-area]") || form).hidden = true; done.hidden = false; done.focus(); return; }
          window.location.assign(form.getAttribute("data-next"));
          return;
        }
        resetCaptcha();
        var errs = (r.data && Array.isArray(r.data.errors)) ? r.data.errors : [];
        var first = showFieldErrors(form, errs);
        var text = statusText(form, r.status, r.data);
        if (r.status === 429 && r.headers.get("Retry-After")) text += " (" + r.headers.get("Retry-After") + " s)";
        showGeneral(form, text);
        if (first && first.focus) first.focus();
      }).catch(function () {
        showGeneral(form, form.getAttribute("data-error-network"));
      }).then(function () {
        if (button) { button.disabled = false; button.textContent = label; }
      });
    });
  }

  /* ---- Confirm / erase pages: the token is in the fragment, never sent by a GET ---- */
  function setupTokenPage(page) {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var token = params.get("t");
    var button = page.querySelector("[data-token-button]");
    var status = page.querySelector("[data-token-status]");
    function say(text, cls) { status.textContent = text; status.className = "status " + (cls || ""); }
    if (!token) { say(page.getAttribute("data-text-missing"), "error"); return; }
    Array.prototype.forEach.call(document.querySelectorAll("[data-keep-fragment]"), function (a) {
      a.href = a.getAttribute("href").split("#")[0] + "#t=" + encodeURIComponent(token);
    });
    button.disabled = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      say(page.getAttribute("data-text-working"));
      post(page.getAttribute("data-api"), "application/json", JSON.stringify({ token: token }), 20000).then(function (r) {
        if (r.ok) {
          say(page.getAttribute("data-text-done"), "ok");
          try { history.replaceState(null, "", window.location.pathname); } catch (e) { /* ignore */ }
          var next = page.getAttribute("data-next");
          /* The receipt's secret travels in the fragment only: never to a server or a log. */
          var receipt = r.data && typeof r.data.receipt === "string" && /^[A-Za-z0-9_-]{43}$/.test(r.data.receipt) ? r.data.receipt : "";
          if (next) window.location.replace(next + (receipt ? "#r=" + receipt : ""));
          return;
        }
        say(page.getAttribute(r.status === 410 || r.status === 404 ? "data-text-expired" : "data-text-error"), "error");
        button.disabled = r.status === 410 || r.status === 404;
      }).catch(function () {
        say(page.getAttribute("data-text-network"), "error");
        button.disabled = false;
      });
    });
  }

  /* ---- Thanks page: the receipt from the fragment, as a link the signer can keep ---- */
  function setupReceipt(box) {
    var r = new URLSearchParams(window.location.hash.replace(/^#/, "")).get("r");
    if (!r || !/^[A-Za-z0-9_-]{43}$/.test(r)) return;
    var link = box.getAttribute("data-check") + "#r=" + r;
    box.querySelector("[data-receipt-link]").href = link;
    box.querySelector("[data-receipt-url]").value = new URL(link, window.location.href).href;
    box.hidden = false;
    /* Kept out of the address bar (and so out of a shared screen or history). */
    try { history.replaceState(null, "", window.location.pathname); } catch (e) { /* ignore */ }
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-count-url]"), showCount);
    Array.prototype.forEach.call(document.querySelectorAll("[data-signers]"), showSigners);
    Array.prototype.forEach.call(document.querySelectorAll("[data-geography]"), showGeography);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-sign-form]"), setupForm);
    Array.prototype.forEach.call(document.querySelectorAll("[data-token-page]"), setupTokenPage);
    Array.prototype.forEach.call(document.querySelectorAll("[data-receipt]"), setupReceipt);
    Array.prototype.forEach.call(document.querySelectorAll("input.copy"), function (i) {
      i.addEventListener("focus", function () { i.select(); });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
