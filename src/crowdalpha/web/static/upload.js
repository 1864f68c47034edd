// Drag-and-drop upload of a predictions file: POST the raw file to /me/submissions/<model id>
// with the page's CSRF token, show the receipt or the server's refusal, then reload the list.
(function () {
  "use strict";
  var section = document.getElementById("upload");
  if (!section) { return; }
  var zone = document.getElementById("dropzone");
  var picker = document.getElementById("upload-file");
  var result = document.getElementById("upload-result");
  var model = document.getElementById("upload-model");

  function show(text, failed) {
    result.textContent = text;
    result.className = failed ? "error" : "notice";
  }

  function upload(file) {
    show("Uploading " + file.name + "…", false);
    fetch("/me/submissions/" + encodeURIComponent(model.value), {
      method: "POST",
      headers: {
        "X-CSRF-Token": section.dataset.csrf,
        "X-Filename": encodeURIComponent(file.name),
        "Content-Type": "application/octet-stream"
      },
      body: file,
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      if (!answer.ok) {
        show(answer.body.error ? answer.body.error.message : "upload refused", true);
        return;
      }
      var receipt = answer.body;
      show("Accepted " + receipt.filename + " for round " + receipt.round_number + " (" +
           receipt.status.replace("_", "-") + "), SHA-256 " + receipt.sha256, false);
      window.setTimeout(function () { window.location.reload(); }, 800);
    }).catch(function (error) { show("upload failed: " + error, true); });
  }

  zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("over");
    var files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) { upload(files[0]); }
  });
  picker.addEventListener("change", function () { if (picker.files.length) { upload(picker.files[0]); } });
}());
