// Count down the time left before an open round closes. The server gives the seconds left by its
// own clock (which may be a simulated one), so the browser's clock is only used to tick.
(function () {
  "use strict";
  var started = Date.now();
  var spans = Array.prototype.slice.call(document.querySelectorAll(".countdown[data-seconds]"));
  function format(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var days = Math.floor(s / 86400), hours = Math.floor(s % 86400 / 3600);
    var minutes = Math.floor(s % 3600 / 60), rest = s % 60;
    if (days) { return days + "d " + hours + "h"; }
    if (hours) { return hours + "h " + minutes + "m"; }
    return minutes + "m " + rest + "s";
  }
  function tick() {
    var elapsed = (Date.now() - started) / 1000;
    spans.forEach(function (span) {
      var left = Number(span.dataset.seconds) - elapsed;
      span.textContent = left > 0 ? format(left) : "closed";
    });
  }
  if (spans.length) { tick(); window.setInterval(tick, 1000); }
}());
