// The README's sync loop (tests/frontend/sync/follow.ts, compiled by esbuild) against the live
// app: it keeps a local copy of the posts the user may read while they change.
//
// Run by tests/frontend/test_sync_client.py. Environment: API_URL, TOKEN (an access token of a
// user with one published post and one draft), FOLLOW_MODULE (the compiled loop).

import assert from 'node:assert/strict';
import { it } from 'node:test';

const { follow } = await import(process.env.FOLLOW_MODULE);
const POSTS = `${process.env.API_URL}/api/v1/posts`;
const headers = { Authorization: `Bearer ${process.env.TOKEN}`, 'Content-Type': 'application/json' };

async function call(method, url, body) {
    const response = await fetch(url, { method, headers, body: body && JSON.stringify(body) });
    if (!response.ok) assert.fail(`${method} ${url}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? null : response.json();
}

async function listed() {
    const page = await call('GET', `${POSTS}?limit=100&sort=id`);
    return new Map(page.items.map((post) => [post.id, post]));
}

async function until(check, what) {
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
        if (await check()) return;
        await new Promise((done) => setTimeout(done, 100));
    }
    assert.fail(`timed out waiting for ${what}`);
}

it('keeps a local copy equal to what the API lists', async () => {
    const rows = new Map();
    const stop = new AbortController();
    const running = follow(POSTS, rows, { Authorization: headers.Authorization }, stop.signal);
    try {
        await until(() => rows.size === 2, 'the first round (a published post and a draft)');

        const created = await call('POST', POSTS, { title: 'Created while following' });
        const [first] = rows.keys();
        await call('PATCH', `${POSTS}/${first}`, { title: 'Renamed', published: false });
        const second = [...rows.keys()].find((id) => id !== first);
        await call('DELETE', `${POSTS}/${second}`);

        await until(async () => rows.has(created.id) && !rows.has(second), 'the changes');
        await until(() => rows.get(first).title === 'Renamed', 'the rename');
        assert.deepEqual(rows, await listed());
    } finally {
        stop.abort();
        await running.catch((error) => assert.equal(error.name, 'AbortError'));
    }
});
