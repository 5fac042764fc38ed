// The fire-alarm tone, made with WebAudio (no audio file): a two-tone signal repeated while an unacknowledged fire
// alarm is on screen, until the operator mutes it. Muting is remembered.
const KEY = 'firewatch.muted'
let ctx = null
let timer = null
let muted = localStorage.getItem(KEY) === '1'
let wanted = false

/** Browsers let audio start only after a user gesture: call this from one (the login click does). */
export function unlockAudio() {
  try {
    ctx ??= new AudioContext()
    void ctx.resume()
  } catch {
    ctx = null
  }
}

export const isMuted = () => muted

export function setMuted(value) {
  muted = value
  localStorage.setItem(KEY, muted ? '1' : '0')
  update()
}

/** Whether there is something to sound for. */
export function setAlarm(on) {
  wanted = on
  update()
}

function update() {
  const play = wanted && !muted
  if (play && !timer) {
    beep()
    timer = setInterval(beep, 1600)
  } else if (!play && timer) {
    clearInterval(timer)
    timer = null
  }
}

function beep() {
  if (!ctx) return
  const t0 = ctx.currentTime
  for (const [i, freq] of [960, 770].entries()) {
    const osc = ctx.createOscillator()
    const gain = ctx.createGain()
    osc.type = 'square'
    osc.frequency.value = freq
    gain.gain.setValueAtTime(0.0001, t0 + i * 0.4)
    gain.gain.exponentialRampToValueAtTime(0.15, t0 + i * 0.4 + 0.02)
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.4 + 0.38)
    osc.connect(gain).connect(ctx.destination)
    osc.start(t0 + i * 0.4)
    osc.stop(t0 + i * 0.4 + 0.4)
  }
}
