// recsaver view: pages the example list from /api/examples (one page at a time, filtered and sorted
// on the server). Every value is written with textContent, never as HTML: model text is untrusted.
"use strict";

(function () {
  const form = document.getElementById("filters");
  const back = document.getElementById("back");
  if (back) {  // the example page: go back to the list as it was filtered
    const saved = sessionStorage.getItem("recsaver-view-list");
    if (saved) back.href = "/" + saved;
  }
  if (!form) return;

  const table = document.getElementById("rows");
  const body = table.querySelector("tbody");
  const metrics = table.dataset.metrics ? table.dataset.metrics.split(",") : [];
  const info = document.getElementById("page-info");
  const error = document.getElementById("list-error");
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  const pageField = form.elements.namedItem("page");
  let pages = 1;
  let seq = 0;

  function params() {
    const out = new URLSearchParams();
    for (const el of form.elements) {
      if (el.name && el.value !== "") out.set(el.name, el.value);
    }
    return out;
  }

  function fromUrl() {
    const given = new URLSearchParams(location.search);
    for (const [k, v] of given) {
      const el = form.elements.namedItem(k);
      if (el) el.value = v;
    }
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function show(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(3);
    return String(value);
  }

  function render(data) {
    body.replaceChildren();
    for (const row of data.rows) {
      const tr = document.createElement("tr");
      tr.dataset.exampleId = row.example_id;
      tr.dataset.run = row.run;
      const link = document.createElement("a");
      link.href = "/example/" + encodeURIComponent(row.example_id);
      link.textContent = row.example_id;
      link.className = "example-link";
      cell(tr, "").appendChild(link);
      cell(tr, row.run + ": " + row.run_label);
      cell(tr, row.domain);
      cell(tr, show(row.gold), "num gold");
      cell(tr, show(row.pred), "num pred");
      cell(tr, row.correct === null ? "–" : (row.correct ? "yes" : "no"), "correct");
      cell(tr, row.status, "status");
      for (const m of metrics) cell(tr, show(row.metrics[m]), "num metric").dataset.metric = m;
      body.appendChild(tr);
    }
    pages = data.pages;
    info.textContent = "page " + data.page + " of " + data.pages + " · " + data.total + " rows";
    prev.disabled = data.page <= 1;
    next.disabled = data.page >= data.pages;
  }

  async function load() {
    const query = params();
    const mine = ++seq;
    history.replaceState(null, "", "?" + query.toString());
    sessionStorage.setItem("recsaver-view-list", "?" + query.toString());
    error.textContent = "";
    const response = await fetch("/api/examples?" + query.toString());
    const data = await response.json();
    if (mine !== seq) return;  // a newer request was sent meanwhile
    if (!response.ok) {
      error.textContent = data.error || ("error " + response.status);
      return;
    }
    render(data);
  }

  form.addEventListener("change", function (event) {
    if (event.target !== pageField) pageField.value = "1";
    load();
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); pageField.value = "1"; load(); });
  prev.addEventListener("click", function () { pageField.value = String(Math.max(1, Number(pageField.value) - 1)); load(); });
  next.addEventListener("click", function () { pageField.value = String(Math.min(pages, Number(pageField.value) + 1)); load(); });
  fromUrl();
  load();
})();
