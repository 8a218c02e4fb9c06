// pbxwatch wallboard: live figures over Server-Sent Events (/events).
// No build step, no dependencies; builds the table with DOM calls only.
"use strict";
(function () {
  var table = document.getElementById("queues");
  if (!table) { return; }
  var w = JSON.parse(document.getElementById("words").textContent);
  var live = document.getElementById("live-status");
  var ami = document.getElementById("ami-status");
  var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
    return th.textContent;
  });

  function setLive(up) {
    live.textContent = up ? live.dataset.ok : live.dataset.down;
    live.className = "banner " + (up ? "ok" : "down");
    live.setAttribute("role", up ? "status" : "alert");
  }

  function cell(tag, text, cls, label) {
    var el = document.createElement(tag);
    el.textContent = text;
    if (cls) { el.className = cls; }
    if (label) { el.dataset.label = label; }
    return el;
  }

  // the PBX chosen (?pbx=id): the stream has every PBX's queues
  var onlyPbx = new URLSearchParams(window.location.search).get("pbx");

  function row(q, manyPbxs) {
    var tr = document.createElement("tr");
    tr.dataset.queue = q.id;
    if (q.unstaffed) { tr.className = "unstaffed"; }
    var th = document.createElement("th");
    th.scope = "row";
    th.appendChild(cell("span", q.queue, "qname"));
    th.appendChild(document.createTextNode(" "));
    th.appendChild(cell("span", q.unit_name, "unit"));
    if (manyPbxs) {
      th.appendChild(document.createTextNode(" "));
      th.appendChild(cell("span", w.pbx + " " + q.pbx, "pbx"));
    }
    if (q.unstaffed) {
      th.appendChild(document.createTextNode(" "));
      th.appendChild(cell("span", w.unstaffed, "badge red"));
    } else if (!q.in_phone_hours) {
      th.appendChild(document.createTextNode(" "));
      th.appendChild(cell("span", w.closed, "badge grey"));
    }
    tr.appendChild(th);
    var sl = q.service_level === null ? "—" : Math.round(q.service_level * 100) + " %";
    var m = q.members;
    var values = [
      [String(q.waiting), "num", "waiting"],
      [Math.round(q.longest_wait_seconds) + " " + w.seconds, "num", "longest"],
      [sl, "num", "sl"],
      [String(q.answered_today), "num", "answered"],
      [String(q.abandoned_today), "num", "abandoned"],
      [m.available + " " + w.available + " · " + m.in_call + " " + w.in_call + " · " +
       m.paused + " " + w.paused + " · " + m.logged_out + " " + w.logged_out, "", "members"]
    ];
    values.forEach(function (v, i) {
      var td = cell("td", v[0], v[1], heads[i + 1]);
      td.dataset.k = v[2];
      tr.appendChild(td);
    });
    return tr;
  }

  function fmt(n) { return (Math.round(n * 100) / 100).toFixed(2) + " " + w.seconds; }

  function render(data) {
    var body = document.createElement("tbody");
    var many = (data.pbxs || []).length > 1;
    data.queues.forEach(function (q) {
      if (onlyPbx === null || q.pbx === onlyPbx) { body.appendChild(row(q, many)); }
    });
    table.replaceChild(body, table.tBodies[0]);
    ami.hidden = !!data.ami_up;
    var h = data.health;
    if (!h) { return; }
    var shown = {
      ami_up: h.ami_up ? w.up : w.down,
      last_event_at: h.last_event_at || "—",
      event_lag_seconds: fmt(h.event_lag_seconds),
      clock_offset_seconds: fmt(h.clock_offset_seconds),
      store_backlog: String(h.store_backlog),
      outbox_backlog: String(h.outbox_backlog),
      gaps_today: h.gaps_today === null ? "—" : String(h.gaps_today),
      calls_in_progress: String(h.calls_in_progress)
    };
    Object.keys(shown).forEach(function (k) {
      var dd = document.querySelector('[data-h="' + k + '"]');
      if (dd) { dd.textContent = shown[k]; }
    });
    var upEl = document.querySelector('[data-h="ami_up"]');
    if (upEl) { upEl.className = h.ami_up ? "good" : "bad"; }
    (h.pbxs || []).forEach(function (p) {
      var dd = document.querySelector('[data-hp="' + p.pbx + '"]');
      if (dd) {
        dd.textContent = p.ami_up ? w.up : w.down;
        dd.className = p.ami_up ? "good" : "bad";
      }
    });
  }

  var source = new EventSource("/events");
  source.addEventListener("open", function () { setLive(true); });
  source.addEventListener("error", function () { setLive(false); });
  // the server ended the stream: logged out or idle too long; to the login
  source.addEventListener("session", function () {
    source.close();
    window.location.reload();
  });
  source.addEventListener("wallboard", function (e) {
    setLive(true);
    render(JSON.parse(e.data));
  });
  window.pbxwatchLive = source;
}());
