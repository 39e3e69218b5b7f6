/**
 * Values built asynchronously once per key (sessions built on first use): concurrent callers share
 * the pending promise, and a failed build is forgotten so that the next call tries again.
 */
export class PromiseCache<K, V> {
  private readonly entries = new Map<K, Promise<V>>();

  get(key: K, build: () => Promise<V>): Promise<V> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = build();
      this.entries.set(key, entry);
      entry.catch(() => this.entries.delete(key));
    }
    return entry;
  }

  /** The values built successfully so far (failed builds skipped). */
  async settled(): Promise<V[]> {
    const results = await Promise.allSettled(this.entries.values());
    return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  clear(): void {
    this.entries.clear();
  }
}
