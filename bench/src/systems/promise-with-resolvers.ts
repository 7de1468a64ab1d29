/**
 * `Promise.withResolvers` for Node 20 (it arrived in Node 22), which js-libp2p calls. Imported only
 * by the js-libp2p system, so it only ever loads in that system's worker processes and cannot change
 * what the other systems run on.
 */
interface WithResolvers {
  withResolvers?: <T>() => {
    promise: Promise<T>
    resolve: (value: T) => void
    reject: (reason?: unknown) => void
  }
}

const P = Promise as unknown as WithResolvers
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = <T>() => {
    let resolve!: (value: T) => void
    let reject!: (reason?: unknown) => void
    const promise = new Promise<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}

export {}
