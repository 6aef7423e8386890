import { Gauge, type Registry } from 'prom-client';

/**
 * One read per scrape, shared by every gauge that collects from it (the registry collects its
 * metrics concurrently): the first caller starts the read, the others within 100 ms get its answer.
 */
export function oncePerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let reading: Promise<T> | null = null;
  return () => (reading ??= read().finally(() => setTimeout(() => (reading = null), 100).unref()));
}

/**
 * A gauge of `registry` whose values are read when Prometheus scrapes: `values` gives each label
 * set (`{}` without labels) its value. A gauge of the same name is replaced (a worker built again
 * on the same registry, in tests).
 */
export function scrapeTimeGauge<T>(
  registry: Registry,
  spec: { name: string; help: string; labelNames?: readonly string[] },
  read: () => Promise<T>,
  values: (reading: T) => Array<[Record<string, string>, number]>,
): void {
  registry.removeSingleMetric(spec.name);
  new Gauge({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames ?? [],
    registers: [registry],
    async collect() {
      for (const [labels, value] of values(await read())) this.set(labels, value);
    },
  });
}
