/**
 * Start a worker thread on a module next to the caller. From dist/ the worker is plain JavaScript. From src/ (tsx,
 * tests) it is TypeScript, which a worker's own entry cannot load through --import hooks on Node 20: a tiny script has
 * tsx import it instead (tsx resolved from here, not from whatever the working directory is).
 */
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'

/** @param callerUrl the caller's `import.meta.url`; @param name the worker module's name without extension. */
export function startWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  const fromSource = callerUrl.endsWith('.ts')
  const entry = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, callerUrl)
  if (!fromSource) return new Worker(entry, { workerData })
  // The ES module build of tsx's API (its CommonJS build cannot be required from an eval'd worker).
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href.replace(/\.cjs$/, '.mjs')
  const code = `import(${JSON.stringify(tsx)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(callerUrl)}))`
  return new Worker(code, { eval: true, workerData })
}
