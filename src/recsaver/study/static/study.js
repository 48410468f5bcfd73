// Autosave: every change of the answer form is POSTed at once (same CSRF field, same server-side
// validation as a normal submit); without JavaScript the Save buttons do the same.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("answer-form");
  if (!form) { return; }
  var status = document.getElementById("save-status");
  var count = document.getElementById("progress-count");
  var errorBox = document.getElementById("error-types");
  var timer = null;

  function syncErrorTypes() {
    var faithful = form.querySelector("input[name=faithfulness][value=yes]").checked;
    errorBox.classList.toggle("inactive", faithful);
    errorBox.querySelectorAll("input").forEach(function (box) {
      if (faithful) { box.checked = false; }
      box.disabled = faithful;
    });
  }

  function save() {
    status.textContent = "Saving\u2026";
    status.classList.remove("bad");
    fetch(form.getAttribute("action"), { method: "POST", body: new FormData(form), credentials: "same-origin",
                         headers: { "X-Autosave": "1" } })
      .then(function (resp) { return resp.json().then(function (data) { return [resp.ok, data]; }); })
      .then(function (result) {
        var ok = result[0], data = result[1];
        if (ok) {
          status.textContent = data.complete ? "Saved (complete)" : "Saved (incomplete)";
          if (count) { count.textContent = data.done + " / " + data.total + " complete"; }
        } else {
          status.textContent = "Not saved: " + Object.keys(data.errors).map(function (k) {
            return k + ": " + data.errors[k]; }).join("; ");
          status.classList.add("bad");
        }
      })
      .catch(function () { status.textContent = "Not saved (connection lost); use the Save button."; status.classList.add("bad"); });
  }

  function schedule(delay) { clearTimeout(timer); timer = setTimeout(save, delay); }
  form.addEventListener("change", function (ev) {
    if (ev.target.name === "faithfulness") { syncErrorTypes(); }
    schedule(100);
  });
  form.querySelector("textarea").addEventListener("input", function () { schedule(700); });
  syncErrorTypes();
});
