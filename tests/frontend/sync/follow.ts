type Page<T> = { items: { etag: string; data: T }[]; deleted: number[]; token: string; has_more: boolean };

export async function follow<T extends { id: number }>(
  url: string,                      // e.g. "http://127.0.0.1:8000/api/v1/posts"
  rows: Map<number, T>,             // the local copy, kept in place
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<void> {
  let token: string | null = null;
  while (!signal?.aborted) {
    const query: string = token ? `?since=${encodeURIComponent(token)}` : "";
    const response = await fetch(`${url}/changes${query}`, { headers, signal });
    if (response.status === 410) { rows.clear(); token = null; continue; } // too old: start over
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    const page = (await response.json()) as Page<T>;
    for (const { data } of page.items) rows.set(data.id, data);
    for (const id of page.deleted) rows.delete(id);
    token = page.token;
    if (!page.has_more) await new Promise((done) => setTimeout(done, 2000)); // or wait for an event
  }
}
