/* The pickup-time picker: "as soon as possible", a day, and a handful of time chips.
 * The server renders it; this keeps it true while it is on screen, asking for
 * one day at a time (/pickup-times/?day=YYYY-MM-DD). Off screen, or in a
 * background tab, it asks nothing. */
window.pickupPicker = (function () {
  "use strict";

  var picker = document.getElementById("pickup-picker");
  if (!picker) { return null; }
  var chipsShown = Number(picker.dataset.chips) || 8;
  var dayTimes = null;     // the chosen day's times, once fetched
  var shownDay = null;     // the day those chips are of
  var firstShown = 0;      // index in dayTimes of the first chip shown
  var fetchedAt = 0;       // when the picker was last brought up to date
  var refreshAfter = 30;   // seconds, as the server says
  var onScreen = false;
  var timer = null;
  var asap = picker.querySelector("[data-asap]");
  var chips = picker.querySelector(".time-chips");
  var earlier = picker.querySelector(".earlier-times");
  var later = picker.querySelector(".later-times");

  function chosenDay() {
    var day = picker.querySelector('input[name="pickup_day"]:checked');
    return day ? day.value : "";
  }

  function chosenTime() {
    var time = picker.querySelector('input[name="pickup_at"]:checked');
    return time ? time.value : "";
  }

  /* A chip; ``time.left`` ("2 left") is set by the server only when a time is nearly full,
     with ``time.accessible_name`` saying it in a sentence for screen readers. */
  function chip(name, value, label, checked, time) {
    var wrapper = document.createElement("label");
    wrapper.className = "chip";
    var input = document.createElement("input");
    input.type = "radio";
    input.name = name;
    input.value = value;
    input.checked = checked;
    var words = document.createElement("span");
    words.textContent = label;
    if (time && time.left) {
      var left = document.createElement("small");
      left.className = "places-left";
      left.textContent = time.left;
      words.append(left);
      input.setAttribute("aria-label", time.accessible_name);
    }
    wrapper.append(input, words);
    return wrapper;
  }

  /* Chips are rebuilt on every refresh; a keyboard or screen-reader user on one stays on it. */
  function replaceChips(container, newChips) {
    var focused = container.contains(document.activeElement) ? document.activeElement.value : null;
    container.replaceChildren.apply(container, newChips);
    if (focused === null) { return; }
    var same = Array.prototype.filter.call(container.querySelectorAll("input"), function (input) {
      return input.value === focused;
    })[0];
    (same || container.querySelector("input") || picker.querySelector("[data-asap]")).focus();
  }

  function showChips(keep) {
    if (!dayTimes) { return; }
    var start = Math.max(0, Math.min(firstShown, dayTimes.length - 1));
    firstShown = start;
    replaceChips(chips, dayTimes.slice(start, start + chipsShown).map(function (time) {
      return chip("pickup_at", time.value, time.label, time.value === keep, time);
    }));
    earlier.hidden = start === 0;
    later.hidden = start + chipsShown >= dayTimes.length;
    if (!chosenTime()) { asap.checked = true; }  // the chosen time is gone: back to the earliest
  }

  function show(data) {
    var keep = chosenTime();
    var wasAsap = asap.checked;
    picker.querySelector(".no-times").hidden = Boolean(data.earliest);
    picker.querySelector(".picker-choices").hidden = !data.earliest;
    if (data.earliest) {
      asap.value = data.earliest.value;
      picker.querySelector(".asap-time").textContent = data.earliest.label;
    }
    var days = picker.querySelector(".picker-days .chips");
    replaceChips(days, data.days.map(function (day) {
      return chip("pickup_day", day.value, day.label, day.value === data.day);
    }));
    if (shownDay !== data.day) { firstShown = 0; }
    shownDay = data.day;
    dayTimes = data.times;
    // The page of chips holding the chosen time stays in view.
    var index = dayTimes.map(function (time) { return time.value; }).indexOf(keep);
    if (index >= 0 && !wasAsap) { firstShown = Math.floor(index / chipsShown) * chipsShown; }
    showChips(wasAsap ? "" : keep);
    if (wasAsap) { asap.checked = true; }
    refreshAfter = data.refresh_after;
  }

  /* One question at a time: a new one (another day chosen) cancels the one
   * under way, whose answer would otherwise land last and show the other
   * day's times under the day now chosen. */
  var asking = null;

  function refresh() {
    clearTimeout(timer);
    if (asking) { asking.abort(); }
    var mine = asking = new AbortController();
    var url = "/pickup-times/" + (chosenDay() ? "?day=" + encodeURIComponent(chosenDay()) : "");
    return fetch(url, { credentials: "same-origin", signal: mine.signal })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (mine.signal.aborted) { return; }
        fetchedAt = Date.now(); show(data); schedule();
      })
      .catch(function () { if (!mine.signal.aborted) { schedule(10); } });
  }

  function visible() { return onScreen && document.visibilityState === "visible"; }

  function schedule(seconds) {
    clearTimeout(timer);
    if (!visible()) { return; }
    var due = seconds ? seconds * 1000 : Math.max(0, fetchedAt + refreshAfter * 1000 - Date.now());
    timer = setTimeout(refresh, due);
  }

  picker.addEventListener("change", function (event) {
    if (event.target.name === "pickup_day") { refresh(); }
  });
  later.addEventListener("click", function () { firstShown += chipsShown; showPage(later); });
  earlier.addEventListener("click", function () { firstShown -= chipsShown; showPage(earlier); });

  /* A page of chips from the day already fetched; the server rendered only the first. */
  function showPage(button) {
    var wanted = firstShown;  // a refresh on the way keeps the chosen time in view; the button asked for this page
    var go = dayTimes ? Promise.resolve() : refresh();
    go.then(function () {
      firstShown = wanted;
      showChips(chosenTime());
      if (button.hidden) { (button === later ? earlier : later).focus(); }  // focus never falls to the page
    });
  }

  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      onScreen = entries[entries.length - 1].isIntersecting;
      if (onScreen) { schedule(); } else { clearTimeout(timer); }
    }).observe(picker);
  } else {
    onScreen = true;
  }
  fetchedAt = Date.now();  // the server rendered it just now
  shownDay = chosenDay();
  document.addEventListener("visibilitychange", function () {
    if (visible()) { schedule(); } else { clearTimeout(timer); }
  });

  /* The chosen pickup time in words, for the review step. */
  function describe() {
    if (asap.checked) { return asap.parentNode.textContent.replace(/\s+/g, " ").trim(); }
    var day = picker.querySelector('input[name="pickup_day"]:checked');
    var time = picker.querySelector('input[name="pickup_at"]:checked');
    // The time's own words, without "2 left".
    return (day ? day.parentNode.textContent + " " : "") + (time ? time.nextElementSibling.firstChild.textContent : "");
  }

  return {
    value: chosenTime,
    describe: describe,
    refresh: refresh,
    /* Calls ``then`` with a pickup time that is still true: "as soon as possible"
       means the earliest time when the customer confirms, asked of the server then.
       The time shown may have stopped being offered a moment ago (the notice
       runs out at a slot's edge), and an order for it would be refused. */
    fresh: function (then) {
      if (asap.checked) {
        refresh().then(function () { then(chosenTime()); });
      } else {
        then(chosenTime());
      }
    }
  };
})();
