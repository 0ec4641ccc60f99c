// The real frontend data providers against the live app's /api/compat dialects.
//
// Run by tests/frontend/test_providers.py, which seeds the rows (tests/frontend/seed.py), then
// checks the report written here against the database. One run tests one provider (PROVIDER),
// on freshly seeded rows:
//   ra-data-json-server  -> <API_URL>/api/compat/json-server
//   ra-data-simple-rest  -> <API_URL>/api/compat/simple-rest
//   refine-simple-rest   -> <API_URL>/api/compat/json-server (@refinedev/simple-rest)
// Environment: API_URL, PROVIDER, SEED (JSON: user, post and comment ids), ALICE_TOKEN and
// BOB_TOKEN (access tokens), REPORT (where to write what was created, updated and deleted).

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import refineDataProvider from '@refinedev/simple-rest';
import axios from 'axios';
import { fetchUtils, HttpError } from 'ra-core';
import jsonServerProvider from 'ra-data-json-server';
import simpleRestProvider from 'ra-data-simple-rest';

function env(name) {
    const value = process.env[name];
    assert.ok(value, `${name} is not set (tests/frontend/test_providers.py sets it)`);
    return value;
}

const API_URL = env('API_URL');
const PROVIDER = env('PROVIDER');
const SEED = JSON.parse(env('SEED'));
const TOKENS = { alice: env('ALICE_TOKEN'), bob: env('BOB_TOKEN') };
const REPORT = env('REPORT');

const P = SEED.posts;
const C = SEED.comments;
const ALICE = SEED.users.alice;
const BOB = SEED.users.bob;
// What Alice sees (her four posts, a draft among them, and Bob's published one), by id.
const ALICE_VIEW = [P.alpha, P.beta, P.gamma, P.aliceDraft, P.bobPost];
const PUBLIC_VIEW = [P.alpha, P.beta, P.gamma, P.bobPost];
const POST_FIELDS = [
    'content',
    'created_at',
    'id',
    'owner',
    'owner_id',
    'published',
    'title',
    'updated_at',
    'votes',
];
const COMMENT_FIELDS = ['author_id', 'body', 'created_at', 'id', 'post_id', 'updated_at'];

// What the Python side checks against the database.
const report = {
    provider: PROVIDER,
    caller: ALICE.id,
    created: [],
    updated: [],
    deleted: [],
    refused: [],
};
after(() => writeFileSync(REPORT, JSON.stringify(report, null, 2)));

const ids = records => records.map(record => record.id);
const sorted = values => [...values].sort((a, b) => a - b);

function assertPost(record, expected = {}) {
    assert.deepEqual(Object.keys(record).sort(), POST_FIELDS);
    assert.deepEqual(Object.keys(record.owner).sort(), ['full_name', 'id']);
    assert.equal(record.owner.id, record.owner_id);
    for (const [key, value] of Object.entries(expected)) {
        assert.deepEqual(record[key], value, `post ${record.id}: ${key}`);
    }
}

// A rejected call's HTTP status: ra-core's HttpError has `status`, refine's `statusCode`.
async function assertStatus(promise, status) {
    await assert.rejects(promise, error => {
        assert.equal(
            error.status ?? error.statusCode,
            status,
            `expected ${status}: ${error.message}`,
        );
        return true;
    });
}

// ---------------------------------------------------------------------------- react-admin

// react-admin's documented way to send a token: fetchJson with `user`.
function raHttpClient(token) {
    return (url, options = {}) =>
        fetchUtils.fetchJson(url, {
            ...options,
            user: { authenticated: true, token: `Bearer ${token}` },
        });
}

