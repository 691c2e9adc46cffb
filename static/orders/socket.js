/* One WebSocket that stays up, shared by the ordering page and the kitchen screen.
 *
 * It reconnects with backoff (0.5 s doubling to 15 s, with jitter), at once when
 * the device comes back online or the page becomes visible again, or when the
 * server closes with 1012 (service restart: that process is stopping, another
 * one is there; only a quarter second of jitter, so a whole server's pages
 * do not arrive in the same instant), and pings
 * every 20 s: a phone or tablet that sleeps or changes network can keep a socket
 * that never closes, so one that has heard nothing for 45 s is given up and
 * replaced. Protocol: docs/protocol.md.
 *
 *   var socket = window.pickupSocket("/ws/kitchen/", {
 *     onMessage: function (message) {},   // every JSON message from the server
 *     onState: function (state) {},       // "connecting", "open" or "offline"
 *     onOpen: function () {},             // after each (re)connection
 *     finalCodes: [4403],                 // close codes after which it stops trying
 *     onFinalClose: function (code) {}    // then called once with that code
 *   });
 *   socket.send({ type: "ping" });        // false when not connected
 *   socket.restart();                     // a new connection now (the cookies changed)
 */
window.pickupSocket = function (path, options) {
  "use strict";

  var PING_EVERY = 20000;
  var SILENCE_ALLOWED = 2 * PING_EVERY + 5000;
  var FIRST_RETRY = 500;
  var LAST_RETRY = 15000;
  var SERVICE_RESTART = 1012;
  var socket = null;
  var retryDelay = FIRST_RETRY;
  var retryTimer = null;
  var lastHeard = 0;
  var gaveUp = false;

  function say(state) {
    if (options.onState) { options.onState(state); }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + path);
    say("connecting");
    socket.onopen = function () {
      retryDelay = FIRST_RETRY;
      lastHeard = Date.now();
      say("open");
      if (options.onOpen) { options.onOpen(); }
    };
    socket.onclose = function (event) { lost(event.code); };
    socket.onmessage = function (event) {
      lastHeard = Date.now();
      options.onMessage(JSON.parse(event.data));
    };
  }

  function lost(code) {
    socket = null;
    say("offline");
    if ((options.finalCodes || []).indexOf(code) >= 0) {
      gaveUp = true;
      if (options.onFinalClose) { options.onFinalClose(code); }
      return;
    }
    clearTimeout(retryTimer);
    if (code === SERVICE_RESTART) {
      // Not a failure: the next attempt that fails starts the backoff afresh.
      retryDelay = FIRST_RETRY;
      retryTimer = setTimeout(connect, Math.random() * 250);
      return;
    }
    retryTimer = setTimeout(connect, retryDelay + Math.random() * 250);
    retryDelay = Math.min(retryDelay * 2, LAST_RETRY);
  }

  function reconnectNow() {
    if (socket || gaveUp) { return; }
    clearTimeout(retryTimer);
    retryDelay = FIRST_RETRY;
    connect();
  }

  /* Drop the connection and open a new one at once: the old one's session
     is stale, and nothing it still says must be taken for the new one's. */
  function restart() {
    gaveUp = false;
    clearTimeout(retryTimer);
    if (socket) {
      var old = socket;
      old.onclose = old.onmessage = null;
      old.close();
      socket = null;
    }
    retryDelay = FIRST_RETRY;
    connect();
  }

  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) { return false; }
    socket.send(JSON.stringify(message));
    return true;
  }

  /* A socket silent for too long is dead even if it never said so: close it ourselves. */
  function checkAlive() {
    if (!socket || socket.readyState !== WebSocket.OPEN) { return; }
    if (Date.now() - lastHeard > SILENCE_ALLOWED) {
      var dead = socket;
      dead.onclose = null;
      dead.close();
      lost(1006);
      return;
    }
    send({ type: "ping" });
  }

  // Back on the network, or the device unlocked: reconnect at once rather than
  // waiting out the backoff, so whatever was missed shows as soon as possible.
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { reconnectNow(); }
  });
  setInterval(checkAlive, PING_EVERY);
  connect();

  return { send: send, restart: restart };
};
