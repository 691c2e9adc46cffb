/* Alerts on a locked phone (Web Push), on the customer's pages.
 *
 * Registers the service worker (/service-worker.js); after the customer's
 * first order offers, in one sentence, to send the "ready" alert to a locked
 * phone, and asks the browser's permission only when the button is pressed;
 * lets the customer turn it off; never asks twice after a refusal.
 * The subscription goes to POST /push/subscriptions/ (docs/protocol.md, "Web Push").
 *
 * pickup.js (the socket) and this file talk through events on document:
 *   pickup:order-placed  pickup.js → here: an order was accepted, time to offer alerts
 *   pickup:alert-shown   pickup.js → here: the page showed detail.alert (tell the worker,
 *                        close its notification, or show one while the page is hidden)
 *   pickup:push-alert    here → pickup.js: the worker got detail.alert by push while
 *                        this page is on screen; the page shows it as any alert
 */
(function () {
  "use strict";

  if (!("serviceWorker" in navigator)) { return; }

  var panel = document.getElementById("push-panel");
  var CHOICE = "pickup.webPush";  // what the customer chose last: "on", "off", "dismissed", "blocked"
  var SUBSCRIBE_TIMEOUT = 30000;  // a browser that cannot reach its push service may never answer
  var title = panel ? panel.dataset.title : document.title;
  var ready = navigator.serviceWorker.register("/service-worker.js", { scope: "/" })
    .then(function () { return navigator.serviceWorker.ready; });
  ready.catch(function () { /* no worker (an insecure origin): alerts stay on the page */ });

  function tagOf(alert) { return "alert-" + alert.id; }

  function notificationOf(alert) {
    return { body: alert.message, tag: tagOf(alert), renotify: false, data: { url: "/orders/" + alert.order_id + "/" } };
  }

  /* The page showed an alert: the worker must not show it again; a notification of it
     is no longer needed while the page is on screen, and is the only way to be seen
     while it is hidden (through the worker: Android refuses `new Notification`). */
  document.addEventListener("pickup:alert-shown", function (event) {
    var alert = event.detail.alert;
    var hidden = document.visibilityState !== "visible";
    var allowed = window.Notification && Notification.permission === "granted";
    ready.then(function (registration) {
      if (registration.active) { registration.active.postMessage({ type: "alert-shown", alertId: alert.id }); }
      if (!hidden) {
        return registration.getNotifications({ tag: tagOf(alert) }).then(function (shown) {
          shown.forEach(function (notification) { notification.close(); });
        });
      }
      return allowed ? registration.showNotification(title, notificationOf(alert)) : undefined;
    }).catch(function () {
      try {
        if (hidden && allowed) { new Notification(title, notificationOf(alert)); }
      } catch (refused) { /* the banner, sound and vibration are there already */ }
    });
  });

  navigator.serviceWorker.addEventListener("message", function (event) {
    var message = event.data || {};
    if (message.type === "pickup.alert" && message.alert) {
      document.dispatchEvent(new CustomEvent("pickup:push-alert", { detail: { alert: message.alert } }));
    }
  });
  navigator.serviceWorker.startMessages();

  if (!panel || !("PushManager" in window) || !window.Notification) { return; }

  var onButton = document.getElementById("push-on");
  var offButton = document.getElementById("push-off");
  var status = document.getElementById("push-status");
  var hasOrder = document.querySelector(".order-detail, #orders li[data-order-id]") !== null;

  function choice() {
    try { return localStorage.getItem(CHOICE); } catch (unavailable) { return null; }
  }

  function remember(value) {
    try { localStorage.setItem(CHOICE, value); } catch (unavailable) { /* asked again next time, still only on a tap */ }
  }

  /* One of offer, on, off, blocked, dismissed; "" hides the panel. */
  function show(state, message) {
    panel.hidden = !state;
    panel.dataset.state = state;
    panel.querySelectorAll("[data-when]").forEach(function (part) {
      part.hidden = part.dataset.when.split(" ").indexOf(state) < 0;
    });
    status.textContent = message || "";
    onButton.disabled = offButton.disabled = false;
  }

  function keyBytes(base64url) {
    var text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(text, function (character) { return character.charCodeAt(0); });
  }

  function sameKey(subscription) {
    var key = subscription.options && subscription.options.applicationServerKey;
    if (!key) { return true; }  // a browser that does not say: trust it
    var mine = keyBytes(panel.dataset.publicKey);
    var theirs = new Uint8Array(key);
    return theirs.length === mine.length && theirs.every(function (byte, index) { return byte === mine[index]; });
  }

  function send(method, body) {
    return fetch(panel.dataset.subscriptionsUrl, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": panel.dataset.csrfToken },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response;
    });
  }

  function withTimeout(promise) {
    return Promise.race([promise, new Promise(function (resolve, reject) {
      setTimeout(function () { reject(new Error("no answer from the push service")); }, SUBSCRIBE_TIMEOUT);
    })]);
  }

  function subscribe(registration) {
    var options = { userVisibleOnly: true, applicationServerKey: keyBytes(panel.dataset.publicKey) };
    return withTimeout(registration.pushManager.subscribe(options)).then(function (subscription) {
      return send("POST", subscription.toJSON()).catch(function (refused) {
        return subscription.unsubscribe().then(function () { throw refused; });
      });
    });
  }

  /* Where things stand when the page loads (or the first order is placed). A
     subscription the browser holds is sent again: this session may be new to
     the server, or the keys changed (then it is made anew, permission being given). */
  function settle() {
    if (!hasOrder || Notification.permission === "denied") { return show(""); }
    ready.then(function (registration) {
      return registration.pushManager.getSubscription().then(function (subscription) {
        if (!subscription || Notification.permission !== "granted" || choice() === "off") {
          return show(["off", "dismissed", "blocked"].indexOf(choice()) >= 0 ? "off" : "offer");
        }
        show("on");
        if (sameKey(subscription)) { return send("POST", subscription.toJSON()); }
        return subscription.unsubscribe().then(function () { return subscribe(registration); });
      });
    }).catch(function () { /* the next load tries again */ });
  }

  onButton.addEventListener("click", function () {
    onButton.disabled = true;
    status.textContent = panel.dataset.textWorking;
    Notification.requestPermission().then(function (permission) {
      if (permission === "denied") { remember("blocked"); return show("blocked"); }
      if (permission !== "granted") { remember("dismissed"); return show("dismissed"); }
      return ready.then(subscribe).then(function () { remember("on"); show("on"); });
    }).catch(function () { show("offer", panel.dataset.textFailed); });
  });

  offButton.addEventListener("click", function () {
    offButton.disabled = true;
    ready.then(function (registration) { return registration.pushManager.getSubscription(); }).then(function (subscription) {
      if (!subscription) { return undefined; }
      var endpoint = subscription.endpoint;
      return subscription.unsubscribe().then(function () {
        return send("DELETE", { endpoint: endpoint }).catch(function () { /* the push service will call it gone */ });
      });
    }).then(function () { remember("off"); show("off", panel.dataset.textOff); },
             function () { show("on", panel.dataset.textOffFailed); });
  });

  document.addEventListener("pickup:order-placed", function () {
    if (!hasOrder) { hasOrder = true; settle(); }
  });
  settle();
})();