function reactAdminSuite(name, makeProvider, dialect) {
    const url = `${API_URL}/api/compat/${dialect}`;
    const alice = makeProvider(url, raHttpClient(TOKENS.alice));
    const bob = makeProvider(url, raHttpClient(TOKENS.bob));
    const anonymous = makeProvider(url); // the provider's default httpClient, no token
    const list = (provider, params) =>
        provider.getList('posts', {
            pagination: { page: 1, perPage: 25 },
            sort: { field: 'id', order: 'ASC' },
            filter: {},
            ...params,
        });

    describe(`${name} reads`, () => {
        it('getList pages posts sorted by votes, totals from the header', async () => {
            const sort = { field: 'votes', order: 'DESC' };
            const pages = [];
            for (const page of [1, 2, 3]) {
                const result = await list(alice, { pagination: { page, perPage: 2 }, sort });
                assert.equal(result.total, 5, `page ${page}: total`);
                pages.push(result.data);
            }
            assert.deepEqual(
                pages.map(page => page.length),
                [2, 2, 1],
            );
            assert.deepEqual(ids(pages[0]), [P.bobPost, P.alpha]);
            assert.equal(pages[1][0].id, P.gamma);
            const all = pages.flat();
            assert.deepEqual(sorted(ids(all)), sorted(ALICE_VIEW)); // no row twice, none missing
            const votes = all.map(post => post.votes);
            assert.deepEqual(
                votes,
                [...votes].sort((a, b) => b - a),
            );
            assert.deepEqual(votes, [3, 2, 1, 0, 0]);
            assertPost(pages[0][0], {
                title: 'Bob on databases',
                owner_id: BOB.id,
                owner: { id: BOB.id, full_name: BOB.full_name },
                votes: 3,
            });
        });

        it('getList sorts by id both ways', async () => {
            const up = await list(alice, { sort: { field: 'id', order: 'ASC' } });
            assert.deepEqual(ids(up.data), sorted(ALICE_VIEW));
            const down = await list(alice, { sort: { field: 'id', order: 'DESC' } });
            assert.deepEqual(ids(down.data), sorted(ALICE_VIEW).reverse());
            assert.equal(down.total, 5);
        });

        it('getList searches title and content with q, in any case', async () => {
            for (const q of ['alpha', 'ALPHA']) {
                // Bob's draft says "alpha" too, but Alice may not see it.
                const found = await list(alice, { filter: { q } });
                assert.deepEqual(ids(found.data), [P.alpha, P.beta]);
                assert.equal(found.total, 2);
            }
            const both = await list(alice, { filter: { q: 'build', published: true } });
            assert.deepEqual(ids(both.data), [P.alpha, P.beta]);
        });

        it('getList applies filters: equality, operators, several values, nested', async () => {
            const cases = [
                [{ published: false }, [P.aliceDraft]],
                [{ owner_id: BOB.id }, [P.bobPost]],
                [{ votes_gte: 1, votes_lte: 2 }, [P.alpha, P.gamma]],
                [{ title_like: 'DRAFT' }, [P.aliceDraft]],
                [{ id_ne: P.alpha }, [P.beta, P.gamma, P.aliceDraft, P.bobPost]],
                [{ id: [P.gamma, P.alpha] }, [P.alpha, P.gamma]],
                [{ owner: { full_name: BOB.full_name } }, [P.bobPost]],
                [{ q: 'nothing matches this' }, []],
                [{ q: '%' }, []], // LIKE wildcards are searched for, not expanded
                [{ title_like: '_' }, []],
            ];
            for (const [filter, expected] of cases) {
                const result = await list(alice, { filter });
                const label = JSON.stringify(filter);
                assert.deepEqual(ids(result.data), expected, label);
                assert.equal(result.total, expected.length, `${label}: total`);
            }
        });

        it('getOne returns the record', async () => {
            const { data } = await alice.getOne('posts', { id: P.alpha });
            assertPost(data, {
                id: P.alpha,
                title: 'Alpha release notes',
                content: 'Shipping the first build.',
                published: true,
                votes: 2,
                owner: { id: ALICE.id, full_name: ALICE.full_name },
            });
        });

        it('the owner sees their unpublished post; another user and anonymous do not', async () => {
            const { data } = await alice.getOne('posts', { id: P.aliceDraft });
            assertPost(data, { published: false, owner_id: ALICE.id });
            const mine = await list(alice, {});
            assert.ok(ids(mine.data).includes(P.aliceDraft));

            const publicList = await list(anonymous, {});
            assert.deepEqual(ids(publicList.data), PUBLIC_VIEW);
            assert.equal(publicList.total, 4);
            await assert.rejects(anonymous.getOne('posts', { id: P.aliceDraft }), error => {
                assert.ok(error instanceof HttpError, `${error}`);
                assert.equal(error.status, 404);
                assert.equal(error.body.status, 404); // the problem+json body
                return true;
            });
            await assertStatus(bob.getOne('posts', { id: P.aliceDraft }), 404);
            const bobsDrafts = await list(bob, { filter: { published: false } });
            assert.deepEqual(ids(bobsDrafts.data), [P.bobDraft]);
        });

        it('getMany returns the visible records of the ids', async () => {
            const wanted = [P.bobPost, P.aliceDraft, P.alpha];
            const { data } = await alice.getMany('posts', { ids: wanted });
            assert.deepEqual(sorted(ids(data)), sorted(wanted));
            data.forEach(record => assertPost(record));
            const anon = await anonymous.getMany('posts', { ids: wanted });
            assert.deepEqual(sorted(ids(anon.data)), sorted([P.bobPost, P.alpha]));
        });

        it('getManyReference lists the comments of a post', async () => {
            const reference = (provider, id, params = {}) =>
                provider.getManyReference('comments', {
                    target: 'post_id',
                    id,
                    pagination: { page: 1, perPage: 2 },
                    sort: { field: 'id', order: 'ASC' },
                    filter: {},
                    ...params,
                });
            const first = await reference(alice, P.alpha);
            assert.deepEqual(ids(first.data), [C.c1, C.c2]);
            assert.equal(first.total, 3);
            assert.deepEqual(Object.keys(first.data[0]).sort(), COMMENT_FIELDS);
            assert.deepEqual(
                {
                    body: first.data[0].body,
                    post_id: first.data[0].post_id,
                    author_id: first.data[0].author_id,
                },
                { body: 'First!', post_id: P.alpha, author_id: ALICE.id },
            );
            const second = await reference(alice, P.alpha, { pagination: { page: 2, perPage: 2 } });
            assert.deepEqual(ids(second.data), [C.c3]);
            assert.equal(second.total, 3);
            const down = await reference(alice, P.alpha, { sort: { field: 'id', order: 'DESC' } });
            assert.deepEqual(ids(down.data), [C.c3, C.c2]);
            const bobs = await reference(alice, P.alpha, { filter: { author_id: BOB.id } });
            assert.deepEqual(ids(bobs.data), [C.c2, C.c3]);
            assert.equal(bobs.total, 2);
            // A comment is visible when its post is.
            const own = await reference(alice, P.aliceDraft);
            assert.deepEqual(ids(own.data), [C.c5]);
            const hidden = await reference(anonymous, P.aliceDraft);
            assert.deepEqual(hidden, { data: [], total: 0 });
        });
    });

    describe(`${name} writes`, () => {
        const made = {};

        it('create answers the new record, the caller its owner', async () => {
            const plan = {
                edited: true,
                bulk1: false,
                bulk2: false,
                removed: true,
                gone1: true,
                gone2: false,
            };
            for (const [key, published] of Object.entries(plan)) {
                const data = {
                    title: `${name} ${key}`,
                    content: `Written through ${name}`,
                    published,
                };
                const { data: record } = await alice.create('posts', { data });
                assertPost(record, {
                    ...data,
                    owner_id: ALICE.id,
                    owner: { id: ALICE.id, full_name: ALICE.full_name },
                    votes: 0,
                });
                assert.ok(Number.isInteger(record.id));
                made[key] = record;
                report.created.push({ resource: 'posts', id: record.id, data });
            }
            const { data } = await alice.getMany('posts', { ids: ids(Object.values(made)) });
            assert.equal(data.length, 6);

            const comment = { body: `A comment through ${name}`, post_id: P.alpha };
            const { data: record } = await alice.create('comments', { data: comment });
            assert.deepEqual(Object.keys(record).sort(), COMMENT_FIELDS);
            assert.equal(record.author_id, ALICE.id);
            assert.equal(record.post_id, P.alpha);
            assert.equal(record.body, comment.body);
            made.comment = record;
            report.created.push({ resource: 'comments', id: record.id, data: comment });
            const listed = await alice.getManyReference('comments', {
                target: 'post_id',
                id: P.alpha,
                pagination: { page: 1, perPage: 10 },
                sort: { field: 'id', order: 'DESC' },
                filter: {},
            });
            assert.equal(listed.total, 4);
            assert.equal(listed.data[0].id, record.id);
        });

        it('update sends the whole record back: read-only fields are ignored', async () => {
            const previous = made.edited;
            // As react-admin's edit form sends it: the record, changed, read-only fields and all.
            const data = {
                ...previous,
                title: `${name} edited, new title`,
                content: 'New content',
                votes: 99,
                owner_id: BOB.id,
                owner: { id: BOB.id, full_name: 'Someone else' },
                created_at: '2000-01-01T00:00:00Z',
            };
            const { data: record } = await alice.update('posts', {
                id: previous.id,
                data,
                previousData: previous,
            });
            assertPost(record, {
                id: previous.id,
                title: data.title,
                content: data.content,
                published: true,
                votes: 0,
                owner_id: ALICE.id,
                created_at: previous.created_at,
            });
            assert.ok(Date.parse(record.updated_at) >= Date.parse(previous.updated_at));
            report.updated.push({ resource: 'posts', id: previous.id, data });

            const comment = made.comment;
            const edited = { ...comment, body: 'Edited comment' };
            const { data: updated } = await alice.update('comments', {
                id: comment.id,
                data: edited,
                previousData: comment,
            });
            assert.equal(updated.body, 'Edited comment');
            assert.equal(updated.post_id, P.alpha);
            report.updated.push({ resource: 'comments', id: comment.id, data: edited });
        });

        it('updateMany writes each record and answers the ids', async () => {
            const wanted = [made.bulk1.id, made.bulk2.id];
            const { data } = await alice.updateMany('posts', {
                ids: wanted,
                data: { published: true },
            });
            assert.deepEqual(sorted(data), sorted(wanted));
            for (const id of wanted)
                report.updated.push({ resource: 'posts', id, data: { published: true } });
            const { data: records } = await anonymous.getMany('posts', { ids: wanted });
            assert.deepEqual(sorted(ids(records)), sorted(wanted)); // published now
        });

        it('delete answers the deleted record', async () => {
            const previous = made.removed;
            const { data } = await alice.delete('posts', {
                id: previous.id,
                previousData: previous,
            });
            assertPost(data, { id: previous.id, title: previous.title });
            report.deleted.push({ resource: 'posts', id: previous.id });
            await assertStatus(alice.getOne('posts', { id: previous.id }), 404);
        });

        it('deleteMany deletes each record and answers the ids', async () => {
            const wanted = [made.gone1.id, made.gone2.id];
            const { data } = await alice.deleteMany('posts', { ids: wanted });
            assert.deepEqual(sorted(data), sorted(wanted));
            for (const id of wanted) report.deleted.push({ resource: 'posts', id });
            const { data: left } = await alice.getMany('posts', { ids: wanted });
            assert.deepEqual(left, []);
        });

        it('only the owner writes: another user gets 403, anonymous 401', async () => {
            const { data: alpha } = await bob.getOne('posts', { id: P.alpha });
            const data = { ...alpha, title: 'Hijacked' };
            await assertStatus(
                bob.update('posts', { id: P.alpha, data, previousData: alpha }),
                403,
            );
            await assertStatus(
                bob.updateMany('posts', { ids: [P.alpha], data: { published: false } }),
                403,
            );
            await assertStatus(bob.delete('posts', { id: P.alpha, previousData: alpha }), 403);
            await assertStatus(bob.deleteMany('posts', { ids: [P.alpha] }), 403);
            await assertStatus(
                bob.update('comments', { id: C.c1, data: { body: 'Hijacked' }, previousData: {} }),
                403,
            );
            report.refused.push(
                { resource: 'posts', id: P.alpha },
                { resource: 'comments', id: C.c1 },
            );
            const post = { title: 'Anonymous', content: '', published: true };
            await assertStatus(anonymous.create('posts', { data: post }), 401);
            await assertStatus(
                anonymous.delete('posts', { id: P.alpha, previousData: alpha }),
                401,
            );
            const { data: unchanged } = await alice.getOne('posts', { id: P.alpha });
            assert.equal(unchanged.title, 'Alpha release notes');
        });

        it('an unknown field is a 422 problem', async () => {
            const id = made.edited.id;
            await assert.rejects(
                alice.update('posts', { id, data: { bogus: 1 }, previousData: made.edited }),
                error => {
                    assert.equal(error.status, 422);
                    assert.deepEqual(
                        error.body.errors.map(item => item.loc),
                        [['body', 'bogus']],
                    );
                    return true;
                },
            );
        });
    });
}

