// Counters and histograms for hot paths (every API request, every store
// call, every work-queue key). prom-client's own validate the labels and
// hash them again on every inc() and observe(), even through a child from
// labels(): about 2.5 us per request for the API server's pair, measured in
// bench/metrics.ts. These keep a child per label set whose inc() and
// observe() only add numbers; the registry asks for their values when
// scraped, in the shape prom-client's own metrics give it, so they sit in
// the same Registry and print in the same exposition format.

import type { Metric } from 'prom-client';
import type { Registry } from './prometheus.ts';

export interface CounterChild {
  inc(by?: number): void;
}

export interface HistogramChild {
  observe(value: number): void;
}

interface Sample {
  labels: Record<string, string>;
  value: number;
  metricName?: string;
}

interface Described {
  name: string;
  help: string;
  labelNames: readonly string[];
}

const labelsOf = (names: readonly string[], values: readonly string[]) =>
  Object.fromEntries(names.map((n, i) => [n, values[i] ?? '']));

/** A counter whose children are found by their label values (in labelNames' order), once each. */
export class FastCounter {
  readonly #children = new Map<string, { labels: Record<string, string>; value: number }>();
  readonly #opts: Described;

  constructor(opts: Described & { registry: Registry }) {
    this.#opts = opts;
    opts.registry.registerMetric(this.#metric() as unknown as Metric);
  }

  /** The child for these label values; keep it, or look it up again (a Map lookup on the joined values). */
  child(...values: string[]): CounterChild {
    const key = values.join('\u0000');
    let entry = this.#children.get(key);
    if (!entry) {
      entry = { labels: labelsOf(this.#opts.labelNames, values), value: 0 };
      this.#children.set(key, entry);
    }
    const e = entry;
    return {
      inc(by = 1) {
        e.value += by;
      },
    };
  }

  #metric() {
    return {
      name: this.#opts.name,
      help: this.#opts.help,
      type: 'counter',
      aggregator: 'sum',
      get: () => ({
        name: this.#opts.name,
        help: this.#opts.help,
        type: 'counter',
        aggregator: 'sum',
        values: [...this.#children.values()].map((c): Sample => ({ labels: c.labels, value: c.value })),
      }),
    };
  }
}

interface HistogramEntry {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last is +Inf's. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram with fixed buckets whose children are found by their label values, once each. */
export class FastHistogram {
  readonly #children = new Map<string, HistogramEntry>();
  readonly #opts: Described;
  readonly #bounds: Float64Array;

  constructor(opts: Described & { buckets: readonly number[]; registry: Registry }) {
    this.#opts = opts;
    this.#bounds = Float64Array.from(opts.buckets);
    opts.registry.registerMetric(this.#metric() as unknown as Metric);
  }

  child(...values: string[]): HistogramChild {
    const key = values.join('\u0000');
    let entry = this.#children.get(key);
    if (!entry) {
      entry = {
        labels: labelsOf(this.#opts.labelNames, values),
        counts: new Float64Array(this.#bounds.length + 1),
        sum: 0,
        count: 0,
      };
      this.#children.set(key, entry);
    }
    const e = entry;
    const bounds = this.#bounds;
    return {
      observe(value) {
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        e.counts[i]!++;
        e.sum += value;
        e.count++;
      },
    };
  }

  #metric() {
    const name = this.#opts.name;
    const samples = (): Sample[] => {
      const out: Sample[] = [];
      for (const e of this.#children.values()) {
        let cumulative = 0;
        for (let i = 0; i <= this.#bounds.length; i++) {
          cumulative += e.counts[i]!;
          const le = i < this.#bounds.length ? this.#bounds[i]! : '+Inf';
          out.push({
            labels: { ...e.labels, le: String(le) },
            value: cumulative,
            metricName: `${name}_bucket`,
          });
        }
        out.push({ labels: e.labels, value: e.sum, metricName: `${name}_sum` });
        out.push({ labels: e.labels, value: e.count, metricName: `${name}_count` });
      }
      return out;
    };
    return {
      name,
      help: this.#opts.help,
      type: 'histogram',
      aggregator: 'sum',
      get: () => ({ name, help: this.#opts.help, type: 'histogram', aggregator: 'sum', values: samples() }),
    };
  }
}
