// The auth providers of tests/frontend/auth/ (as the README shows them) against the live app.
//
// Run by tests/frontend/test_auth_providers.py. Environment: API_URL, EMAIL and PASSWORD of a
// user with one published post and one draft, USER_ID, FULL_NAME, EXPIRED_TOKEN (an access
// token of that user, expired).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import refineDataProvider from '@refinedev/simple-rest';
import jsonServerProvider from 'ra-data-json-server';

import { createAuth as createReactAdminAuth } from './auth/react-admin.mjs';
import { createAuth as createRefineAuth } from './auth/refine.mjs';

function env(name) {
    const value = process.env[name];
    assert.ok(value, `${name} is not set (tests/frontend/test_auth_providers.py sets it)`);
    return value;
}

const API_URL = env('API_URL');
const EMAIL = env('EMAIL');
const PASSWORD = env('PASSWORD');
const USER_ID = Number(env('USER_ID'));
const FULL_NAME = env('FULL_NAME');
const EXPIRED_TOKEN = env('EXPIRED_TOKEN');
const DATA_URL = `${API_URL}/api/compat/json-server`;

// localStorage's interface over a Map (Node has no localStorage).
function memoryStorage() {
    const items = new Map();
    return {
        items,
        getItem: key => items.get(key) ?? null,
        setItem: (key, value) => items.set(key, String(value)),
        removeItem: key => items.delete(key),
    };
}

