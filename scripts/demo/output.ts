/** How the demo prints: a labelled step, a warning, and the colours (off when stdout is not a terminal or NO_COLOR). */

const color = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code: string) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s)
export const bold = paint('1')
export const dim = paint('2')
export const green = paint('32')
export const yellow = paint('33')
export const red = paint('31')
export const cyan = paint('36')

export const step = (label: string, text: string) => console.log(`  ${bold(label.padEnd(12))} ${text}`)
export const warn = (text: string) => console.log(`  ${yellow('!')} ${text}`)
