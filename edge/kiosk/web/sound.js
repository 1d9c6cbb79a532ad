// The door chime: a two-note sound made with Web Audio (no audio files). Low, loud-ish
// notes: high frequencies are the first that older ears lose. The context is created on
// the first touch because browsers only allow sound after a user gesture. Without Web
// Audio (node tests, an old browser) both functions do nothing.
export function createSound(win) {
  let audio = null;
  function ensureAudio() {
    const AC = win && (win.AudioContext || win.webkitAudioContext);
    if (!AC) return null;
    try {
      if (!audio) audio = new AC();
      if (audio.state === 'suspended') audio.resume().catch(() => {});
    } catch (_) {
      audio = null;
    }
    return audio;
  }
  function chime() {
    const ctx = ensureAudio();
    if (!ctx) return;
    try {
      const start = ctx.currentTime + 0.02;
      [[784, 0], [523.25, 0.32]].forEach(([freq, at]) => {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = 'sine';
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, start + at);
        gain.gain.exponentialRampToValueAtTime(0.6, start + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.6);
        osc.connect(gain).connect(ctx.destination);
        osc.start(start + at);
        osc.stop(start + at + 0.65);
      });
    } catch (_) {
      // Sound is a cue on top of the visible banner; never let it break the flow.
    }
  }
  return { ensure: ensureAudio, chime };
}
