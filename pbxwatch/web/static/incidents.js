// pbxwatch incidents feed: the newest incidents, live over Server-Sent Events
// (/events/incidents: sent again whenever the feed changed).
"use strict";
(function () {
  var table = document.getElementById("incidents");
  if (!table) { return; }
  var live = document.getElementById("live-status");

  function setLive(up) {
    live.textContent = up ? live.dataset.ok : live.dataset.down;
    live.className = "banner " + (up ? "ok" : "down");
  }

  function td(text) { var el = document.createElement("td"); el.textContent = text; return el; }

  function render(items) {
    var body = document.createElement("tbody");
    items.forEach(function (i) {
      var tr = document.createElement("tr");
      [i.started_at, i.kind, i.state, i.unit || "—", i.extension || "—", i.queue || "—"]
        .forEach(function (v) { tr.appendChild(td(v)); });
      var last = document.createElement("td");
      if (i.call_id) {
        var a = document.createElement("a");
        a.href = "/calls/" + encodeURIComponent(i.call_id);
        a.textContent = i.call_id;
        last.appendChild(a);
      } else { last.textContent = "—"; }
      tr.appendChild(last);
      body.appendChild(tr);
    });
    if (items.length) { table.replaceChild(body, table.tBodies[0]); }
  }

  var source = new EventSource("/events/incidents");
  source.addEventListener("open", function () { setLive(true); });
  source.addEventListener("error", function () { setLive(false); });
  source.addEventListener("incidents", function (e) {
    setLive(true);
    render(JSON.parse(e.data));
  });
  // the server ended the stream: logged out or idle too long; to the login
  source.addEventListener("session", function () {
    source.close();
    window.location.reload();
  });
  window.pbxwatchIncidents = source;
}());