// ---------------------------------------------------------------------------- refine

// An axios instance sending the token, its errors shaped as refine's own instance shapes them
// (`statusCode`, `message`): what refine's docs tell you to pass to the data provider.
function refineHttpClient(token) {
    const instance = axios.create({ headers: { Authorization: `Bearer ${token}` } });
    instance.interceptors.response.use(
        response => response,
        error =>
            Promise.reject({
                ...error,
                message: error.response?.data?.message,
                statusCode: error.response?.status,
                body: error.response?.data,
            }),
    );
    return instance;
}

function refineSuite(name) {
    const url = `${API_URL}/api/compat/json-server`;
    const alice = refineDataProvider(url, refineHttpClient(TOKENS.alice));
    const bob = refineDataProvider(url, refineHttpClient(TOKENS.bob));
    const anonymous = refineDataProvider(url); // its own axios instance, no token
    const list = (provider, params = {}) =>
        provider.getList({
            resource: 'posts',
            pagination: { currentPage: 1, pageSize: 25 },
            sorters: [{ field: 'id', order: 'asc' }],
            filters: [],
            ...params,
        });
    // refine has no getManyReference: a reference list is getList filtered on the target.
    const comments = (provider, postId, params = {}) =>
        provider.getList({
            resource: 'comments',
            pagination: { currentPage: 1, pageSize: 2 },
            sorters: [{ field: 'id', order: 'asc' }],
            ...params,
            filters: [
                { field: 'post_id', operator: 'eq', value: postId },
                ...(params.filters ?? []),
            ],
        });

    describe(`${name} reads`, () => {
        it('getList pages posts sorted by votes then id, totals from the header', async () => {
            const sorters = [
                { field: 'votes', order: 'desc' },
                { field: 'id', order: 'asc' },
            ];
            const pages = [];
            for (const currentPage of [1, 2, 3]) {
                // pageSize 2 of 5: the provider falls back to data.length without X-Total-Count.
                const result = await list(alice, {
                    pagination: { currentPage, pageSize: 2 },
                    sorters,
                });
                assert.equal(result.total, 5, `page ${currentPage}: total`);
                pages.push(result.data);
            }
            assert.deepEqual(pages.map(ids), [
                [P.bobPost, P.alpha],
                [P.gamma, P.beta],
                [P.aliceDraft],
            ]);
            assertPost(pages[0][0], { owner: { id: BOB.id, full_name: BOB.full_name }, votes: 3 });
            const down = await list(alice, { sorters: [{ field: 'id', order: 'desc' }] });
            assert.deepEqual(ids(down.data), sorted(ALICE_VIEW).reverse());
        });

        it('getList searches with q and applies filters', async () => {
            const cases = [
                [[{ field: 'q', operator: 'eq', value: 'ALPHA' }], [P.alpha, P.beta]],
                [
                    [
                        { field: 'q', operator: 'eq', value: 'build' },
                        { field: 'published', operator: 'eq', value: true },
                    ],
                    [P.alpha, P.beta],
                ],
                [[{ field: 'published', operator: 'eq', value: false }], [P.aliceDraft]],
                [[{ field: 'owner_id', operator: 'eq', value: BOB.id }], [P.bobPost]],
                [
                    [
                        { field: 'votes', operator: 'gte', value: 1 },
                        { field: 'votes', operator: 'lte', value: 2 },
                    ],
                    [P.alpha, P.gamma],
                ],
                [[{ field: 'title', operator: 'contains', value: 'DRAFT' }], [P.aliceDraft]],
                [
                    [{ field: 'id', operator: 'ne', value: P.alpha }],
                    [P.beta, P.gamma, P.aliceDraft, P.bobPost],
                ],
                [[{ field: 'id', operator: 'in', value: [P.gamma, P.alpha] }], [P.alpha, P.gamma]],
                [[{ field: 'owner.full_name', operator: 'eq', value: BOB.full_name }], [P.bobPost]],
                [[{ field: 'owner.full_name', operator: 'contains', value: 'bob' }], [P.bobPost]],
                [[{ field: 'q', operator: 'eq', value: '%' }], []],
            ];
            for (const [filters, expected] of cases) {
                const result = await list(alice, {
                    filters,
                    pagination: { currentPage: 1, pageSize: 4 },
                });
                const label = JSON.stringify(filters);
                assert.deepEqual(ids(result.data), expected.slice(0, 4), label);
                assert.equal(result.total, expected.length, `${label}: total`);
            }
        });

        it('getOne returns the record', async () => {
            const { data } = await alice.getOne({ resource: 'posts', id: P.alpha });
            assertPost(data, {
                id: P.alpha,
                title: 'Alpha release notes',
                votes: 2,
                owner_id: ALICE.id,
            });
        });

        it('the owner sees their unpublished post; another user and anonymous do not', async () => {
            const { data } = await alice.getOne({ resource: 'posts', id: P.aliceDraft });
            assertPost(data, { published: false, owner_id: ALICE.id });
            assert.ok(ids((await list(alice)).data).includes(P.aliceDraft));
            const publicList = await list(anonymous);
            assert.deepEqual(ids(publicList.data), PUBLIC_VIEW);
            assert.equal(publicList.total, 4);
            await assertStatus(anonymous.getOne({ resource: 'posts', id: P.aliceDraft }), 404);
            await assertStatus(bob.getOne({ resource: 'posts', id: P.aliceDraft }), 404);
        });

        it('getMany returns the visible records of the ids', async () => {
            const wanted = [P.bobPost, P.aliceDraft, P.alpha];
            const { data } = await alice.getMany({ resource: 'posts', ids: wanted });
            assert.deepEqual(sorted(ids(data)), sorted(wanted));
            const anon = await anonymous.getMany({ resource: 'posts', ids: wanted });
            assert.deepEqual(sorted(ids(anon.data)), sorted([P.bobPost, P.alpha]));
        });

        it('a reference list (getList on post_id) pages the comments of a post', async () => {
            const first = await comments(alice, P.alpha);
            assert.deepEqual(ids(first.data), [C.c1, C.c2]);
            assert.equal(first.total, 3);
            assert.deepEqual(Object.keys(first.data[0]).sort(), COMMENT_FIELDS);
            const second = await comments(alice, P.alpha, {
                pagination: { currentPage: 2, pageSize: 2 },
            });
            assert.deepEqual(ids(second.data), [C.c3]);
            const bobs = await comments(alice, P.alpha, {
                filters: [{ field: 'author_id', operator: 'eq', value: BOB.id }],
            });
            assert.deepEqual(ids(bobs.data), [C.c2, C.c3]);
            assert.deepEqual(ids((await comments(alice, P.aliceDraft)).data), [C.c5]);
            const hidden = await comments(anonymous, P.aliceDraft);
            assert.deepEqual(hidden.data, []);
        });
    });

    describe(`${name} writes`, () => {
        const made = {};

        it('create answers the new record, the caller its owner', async () => {
            const plan = {
                edited: false,
                bulk1: false,
                bulk2: false,
                removed: true,
                gone1: true,
                gone2: true,
            };
            for (const [key, published] of Object.entries(plan)) {
                const variables = {
                    title: `${name} ${key}`,
                    content: `Written through ${name}`,
                    published,
                };
                const { data } = await alice.create({ resource: 'posts', variables });
                assertPost(data, { ...variables, owner_id: ALICE.id, votes: 0 });
                made[key] = data;
                report.created.push({ resource: 'posts', id: data.id, data: variables });
            }
            const variables = { body: `A comment through ${name}`, post_id: P.alpha };
            const { data } = await alice.create({ resource: 'comments', variables });
            assert.deepEqual(
                { body: data.body, post_id: data.post_id, author_id: data.author_id },
                { ...variables, author_id: ALICE.id },
            );
            made.comment = data;
            report.created.push({ resource: 'comments', id: data.id, data: variables });
            assert.equal((await comments(alice, P.alpha)).total, 4);
        });

        it('update (PATCH) writes the fields sent', async () => {
            const variables = { title: `${name} edited, new title`, published: true };
            const { data } = await alice.update({
                resource: 'posts',
                id: made.edited.id,
                variables,
            });
            assertPost(data, { ...variables, content: made.edited.content, owner_id: ALICE.id });
            report.updated.push({ resource: 'posts', id: made.edited.id, data: variables });
            const body = { body: 'Edited comment' };
            const { data: comment } = await alice.update({
                resource: 'comments',
                id: made.comment.id,
                variables: body,
            });
            assert.equal(comment.body, body.body);
            report.updated.push({ resource: 'comments', id: made.comment.id, data: body });
        });

        it('several updates, as refine core does without updateMany: update per id', async () => {
            // @refinedev/simple-rest has no updateMany; useUpdateMany then calls update for each id.
            const wanted = [made.bulk1.id, made.bulk2.id];
            const variables = { content: 'Bulk edited' };
            const results = await Promise.all(
                wanted.map(id => alice.update({ resource: 'posts', id, variables })),
            );
            assert.deepEqual(
                results.map(result => result.data.content),
                ['Bulk edited', 'Bulk edited'],
            );
            for (const id of wanted)
                report.updated.push({ resource: 'posts', id, data: variables });
        });

        it('deleteOne answers the deleted record', async () => {
            const { data } = await alice.deleteOne({ resource: 'posts', id: made.removed.id });
            assertPost(data, { id: made.removed.id, title: made.removed.title });
            report.deleted.push({ resource: 'posts', id: made.removed.id });
            await assertStatus(alice.getOne({ resource: 'posts', id: made.removed.id }), 404);
        });

        it('several deletes, as refine core does without deleteMany: deleteOne per id', async () => {
            // @refinedev/simple-rest has no deleteMany; useDeleteMany then calls deleteOne per id.
            const wanted = [made.gone1.id, made.gone2.id];
            const results = await Promise.all(
                wanted.map(id => alice.deleteOne({ resource: 'posts', id })),
            );
            assert.deepEqual(sorted(results.map(result => result.data.id)), sorted(wanted));
            for (const id of wanted) report.deleted.push({ resource: 'posts', id });
            assert.deepEqual((await alice.getMany({ resource: 'posts', ids: wanted })).data, []);
        });

        it('only the owner writes: another user gets 403, anonymous 401', async () => {
            const variables = { title: 'Hijacked' };
            await assertStatus(bob.update({ resource: 'posts', id: P.alpha, variables }), 403);
            await assertStatus(bob.deleteOne({ resource: 'posts', id: P.alpha }), 403);
            await assertStatus(
                bob.update({ resource: 'comments', id: C.c1, variables: { body: 'x' } }),
                403,
            );
            report.refused.push(
                { resource: 'posts', id: P.alpha },
                { resource: 'comments', id: C.c1 },
            );
            await assertStatus(
                anonymous.create({ resource: 'posts', variables: { title: 'Anonymous' } }),
                401,
            );
            await assertStatus(anonymous.deleteOne({ resource: 'posts', id: P.alpha }), 401);
        });

        it('an unknown field is a 422 problem', async () => {
            const request = alice.update({
                resource: 'posts',
                id: made.edited.id,
                variables: { bogus: 1 },
            });
            await assert.rejects(request, error => {
                assert.equal(error.statusCode, 422);
                assert.deepEqual(
                    error.body.errors.map(item => item.loc),
                    [['body', 'bogus']],
                );
                return true;
            });
        });
    });
}

const SUITES = {
    'ra-data-json-server': () =>
        reactAdminSuite('ra-data-json-server', jsonServerProvider, 'json-server'),
    'ra-data-simple-rest': () =>
        reactAdminSuite('ra-data-simple-rest', simpleRestProvider, 'simple-rest'),
    'refine-simple-rest': () => refineSuite('refine-simple-rest'),
};
assert.ok(PROVIDER in SUITES, `PROVIDER is one of ${Object.keys(SUITES).join(', ')}`);
SUITES[PROVIDER]();
