// The live part of the Today page: listens to the server's event stream and updates the page.
// Everything from the stream is written with textContent (never as HTML): a caller's words are
// data, whatever they look like. Shapes come from <template> elements the server rendered.
(function () {
  "use strict";
  var list = document.getElementById("live-calls");
  if (!list || !window.EventSource) return;
  var prefix = document.body.dataset.prefix || "";
  var words = (document.getElementById("live-words") || {}).dataset || {};
  var state = document.getElementById("live-state");
  var recent = document.getElementById("recent-calls");
  var count = document.getElementById("live-count");

  function clone(id) {
    var t = document.getElementById(id);
    return t ? t.content.firstElementChild.cloneNode(true) : null;
  }
  function findCall(sid) {
    var rows = list.querySelectorAll("[data-call-sid]");
    for (var i = 0; i < rows.length; i++) if (rows[i].dataset.callSid === sid) return rows[i];
    return null;
  }
  function link(sid) { return prefix + "/calls/" + encodeURIComponent(sid); }
  function recount() {
    if (count) count.textContent = String(list.querySelectorAll(".live-call:not(.ended)").length);
  }
  function dropEmpty() {
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
  }
  function started(ev) {
    if (!ev.call_sid || findCall(ev.call_sid)) return;
    var row = clone("live-call-template");
    if (!row) return;
    row.dataset.callSid = ev.call_sid;
    row.querySelector(".from").textContent = ev.from_number || words.unknown || "";
    var open = row.querySelector(".open");
    open.href = link(ev.call_sid);
    var when = ev.started_at ? new Date(ev.started_at) : new Date();
    var lang = document.documentElement.lang || undefined;
    var zone = list.dataset.tz || undefined; // the tenant's time zone, as on the rest of the page
    try {
      open.textContent = isNaN(when) ? "" : when.toLocaleTimeString(lang, { hour: "numeric", minute: "2-digit", timeZone: zone });
    } catch (err) {
      open.textContent = when.toLocaleTimeString();
    }
    dropEmpty();
    list.insertBefore(row, list.firstChild);
    recount();
    return row;
  }
  function turn(ev) {
    var row = findCall(ev.call_sid) || started({ call_sid: ev.call_sid });
    if (!row) return;
    var bubble = clone("bubble-template");
    if (!bubble) return;
    bubble.classList.add(ev.speaker === "agent" ? "agent" : "caller");
    bubble.dataset.speaker = ev.speaker === "agent" ? "agent" : "caller";
    bubble.querySelector("p").textContent = ev.text || "";
    var ol = row.querySelector(".live-transcript");
    ol.appendChild(bubble);
    while (ol.children.length > 50) ol.removeChild(ol.firstChild); // a long call stays light
  }
  function ended(ev) {
    var row = findCall(ev.call_sid);
    if (row) row.remove();
    if (!list.querySelector(".live-call")) {
      var empty = document.createElement("li");
      empty.className = "empty";
      empty.dataset.testid = "live-empty";
      empty.textContent = words.empty || "";
      list.appendChild(empty);
    }
    recount();
    if (!recent) return;
    var item = clone("recent-template");
    if (!item) return;
    item.dataset.callSid = ev.call_sid;
    item.querySelector("a").href = link(ev.call_sid);
    item.querySelector(".number").textContent = (row && row.querySelector(".from") ? row.querySelector(".from").textContent : "") || words.unknown || "";
    item.querySelector(".status").textContent = words.ended || "";
    recent.insertBefore(item, recent.firstChild);
  }
  function reload() {
    if (window.htmx) window.htmx.trigger(list, "refresh-live");
  }
  function parse(e) {
    try { return JSON.parse(e.data); } catch (err) { return null; }
  }
  var source = new EventSource(list.dataset.events);
  var lost = false;
  source.addEventListener("open", function () {
    if (state) state.textContent = state.dataset.connected || "";
    if (lost) reload(); // events sent while we were away are gone: read the list again
    lost = false;
  });
  source.addEventListener("error", function () {
    lost = true;
    if (state) state.textContent = state.dataset.disconnected || "";
  });
  source.addEventListener("call_started", function (e) { var d = parse(e); if (d) started(d); });
  source.addEventListener("turn", function (e) { var d = parse(e); if (d) turn(d); });
  source.addEventListener("call_ended", function (e) { var d = parse(e); if (d) ended(d); });
  source.addEventListener("gap", reload);
  source.addEventListener("ended", function () {
    source.close();
    window.location.reload(); // the session ended: the server shows the sign-in page
  });
})();
