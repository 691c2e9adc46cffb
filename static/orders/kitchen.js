/* Kitchen screen: renders the board, keeps it live over /ws/kitchen/, one click per step.
 * The server's board (the database, in kitchen-queue order) is the truth: every
 * staff message only says "something changed", and the screen re-reads it. */
(function () {
  "use strict";

  var text = JSON.parse(document.getElementById("kitchen-text").textContent);
  var fill = window.pickupFormat.fill;
  var clock = window.pickupFormat.clock;
  var boardElement = document.getElementById("kitchen-board");
  var connection = document.getElementById("kitchen-connection");
  var statusRegion = document.getElementById("kitchen-status");
  var sound = document.getElementById("kitchen-sound");
  var cancelDialog = document.getElementById("cancel-dialog");
  var board = JSON.parse(document.getElementById("kitchen-initial").textContent);
  var known = new Set();
  var refreshing = null;
  var SECTIONS = ["now", "next", "ready"];

  function csrfToken() {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function stepUrl(orderId, step) {
    return boardElement.dataset.stepUrl.replace("/0/start/", "/" + orderId + "/" + step + "/");
  }

  /* "4:05", or "1:02:05" past an hour. */
  function duration(seconds) {
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor(seconds % 3600 / 60);
    var rest = String(seconds % 60).padStart(2, "0");
    return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + rest : minutes + ":" + rest;
  }

  /* Time to the pickup time, or how late the kitchen (or the customer, once ready) is. */
  function countdown(pickupAt, status) {
    var seconds = Math.round((new Date(pickupAt) - Date.now()) / 1000);
    if (seconds >= 0) { return fill(text.inTime, { time: duration(seconds) }); }
    return fill(status === "ready" ? text.waiting : text.late, { time: duration(-seconds) });
  }

  /* Waiting orders are overdue past their pickup time (the kitchen is late);
     ready ones once the customer was reminded to collect (the bag is getting cold). */
  function isOverdue(item) {
    if (item.dataset.status === "ready") { return item.dataset.collectionOverdue === "true"; }
    return new Date(item.dataset.pickupAt) < Date.now();
  }

  function button(order, step, label) {
    var element = document.createElement("button");
    element.type = "button";
    element.dataset.step = step;
    element.textContent = label;
    element.onclick = function () {
      if (step === "cancel") { askWhyCancel(order); } else { takeStep(order, step, ""); }
    };
    return element;
  }

  /* One button per step the server says the order allows (order.steps): the
     order's lifecycle lives on the server only. */
  function actions(order) {
    var list = document.createElement("div");
    list.className = "kitchen-actions";
    order.steps.forEach(function (step) { list.append(button(order, step, text.steps[step])); });
    return list;
  }

  function card(order) {
    var item = document.createElement("li");
    item.className = "kitchen-order";
    item.dataset.orderId = order.id;
    item.dataset.pickupAt = order.pickup_at;
    item.dataset.status = order.status;
    item.dataset.collectionOverdue = order.collection_overdue;
    if (!known.has(order.id) && known.size) { item.classList.add("is-new"); }
    var header = document.createElement("header");
    var code = document.createElement("span");
    code.className = "kitchen-code";
    code.textContent = order.pickup_code;
    var time = document.createElement("time");
    time.dateTime = order.pickup_at;
    time.textContent = clock(order.pickup_at);
    var left = document.createElement("span");
    left.className = "kitchen-countdown";
    header.append(code, time, left);
    var lines = document.createElement("ul");
    order.lines.forEach(function (line) {
      var entry = document.createElement("li");
      var quantity = document.createElement("strong");
      quantity.textContent = line.quantity + " ×";
      entry.append(quantity, " " + line.name);
      lines.append(entry);
    });
    var status = document.createElement("p");
    status.className = "kitchen-status";
    var overdue = document.createElement("strong");
    overdue.className = "kitchen-overdue";
    status.append(order.status_display, " ", overdue);
    var problem = document.createElement("p");
    problem.className = "kitchen-problem";
    problem.setAttribute("role", "alert");
    item.append(header, lines, status, actions(order), problem);
    tick(item);
    return item;
  }

  /* Countdown and overdue mark of one card, from the clock. */
  function tick(item) {
    var overdue = isOverdue(item);
    item.classList.toggle("overdue", overdue);
    item.querySelector(".kitchen-countdown").textContent = countdown(item.dataset.pickupAt, item.dataset.status);
    item.querySelector(".kitchen-overdue").textContent = overdue ? text.overdue : "";
  }

  function render() {
    var fresh = [];
    SECTIONS.forEach(function (section) {
      var list = boardElement.querySelector('[data-section="' + section + '"]');
      var orders = board.sections[section];
      list.replaceChildren();
      document.getElementById(section + "-count").textContent = orders.length;
      if (!orders.length) {
        var empty = document.createElement("li");
        empty.className = "kitchen-empty";
        empty.textContent = text.empty;
        list.append(empty);
      }
      orders.forEach(function (order) {
        list.append(card(order));
        if (!known.has(order.id)) { fresh.push(order); }
      });
    });
    var hadOrders = known.size > 0;
    fresh.forEach(function (order) { known.add(order.id); });
    if (hadOrders && fresh.length) {
      var codes = fresh.map(function (order) { return order.pickup_code; }).join(", ");
      statusRegion.textContent = fill(text.newOrders, { codes: codes });
      if (sound.checked) { window.pickupTone(660, 0.3); }
    }
  }

  function refresh() {
    if (refreshing) { return refreshing; }
    refreshing = fetch(boardElement.dataset.boardUrl, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (data) { board = data; render(); })
      .catch(function () { /* the next message or the periodic refresh tries again */ })
      .finally(function () { refreshing = null; });
    return refreshing;
  }

  function showProblem(order, message) {
    var item = boardElement.querySelector('.kitchen-order[data-order-id="' + order.id + '"]');
    if (item) { item.querySelector(".kitchen-problem").textContent = message; }
  }

  function takeStep(order, step, reason, note) {
    var body = new URLSearchParams();
    body.set("reason", reason || "");
    body.set("note", note || "");
    fetch(stepUrl(order.id, step), {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRFToken": csrfToken() }
    }).then(function (response) { return response.json(); }).then(function (result) {
      if (result.error) { showProblem(order, result.error.message); return; }
      refresh();
    }).catch(function () { showProblem(order, text.offline); });
  }

  /* Cancelling asks why: a reason from the list (the customer reads it in
     their own language) and, if staff want, a note in their own words. */
  function askWhyCancel(order) {
    cancelDialog.querySelector(".cancel-code").textContent = order.pickup_code;
    cancelDialog.querySelector("form").reset();
    cancelDialog.onclose = function () {
      if (cancelDialog.returnValue === "cancel") {
        takeStep(order, "cancel", cancelDialog.querySelector("#cancel-reason").value,
                 cancelDialog.querySelector("#cancel-note").value.trim());
      }
    };
    cancelDialog.returnValue = "";
    cancelDialog.showModal();
  }

  // Enter after choosing a reason or typing a note means "cancel it"; Escape keeps the order.
  cancelDialog.addEventListener("keydown", function (event) {
    if (event.target.tagName === "BUTTON") { return; }
    if (event.key === "Enter") { event.preventDefault(); cancelDialog.close("cancel"); }
  });

  function showConnection(state) {
    state = state === "open" ? "live" : state;
    connection.dataset.state = state;
    connection.textContent = text[state];
  }

  sound.checked = localStorage.getItem("pickup.kitchenSound") === "on";
  sound.addEventListener("change", function () {
    localStorage.setItem("pickup.kitchenSound", sound.checked ? "on" : "off");
    if (sound.checked) { window.pickupTone(660, 0.15); }  // the click unlocks audio, and proves it works
  });
  /* On the stand-alone screen: fill the wall display, where the browser allows it. */
  var fullScreen = document.getElementById("kitchen-full-screen");
  if (fullScreen && document.fullscreenEnabled) {
    fullScreen.hidden = false;
    fullScreen.addEventListener("click", function () {
      if (document.fullscreenElement) { document.exitFullscreen(); } else { document.documentElement.requestFullscreen(); }
    });
  }

  render();
  setInterval(function () { document.querySelectorAll(".kitchen-order").forEach(tick); }, 1000);
  setInterval(refresh, 30000);  // anything a lost message missed
  window.pickupSocket("/ws/kitchen/", {
    onState: showConnection,
    onOpen: refresh,  // catch up on whatever changed while offline
    onMessage: function (message) {
      if (message.type === "kitchen.changed") { refresh(); }
    }
  });
})();
