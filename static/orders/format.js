/* Words and times as the ordering page and the kitchen screen show them.
 * The texts come translated from the server (json_script) with Django's
 * named placeholders; times come with the restaurant's UTC offset
 * (docs/protocol.md), so their clock time is read off the string itself. */
window.pickupFormat = {
  /* "%(time)s late" with { time: "4:05" } → "4:05 late". */
  fill: function (template, values) {
    "use strict";
    return template.replace(/%\((\w+)\)s/g, function (placeholder, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : placeholder;
    });
  },

  /* "08:30" from "2026-11-25T08:30:00+08:00": the restaurant's clock time. */
  clock: function (iso) {
    "use strict";
    return iso.slice(11, 16);
  }
};
