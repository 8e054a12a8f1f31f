/** Splits `items` into consecutive batches of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`batch size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/**
 * Follows page tokens until the server returns an empty one. Bounded: a server that repeats a
 * token or never stops makes this throw instead of looping forever.
 */
export async function collectPages<T>(
  fetchPage: (pageToken: string) => Promise<Page<T>>,
  maxPages = 10_000,
): Promise<T[]> {
  const all: T[] = [];
  const seen = new Set<string>();
  let token = "";
  for (let page = 0; page < maxPages; page++) {
    const res = await fetchPage(token);
    all.push(...res.items);
    if (!res.nextPageToken) return all;
    if (seen.has(res.nextPageToken))
      throw new Error(`paging loop: the server repeated page token after ${page + 1} pages`);
    seen.add(res.nextPageToken);
    token = res.nextPageToken;
  }
  throw new Error(`paging did not finish within ${maxPages} pages`);
}

/** Runs `fn` over `items` with at most `limit` in flight; stops starting new ones after a failure. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