async function refreshStatus(refresh_token) {
    const response = await fetch(`${API_URL}/api/v1/auth/refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token }),
    });
    return response.status;
}

describe('react-admin authProvider and httpClient', () => {
    const storage = memoryStorage();
    const { authProvider, httpClient } = createReactAdminAuth(API_URL, storage);
    const dataProvider = jsonServerProvider(DATA_URL, httpClient);
    const posts = () =>
        dataProvider.getList('posts', {
            pagination: { page: 1, perPage: 10 },
            sort: { field: 'id', order: 'ASC' },
            filter: {},
        });
    let loggedOut = '';

    it('refuses a wrong password and starts logged out', async () => {
        await assert.rejects(authProvider.checkAuth({}));
        await assert.rejects(
            authProvider.login({ username: EMAIL, password: 'wrong-password' }),
            /401/,
        );
        assert.equal(storage.items.size, 0);
    });

    it('logs in and keeps the token pair in storage', async () => {
        await authProvider.login({ username: EMAIL, password: PASSWORD });
        assert.deepEqual([...storage.items.keys()].sort(), ['access_token', 'refresh_token']);
        await authProvider.checkAuth({});
    });

    it('getIdentity and getPermissions read /users/me', async () => {
        assert.deepEqual(await authProvider.getIdentity(), { id: USER_ID, fullName: FULL_NAME });
        assert.equal(await authProvider.getPermissions({}), 'user');
    });

    it('the data provider calls as the user: their draft is listed', async () => {
        const { data, total } = await posts();
        assert.equal(total, 2);
        assert.deepEqual(
            data.map(post => post.published),
            [true, false],
        );
    });

    for (const [kind, token] of [
        ['an expired', EXPIRED_TOKEN],
        ['an invalid', 'not-a-token'],
    ]) {
        it(`${kind} access token is refreshed, and the call retried`, async () => {
            const spent = storage.getItem('refresh_token');
            storage.setItem('access_token', token);
            const { total } = await posts();
            assert.equal(total, 2); // the draft again: the retry carried the new access token
            assert.notEqual(storage.getItem('access_token'), token);
            assert.notEqual(storage.getItem('refresh_token'), spent); // rotated
        });
    }

    it('calls at once share one refresh (a second would spend the token twice)', async () => {
        storage.setItem('access_token', 'not-a-token');
        const results = await Promise.all([posts(), authProvider.getIdentity(), posts()]);
        assert.deepEqual(
            results.map(result => result.total ?? result.id),
            [2, USER_ID, 2],
        );
    });

    it('checkError logs out on 401 only', async () => {
        await assert.rejects(authProvider.checkError({ status: 401 }));
        await authProvider.checkError({ status: 403 });
        await authProvider.checkError({ status: 404 });
    });

    it('logout ends the login: its refresh token no longer refreshes', async () => {
        loggedOut = storage.getItem('refresh_token');
        const access = storage.getItem('access_token');
        await authProvider.logout({});
        assert.equal(storage.items.size, 0);
        await assert.rejects(authProvider.checkAuth({}));
        assert.equal(await refreshStatus(loggedOut), 401);
        // Stale tokens left in storage: the refresh fails, the call is a 401, checkError says log out.
        storage.setItem('access_token', access.slice(0, -4) + 'AAAA');
        storage.setItem('refresh_token', loggedOut);
        await assert.rejects(posts(), error => error.status === 401);
        await assert.rejects(authProvider.checkError({ status: 401 }));
    });
});

describe('refine authProvider and axios instance', () => {
    const storage = memoryStorage();
    const { authProvider, http } = createRefineAuth(API_URL, storage);
    const dataProvider = refineDataProvider(DATA_URL, http);
    const posts = () =>
        dataProvider.getList({
            resource: 'posts',
            pagination: { currentPage: 1, pageSize: 1 },
            sorters: [{ field: 'id', order: 'asc' }],
        });

    it('refuses a wrong password and starts logged out', async () => {
        assert.deepEqual(await authProvider.check(), {
            authenticated: false,
            redirectTo: '/login',
        });
        const failed = await authProvider.login({ email: EMAIL, password: 'wrong-password' });
        assert.equal(failed.success, false);
        assert.equal(failed.error.message, 'Incorrect email or password');
        assert.equal(storage.items.size, 0);
    });

    it('logs in and keeps the token pair in storage', async () => {
        assert.deepEqual(await authProvider.login({ email: EMAIL, password: PASSWORD }), {
            success: true,
            redirectTo: '/',
        });
        assert.deepEqual([...storage.items.keys()].sort(), ['access_token', 'refresh_token']);
        assert.deepEqual(await authProvider.check(), { authenticated: true });
    });

    it('getIdentity reads /users/me', async () => {
        assert.deepEqual(await authProvider.getIdentity(), {
            id: USER_ID,
            name: FULL_NAME,
            email: EMAIL,
        });
    });

    it('the data provider calls as the user: their draft is counted', async () => {
        const { total } = await posts(); // pageSize 1: the total is X-Total-Count's
        assert.equal(total, 2);
    });

    for (const [kind, token] of [
        ['an expired', EXPIRED_TOKEN],
        ['an invalid', 'not-a-token'],
    ]) {
        it(`${kind} access token is refreshed, and the call retried`, async () => {
            const spent = storage.getItem('refresh_token');
            storage.setItem('access_token', token);
            assert.equal((await posts()).total, 2);
            assert.notEqual(storage.getItem('access_token'), token);
            assert.notEqual(storage.getItem('refresh_token'), spent);
        });
    }

    it('calls at once share one refresh (a second would spend the token twice)', async () => {
        storage.setItem('access_token', 'not-a-token');
        const results = await Promise.all([posts(), authProvider.getIdentity(), posts()]);
        assert.deepEqual(
            results.map(result => result.total ?? result.id),
            [2, USER_ID, 2],
        );
    });

    it('onError logs out on 401 only', async () => {
        assert.equal((await authProvider.onError({ statusCode: 401 })).logout, true);
        assert.deepEqual(await authProvider.onError({ statusCode: 403 }), {});
    });

    it('logout ends the login: its refresh token no longer refreshes', async () => {
        const refreshToken = storage.getItem('refresh_token');
        const access = storage.getItem('access_token');
        assert.deepEqual(await authProvider.logout(), { success: true, redirectTo: '/login' });
        assert.equal(storage.items.size, 0);
        assert.equal((await authProvider.check()).authenticated, false);
        assert.equal(await refreshStatus(refreshToken), 401);
        storage.setItem('access_token', access.slice(0, -4) + 'AAAA');
        storage.setItem('refresh_token', refreshToken);
        const error = await posts().then(
            () => assert.fail('a call with stale tokens succeeded'),
            rejected => rejected,
        );
        assert.equal(error.statusCode, 401);
        assert.equal((await authProvider.onError(error)).logout, true);
    });
});
