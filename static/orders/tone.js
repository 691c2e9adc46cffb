/* A short beep through Web Audio, shared by the customer page and the kitchen screen.
 * Sound is a nicety: browsers without Web Audio, or that block it, stay silent. */
window.pickupTone = function (frequency, seconds) {
  "use strict";
  try {
    var audio = new (window.AudioContext || window.webkitAudioContext)();
    var tone = audio.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + seconds);
  } catch (ignored) { /* no sound */ }
};
