/* Pickup customer page: places orders over the WebSocket and shows pickup alerts.
 * Protocol: docs/protocol.md. Each alert id is shown once per tab and acknowledged,
 * so a replayed or repeated push never shows twice. A visitor has no session until
 * the first order: "Confirm and pay" starts one (POST /session/), tells the
 * browser's other tabs, reconnects the socket with it, then places the order. */
(function () {
  "use strict";

  var text = JSON.parse(document.getElementById("pickup-text").textContent);
  var fill = window.pickupFormat.fill;
  var clock = window.pickupFormat.clock;
  var form = document.getElementById("order-form");
  var connection = document.getElementById("connection");
  var alertsRegion = document.getElementById("alerts");
  var shownAlerts = new Set();
  var requestCounter = 0;
  var socket = null;  // window.pickupSocket, opened at the end
  var picker = window.pickupPicker;  // static/orders/picker.js
  // The order page says whether this browser has a session; an order's own page needs one.
  var hasSession = !form || form.dataset.session === "yes";
  var SESSION_STARTED = "pickup.sessionStarted";  // localStorage: another tab started the session
  var afterReady = null;  // what to do once the socket with the new session says session.ready

  function send(message) { return socket.send(message); }

  function setConnection(state) {
    state = state === "open" ? "connected" : state;
    connection.dataset.state = state;
    connection.textContent = text[state];
  }

  var handlers = {
    "session.ready": function (message) {
      message.orders.forEach(showOrder);
      var then = afterReady;
      afterReady = null;
      if (then) { then(); }
    },
    "order.accepted": function (message) {
      showOrder(message.order);
      document.dispatchEvent(new CustomEvent("pickup:order-placed", { detail: { order: message.order } }));
      // Straight to the order's own page, which says "paid" and shows the pickup code.
      attempt(function () { sessionStorage.setItem("pickup.accepted", message.message); });
      window.location.assign("/orders/" + message.order.id + "/");
    },
    "order.updated": function (message) {
      showOrder(message.order);
      // A reply says what this tab asked for; a push makes any earlier such line stale.
      var done = "";
      if (message.request_id) { done = message.order.status === "cancelled" ? text.cancelled : text.moved; }
      document.getElementById("order-message").textContent = done;
      // The cancel button has just gone: reading goes on at what the order's state now is.
      if (message.request_id === "cancel") { document.getElementById("order-state").focus(); }
    },
    "alert": function (message) { showAlert(message.alert, message.replayed); },
    "error": function (message) {
      var review = document.getElementById("review");
      var error = document.getElementById(review && !review.hidden ? "review-error" : "form-error");
      if (error) { error.textContent = message.message; }
      if (message.field === "pickup_at") { refreshTimes(); }
      setBusy(false);
    }
  };

  function showAlert(alert, replayed) {
    send({ type: "alert.ack", alert_id: alert.id });
    if (shownAlerts.has(alert.id)) { return; }
    shownAlerts.add(alert.id);
    var banner = document.createElement("div");
    banner.className = "alert alert-" + alert.kind + (replayed ? " alert-replayed" : "");
    banner.dataset.alertId = alert.id;
    var words = document.createElement("p");
    words.textContent = alert.message;
    if (replayed) {  // sent while this phone was away: say when
      var when = document.createElement("small");
      when.textContent = fill(text.missed, { time: clock(alert.due_at) });
      words.append(document.createElement("br"), when);
    }
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = text.dismiss;
    close.onclick = function () { banner.remove(); };
    banner.dataset.orderId = alert.order_id;
    banner.dataset.kind = alert.kind;
    banner.append(words, close);
    alertsRegion.prepend(banner);
    var status = alert.kind === "cancelled" ? "cancelled" : "ready";
    markStatus(alert.order_id, status);
    var detail = document.querySelector(".order-detail");
    if (detail && String(alert.order_id) === detail.dataset.orderId) { showTimeline(detail, status); }
    // Banner first, then sound and vibration; the notification last, since
    // browsers may refuse it (each step is guarded so none stops the others).
    attempt(function () { if (navigator.vibrate) { navigator.vibrate([200, 100, 200]); } });
    attempt(beep);
    // The system notification, and telling the service worker, are push.js's.
    attempt(function () { document.dispatchEvent(new CustomEvent("pickup:alert-shown", { detail: { alert: alert } })); });
  }
  // An alert the service worker received by Web Push while this page is on screen.
  document.addEventListener("pickup:push-alert", function (event) { showAlert(event.detail.alert, false); });

  function attempt(step) {
    try { step(); } catch (error) { /* the banner is shown already; this extra did not work here */ }
  }

  function beep() { window.pickupTone(880, 0.25); }

  // Once an order is past "ready", its "come and collect it" alerts are no longer true.
  var PAST_READY = ["picked_up", "not_collected", "cancelled"];
  var READY_KINDS = ["pickup", "ready_early", "reminder"];

  /* Alerts that an order's later state contradicts go away. An update from
     before the alert (arriving late) must not remove it, so only states
     that can only come after "ready" count. */
  function dropStaleAlerts(order) {
    if (PAST_READY.indexOf(order.status) < 0) { return; }
    alertsRegion.querySelectorAll('.alert[data-order-id="' + order.id + '"]').forEach(function (banner) {
      if (READY_KINDS.indexOf(banner.dataset.kind) >= 0) { banner.remove(); }
    });
  }

  function statusLabel(order) { return text.statuses[order.status] || order.status_display; }

  function orderItem(orderId) {
    return document.querySelector('#orders [data-order-id="' + orderId + '"]');
  }

  function markStatus(orderId, status) {
    var item = orderItem(orderId);
    if (item) { item.dataset.status = status; }
  }

  /* The steps the server rendered (placed → preparing → ready → picked up), up to
     ``status``; a status off the line (cancelled, not collected) leaves them as they are. */
  function showTimeline(detail, status) {
    var steps = Array.prototype.slice.call(detail.querySelectorAll(".timeline li"));
    var reached = steps.map(function (step) { return step.dataset.step; }).indexOf(status === "placed" ? "queued" : status);
    if (reached < 0) { return; }
    steps.forEach(function (step, index) {
      step.classList.toggle("done", index <= reached);
      step.classList.toggle("current", index === reached);
      if (index === reached) { step.setAttribute("aria-current", "step"); } else { step.removeAttribute("aria-current"); }
    });
  }

  function showOrderDetail(detail, order) {
    detail.querySelector(".status").textContent = statusLabel(order);
    var state = document.getElementById("order-state");
    state.textContent = order.status_note;
    state.dataset.status = order.status;
    var when = detail.querySelector(".pickup-when");
    when.dateTime = order.pickup_at;
    when.textContent = order.pickup_label;
    detail.querySelector(".pickup-code").textContent = order.pickup_code;
    showTimeline(detail, order.status);
    detail.dataset.status = order.status;
    countdown(detail);  // a ready order counts down no more, now rather than at the next tick
    document.getElementById("order-changes").hidden = !order.can_change;
  }

  function showOrder(order) {
    dropStaleAlerts(order);
    var list = document.getElementById("orders");
    var detail = document.querySelector(".order-detail");
    if (detail && String(order.id) === detail.dataset.orderId) {
      showOrderDetail(detail, order);
      return;
    }
    if (!list) { return; }
    var none = list.querySelector(".none");
    if (none) { none.remove(); }
    var item = orderItem(order.id);
    if (!item) {
      item = document.createElement("li");
      item.dataset.orderId = order.id;
      item.innerHTML = '<a><strong class="code"></strong></a> <span class="when"></span> <span class="status"></span>';
      list.prepend(item);
    }
    item.querySelector("a").href = "/orders/" + order.id + "/";
    item.querySelector(".code").textContent = order.pickup_code;
    item.querySelector(".when").textContent = clock(order.pickup_at);
    item.querySelector(".status").textContent = statusLabel(order);
    item.dataset.status = order.status;
  }

  /* The page's total is for display only: the server prices the order (Decimal). */
  function updateTotal() {
    var cents = 0;
    form.querySelectorAll(".quantity").forEach(function (input) {
      cents += quantityOf(input) * centsOf(input);
    });
    document.getElementById("total").textContent = (cents / 100).toFixed(2);
    return cents;
  }

  function quantityOf(input) { return Math.max(0, parseInt(input.value, 10) || 0); }
  function centsOf(input) { return Math.round(parseFloat(input.dataset.price) * 100); }

  function setBusy(busy) {
    var button = document.getElementById("place-order");  // the ordering page's only
    if (button) { button.disabled = busy; }
  }

  function chosenItems() {
    var items = [];
    form.querySelectorAll(".quantity").forEach(function (input) {
      var quantity = Number(input.value);
      if (input.value !== "" && quantity !== 0) {
        items.push({ menu_item: Number(input.dataset.menuItem), quantity: quantity, input: input });
      }
    });
    return items;
  }

  /* The review step: what is ordered, when, and the total, before "Confirm and pay". */
  function showReview(items) {
    var review = document.getElementById("review");
    var lines = review.querySelector(".review-lines");
    lines.replaceChildren.apply(lines, items.map(function (item) {
      var line = document.createElement("li");
      line.textContent = item.quantity + " × " + item.input.dataset.name + " — ¥" +
        (item.quantity * centsOf(item.input) / 100).toFixed(2);
      return line;
    }));
    review.querySelector(".review-when").textContent = picker.describe();
    review.querySelector(".review-total").textContent = (updateTotal() / 100).toFixed(2);
    document.getElementById("review-error").textContent = "";
    form.hidden = true;
    review.hidden = false;
    review.querySelector("h2").focus();
    window.scrollTo(0, review.offsetTop);
  }

  function hideReview() {
    document.getElementById("review").hidden = true;
    form.hidden = false;
    document.getElementById("review-order").focus();
  }

  if (form) {
    form.addEventListener("input", updateTotal);
    form.addEventListener("click", function (event) {
      var step = event.target.closest(".step");
      if (!step) { return; }
      var input = document.getElementById(step.getAttribute("aria-controls"));
      input.value = Math.min(Number(input.max), Math.max(0, quantityOf(input) + Number(step.dataset.step)));
      updateTotal();
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      document.getElementById("form-error").textContent = "";
      var items = chosenItems();
      if (!items.length) {
        document.getElementById("form-error").textContent = text.chooseItems;
        return;
      }
      showReview(items);
    });
    document.getElementById("back-to-menu").addEventListener("click", hideReview);
    document.getElementById("place-order").addEventListener("click", function () {
      var items = chosenItems().map(function (item) { return { menu_item: item.menu_item, quantity: item.quantity }; });
      requestCounter += 1;
      var requestId = "r" + requestCounter;
      setBusy(true);
      var said = function (words) { setBusy(false); document.getElementById("review-error").textContent = words; };
      picker.fresh(function (pickupAt) {
        withSession(function () {
          var sent = send({ type: "order.place", request_id: requestId, items: items, pickup_at: pickupAt });
          if (!sent) { said(text.offline); }
        }, function (words) { said(words || text.noSession); });
      });
    });
  }

  function refreshTimes() { if (picker) { picker.refresh(); } }

  /* Run ``then`` on a socket that belongs to a customer: start the session first if
     this browser has none (the first order), and reconnect so the socket carries it.
     ``failed`` gets the server's words when it gave any (429 rate_limited; 503
     server_busy while Redis cannot count new sessions, a failover's seconds). */
  function withSession(then, failed) {
    if (hasSession) { then(); return; }
    fetch(form.dataset.sessionUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": form.dataset.csrfToken }
    }).then(function (response) {
      if (response.status === 429 || response.status === 503) {
        return response.json().then(function (error) { failed(error.message); }, function () { failed(); });
      }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      hasSession = true;
      attempt(function () { localStorage.setItem(SESSION_STARTED, String(Date.now())); });
      afterReady = then;
      socket.restart();
    }).catch(function () { failed(); });
  }

  // Another tab of this browser started the session: this tab's socket joins the customer too.
  window.addEventListener("storage", function (event) {
    if (event.key === SESSION_STARTED && !hasSession) {
      hasSession = true;
      socket.restart();
    }
  });

  var cancelButton = document.getElementById("cancel-order");
  if (cancelButton) {
    var orderId = Number(document.querySelector(".order-detail").dataset.orderId);
    var sendOrSay = function (message) {
      document.getElementById("form-error").textContent = send(message) ? "" : text.offline;
    };
    cancelButton.addEventListener("click", function () {
      if (!window.confirm(text.confirmCancel)) { return; }
      sendOrSay({ type: "order.cancel", request_id: "cancel", order_id: orderId });
    });
    document.getElementById("reschedule-form").addEventListener("submit", function (event) {
      event.preventDefault();
      picker.fresh(function (pickupAt) {
        sendOrSay({ type: "order.reschedule", request_id: "move", order_id: orderId, pickup_at: pickupAt });
      });
    });
  }

  /* The order's page counts down to the pickup time while the kitchen has the order. */
  var COUNTING = ["placed", "queued", "preparing"];

  function countdown(detail) {
    var shown = detail.querySelector(".countdown");
    var left = Math.floor((Date.parse(detail.querySelector(".pickup-when").dateTime) - Date.now()) / 1000);
    shown.hidden = left <= 0 || COUNTING.indexOf(detail.dataset.status) < 0;
    if (shown.hidden) { return; }
    var hours = Math.floor(left / 3600);
    var minutes = Math.floor(left / 60) % 60;
    var seconds = ("0" + (left % 60)).slice(-2);
    var time = hours ? hours + ":" + ("0" + minutes).slice(-2) + ":" + seconds : minutes + ":" + seconds;
    shown.textContent = fill(text.countdown, { time: time });
  }

  var orderPage = document.querySelector(".order-detail");
  if (orderPage) {
    orderPage.dataset.status = document.getElementById("order-state").dataset.status;
    countdown(orderPage);
    setInterval(function () { countdown(orderPage); }, 1000);
    // Just ordered: say it is paid, and start reading at the pickup code.
    attempt(function () {
      var accepted = sessionStorage.getItem("pickup.accepted");
      if (!accepted) { return; }
      sessionStorage.removeItem("pickup.accepted");
      document.getElementById("order-message").textContent = accepted;
      document.getElementById("code-heading").focus();
    });
  }

  // Last: the socket's first messages use everything above.
  socket = window.pickupSocket("/ws/customer/", {
    onState: setConnection,
    onMessage: function (message) {
      var handler = handlers[message.type];
      if (handler) { handler(message); }
    }
  });
})();
