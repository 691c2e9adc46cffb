/* Pickup's service worker, served at /service-worker.js so that it covers the whole site.
 *
 * It shows a pickup alert that arrives by Web Push while no page of the site
 * is on screen (a locked phone, a closed tab), and opens the order's page when
 * the notification is tapped. A page on screen gets the alert as a message
 * instead and shows its own banner. The push carries
 *   {"alert": {"id", "kind", "order_id", "pickup_code", "message", "due_at"},
 *    "title": "<restaurant>", "url": "/orders/<id>/"}
 * (docs/protocol.md, "Web Push"); the message is in the customer's language.
 *
 * Each alert shows at most once: its notification's tag is the alert id, so a
 * retried push replaces it, and an alert a page already showed (pages say so
 * with {"type": "alert-shown", "alertId": id}) is not shown again.
 *
 * pushsubscriptionchange is not handled: a new subscription would have to be
 * sent with the page's CSRF token, which a worker does not have, and Chromium
 * does not fire the event. The page sends its current subscription on every
 * load instead, and the server drops a subscription the push service calls gone.
 */
"use strict";

var SHOWN = "pickup-shown-alerts";
var SHOWN_KEPT = 200;

self.addEventListener("install", function (event) { event.waitUntil(self.skipWaiting()); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

/* Alert ids pages showed, as entries of a cache (kept in order, the oldest dropped). */
function shownKey(alertId) {
  return new Request(self.registration.scope + "pickup-shown-alert/" + alertId);
}

function rememberShown(alertId) {
  return caches.open(SHOWN).then(function (cache) {
    return cache.put(shownKey(alertId), new Response("")).then(function () { return cache.keys(); }).then(function (keys) {
      return Promise.all(keys.slice(0, Math.max(0, keys.length - SHOWN_KEPT)).map(function (key) { return cache.delete(key); }));
    });
  });
}

function wasShown(alertId) {
  return caches.open(SHOWN).then(function (cache) { return cache.match(shownKey(alertId)); }).then(Boolean);
}

/* A path on this site; anything else becomes the ordering page. */
function sitePath(url) {
  var target = new URL(url || "/", self.location.origin);
  return target.origin === self.location.origin ? target.pathname + target.search : "/";
}

function readPush(event) {
  try {
    var push = event.data.json();
    if (push && push.alert && Number.isInteger(push.alert.id) && typeof push.alert.message === "string") { return push; }
  } catch (unreadable) { /* not one of ours */ }
  return null;
}

function windows() {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true });
}

self.addEventListener("push", function (event) {
  var push = readPush(event);
  if (!push) { return; }
  event.waitUntil(windows().then(function (open) {
    var onScreen = open.filter(function (client) { return client.visibilityState === "visible" || client.focused; });
    if (onScreen.length) {
      onScreen.forEach(function (client) { client.postMessage({ type: "pickup.alert", alert: push.alert }); });
      return undefined;
    }
    return wasShown(push.alert.id).then(function (shown) {
      if (shown) { return undefined; }
      return self.registration.showNotification(push.title || "Pickup", {
        body: push.alert.message,
        tag: "alert-" + push.alert.id,
        renotify: false,
        data: { url: sitePath(push.url), alertId: push.alert.id }
      });
    });
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var path = sitePath(event.notification.data && event.notification.data.url);
  event.waitUntil(windows().then(function (open) {
    var tab = open.find(function (client) { return sitePath(client.url) === path; });
    return tab ? tab.focus() : self.clients.openWindow(path);
  }));
});

self.addEventListener("message", function (event) {
  var message = event.data || {};
  if (message.type === "alert-shown" && Number.isInteger(message.alertId)) {
    event.waitUntil(rememberShown(message.alertId));
  }
});
