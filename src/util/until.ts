// Polls until a condition holds: how tests wait for controllers, kubelets
// and schedulers to converge without fixed sleeps. The error says what was
// awaited, the last error the check threw, and whatever context the caller
// adds (the component's recent log lines).

export interface UntilOptions {
  /** Give up after this long (default 10 s). */
  ms?: number;
  /** Between checks (default 20 ms). */
  intervalMs?: number;
  /** Appended to the timeout error, e.g. recent log lines. */
  context?: () => string;
}

export async function until<T>(
  what: string,
  check: () => T | Promise<T>,
  opts: UntilOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.ms ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const context = opts.context?.() ?? '';
      throw new Error(
        `timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${context ? `\n${context}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}
