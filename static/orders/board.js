/* Counter screen: pickup codes being prepared and ready, live over /ws/board/<token>/.
 * Every board.state message carries the whole board (codes and states only);
 * a fetch every 30 s mends a lost message and notices a revoked link. */
(function () {
  "use strict";

  var CLOSE_UNKNOWN = 4404;
  var CLOSE_REVOKED = 4410;
  var boardElement = document.getElementById("board");
  var labels = JSON.parse(document.getElementById("board-labels").textContent);
  var board = JSON.parse(document.getElementById("board-initial").textContent);
  var lists = { preparing: document.getElementById("board-preparing"), ready: document.getElementById("board-ready") };
  var connection = document.getElementById("board-connection");
  var refusal = document.getElementById("board-refusal");
  var clockOffset = 0;  // server time minus this screen's time, from the last board
  var closed = false;

  /* "6 min" in every language of the board, joined: "6 min 6 分钟". */
  function waited(readyAt) {
    var minutes = Math.max(0, Math.floor((Date.now() + clockOffset - new Date(readyAt)) / 60000));
    return labels.waited.map(function (label) {
      return window.pickupFormat.fill(label.text, { minutes: minutes });
    }).filter(function (text, index, all) { return all.indexOf(text) === index; }).join(" · ");
  }

  function codeItem(order) {
    var item = document.createElement("li");
    item.className = "board-code";
    item.dataset.code = order.code;
    item.dataset.status = order.status;
    var code = document.createElement("span");
    code.textContent = order.code;
    item.append(code);
    if (order.ready_at) {
      item.dataset.readyAt = order.ready_at;
      var since = document.createElement("small");
      since.className = "board-waited";
      since.textContent = waited(order.ready_at);
      item.append(since);
    }
    return item;
  }

  /* The largest type at which every code of a column fits without scrolling. */
  function fit(list) {
    var size = 100;
    list.style.setProperty("--code-scale", size / 100);
    while (size > 20 && list.scrollHeight > list.clientHeight) {
      size -= 5;
      list.style.setProperty("--code-scale", size / 100);
    }
  }

  function render() {
    if (closed) { return; }
    clockOffset = new Date(board.now) - Date.now();
    Object.keys(lists).forEach(function (column) {
      lists[column].replaceChildren.apply(lists[column], board[column].map(codeItem));
      fit(lists[column]);
    });
  }

  function tick() {
    lists.ready.querySelectorAll(".board-code").forEach(function (item) {
      item.querySelector(".board-waited").textContent = waited(item.dataset.readyAt);
    });
  }

  function refuse(code) {
    closed = true;
    var texts = code === CLOSE_UNKNOWN ? labels.unknown : labels.revoked;
    refusal.replaceChildren.apply(refusal, texts.map(function (label) {
      var part = document.createElement("span");
      part.lang = label.lang;
      part.textContent = label.text;
      return part;
    }));
    refusal.hidden = false;
    boardElement.hidden = true;
    connection.hidden = true;
  }

  function refresh() {
    if (closed) { return; }
    fetch(boardElement.dataset.stateUrl, { credentials: "omit", cache: "no-store" }).then(function (response) {
      if (response.status === 410) { refuse(CLOSE_REVOKED); return null; }
      return response.ok ? response.json() : null;
    }).then(function (data) {
      if (data) { board = data; render(); }
    }).catch(function () { /* the socket or the next refresh tries again */ });
  }

  render();
  setInterval(tick, 15000);
  setInterval(refresh, 30000);
  window.addEventListener("resize", render);
  window.pickupSocket(boardElement.dataset.socketPath, {
    finalCodes: [CLOSE_UNKNOWN, CLOSE_REVOKED],
    onFinalClose: refuse,
    onState: function (state) { connection.hidden = closed || state === "open"; },
    onMessage: function (message) {
      if (message.type === "board.state") { board = message.board; render(); }
    }
  });
})();
