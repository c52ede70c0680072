// Search every clause of every stored version, in the page: no server, no network.
// Results are built with textContent only; nothing from tracked pages becomes markup.
(function () {
  "use strict";
  var data = window.TOS_SEARCH;
  var form = document.querySelector("main form");
  var input = document.getElementById("q");
  var status = document.getElementById("status");
  var list = document.getElementById("results");
  var LIMIT = 200;

  function fold(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/ß/g, "ss");
  }

  var folded = data ? data.clauses.map(function (c) { return fold(c[4]); }) : [];

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }

  function link(href, text) {
    var a = el("a", text);
    a.href = href;
    return a;
  }

  function day(iso) { return iso.slice(0, 10); }

  function marked(text, words) {
    // Wrap each match of a query word in <mark>, building nodes, never HTML. Matching
    // runs on the folded text; `origin` maps each folded character back to the
    // original one, since folding can change lengths ("…" becomes "...").
    var folded = "", origin = [];
    for (var i = 0; i < text.length; i++) {
      var piece = fold(text[i]);
      for (var k = 0; k < piece.length; k++) { folded += piece[k]; origin.push(i); }
    }
    origin.push(text.length);
    var out = document.createDocumentFragment();
    var at = 0, from = 0;
    while (from < folded.length) {
      var best = -1, len = 0;
      words.forEach(function (w) {
        var found = folded.indexOf(w, from);
        if (found !== -1 && (best === -1 || found < best)) { best = found; len = w.length; }
      });
      if (best === -1) { break; }
      var start = origin[best], end = origin[best + len - 1] + 1;
      if (start >= at) {
        if (start > at) { out.appendChild(document.createTextNode(text.slice(at, start))); }
        out.appendChild(el("mark", text.slice(start, end)));
        at = end;
      }
      from = best + len;
    }
    if (at < text.length) { out.appendChild(document.createTextNode(text.slice(at))); }
    return out;
  }

  function search(query) {
    list.textContent = "";
    var words = fold(query).split(/\s+/).filter(Boolean);
    if (!data) { status.textContent = "The search index did not load."; return; }
    if (!words.length) { status.textContent = "Type words to find; every clause of every stored version is searched."; return; }
    var hits = [];
    for (var i = 0; i < folded.length; i++) {
      var text = folded[i];
      if (words.every(function (w) { return text.indexOf(w) !== -1; })) { hits.push(data.clauses[i]); }
    }
    // Current clauses first, then by document and first appearance.
    hits.sort(function (a, b) {
      var da = data.documents[a[0]], db = data.documents[b[0]];
      var ca = a[2] === da.versions.length - 1 ? 0 : 1, cb = b[2] === db.versions.length - 1 ? 0 : 1;
      return ca - cb || a[0] - b[0] || a[1] - b[1];
    });
    status.textContent = hits.length + " clause" + (hits.length === 1 ? "" : "s") + " found" +
      (hits.length > LIMIT ? "; showing the first " + LIMIT : "") + ".";
    hits.slice(0, LIMIT).forEach(function (hit) {
      var doc = data.documents[hit[0]];
      var first = doc.versions[hit[1]], last = doc.versions[hit[2]];
      var item = el("li");
      var head = el("div");
      head.appendChild(link(doc.page, doc.title));
      head.appendChild(document.createTextNode(" · " + doc.service + (hit[3] ? " · in “" + hit[3] + "”" : "")));
      item.appendChild(head);
      var quote = el("div", "", "quote");
      quote.appendChild(marked(hit[4], words));
      item.appendChild(quote);
      var where = el("div", "", "where");
      where.appendChild(document.createTextNode("From "));
      where.appendChild(link(first.change || first.text, day(first.at)));
      if (hit[2] === doc.versions.length - 1) {
        where.appendChild(document.createTextNode(" to now (current version)"));
      } else {
        var gone = doc.versions[hit[2] + 1];
        where.appendChild(document.createTextNode(" until "));
        where.appendChild(link(last.text, day(last.at)));
        where.appendChild(document.createTextNode("; changed or removed "));
        where.appendChild(link(gone.change || gone.text, day(gone.at)));
      }
      item.appendChild(where);
      list.appendChild(item);
    });
  }

  var query = new URLSearchParams(window.location.search).get("q") || "";
  input.value = query;
  var top = document.getElementById("q-top");
  if (top) { top.value = query; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var url = new URL(window.location.href);
    url.searchParams.set("q", input.value);
    try { window.history.replaceState(null, "", url); } catch (e) { /* file:// pages */ }
    search(input.value);
  });
  search(query);
})();
