// The language switch. Choosing a language with the mouse or a tap reloads
// the page in it at once; stepping through the list with the arrow keys does
// not (every step would reload): Enter, or leaving the list, does.
(function () {
  "use strict";
  const select = document.getElementById("language-select");
  if (!select) return;
  const current = select.value;
  const STEPS = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"];
  let stepping = false;

  function switchIfChanged() {
    if (select.value !== current) select.form.submit();
  }

  select.addEventListener("keydown", function (event) {
    if (STEPS.includes(event.key)) stepping = true;
    if (event.key === "Enter") switchIfChanged();
  });
  select.addEventListener("change", function () {
    if (!stepping) switchIfChanged();
  });
  select.addEventListener("blur", function () {
    if (stepping) switchIfChanged();
    stepping = false;
  });
})();
