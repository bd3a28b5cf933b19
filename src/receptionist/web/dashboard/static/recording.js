// The call page's recording: tapping (or Enter on) a line of the conversation plays the audio
// from that line's time. The times come from the server (data-start-ms, the transcript's clock,
// which is the recording's clock too); nothing from the page is written as HTML.
(function () {
  "use strict";
  var audio = document.querySelector("[data-testid=recording-audio]");
  var list = document.querySelector("[data-testid=call-transcript]");
  if (!audio || !list) return;

  function seek(line) {
    var ms = parseInt(line.dataset.startMs, 10);
    if (!(ms >= 0)) return;
    var at = ms / 1000;
    if (isFinite(audio.duration) && at > audio.duration) at = audio.duration;
    audio.currentTime = at;
    var playing = audio.play();
    if (playing && playing.catch) playing.catch(function () {}); // no sound device: still seeks
    var lines = list.querySelectorAll(".bubble.current");
    for (var i = 0; i < lines.length; i++) lines[i].classList.remove("current");
    line.classList.add("current");
  }

  var lines = list.querySelectorAll(".bubble[data-start-ms]");
  for (var i = 0; i < lines.length; i++) {
    lines[i].tabIndex = 0;
    lines[i].setAttribute("role", "button");
  }
  list.addEventListener("click", function (e) {
    var line = e.target.closest(".bubble[data-start-ms]");
    if (line) seek(line);
  });
  list.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" && e.key !== " ") return;
    var line = e.target.closest(".bubble[data-start-ms]");
    if (line) { e.preventDefault(); seek(line); }
  });
})();
