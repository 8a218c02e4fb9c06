// pbxwatch unit page: the callbacks' countdowns tick on (every 30 s) from
// the PBX time the page was made at; an open one past its deadline turns overdue.
"use strict";
(function () {
  var root = document.getElementById("callbacks");
  if (!root) { return; }
  var cells = root.querySelectorAll("td.countdown[data-due-in]");
  var loaded = Date.now();

  function fmt(s) {
    s = Math.floor(Math.abs(s));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) { return d + " d " + h + " h"; }
    if (h) { return h + " h " + (m < 10 ? "0" : "") + m + " min"; }
    return m + " min";
  }

  function tick() {
    var gone = (Date.now() - loaded) / 1000;
    cells.forEach(function (td) {
      if (td.dataset.dueIn === "") { return; }
      var left = parseFloat(td.dataset.dueIn) - gone;
      td.textContent = (left >= 0 ? root.dataset.leftIn : root.dataset.lateBy).replace("{t}", fmt(left));
      var row = td.parentElement;
      if (left < 0 && row.dataset.state === "pending") {
        row.dataset.state = "overdue";
        var badge = row.querySelector(".badge");
        badge.textContent = root.dataset.overdue;
        badge.className = "badge red";
      }
    });
  }
  setInterval(tick, 30000);
})();
