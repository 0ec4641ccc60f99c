// react-admin: an authProvider, and an httpClient to give the data provider, for this API's tokens.
// On a 401 the httpClient trades the refresh token for a new pair (a refresh token works once) and
// retries once. Tokens live in `storage`: localStorage in a browser, or any object like it.
import { fetchUtils } from 'ra-core';

export function createAuth(baseUrl, storage = globalThis.localStorage) {
    const post = (path, body, headers = { 'Content-Type': 'application/json' }) =>
        fetch(`${baseUrl}/api/v1/auth/${path}`, { method: 'POST', headers, body });
    const save = async response => {
        if (!response.ok) throw new Error(`Authentication failed (${response.status})`);
        const { access_token, refresh_token } = await response.json();
        storage.setItem('access_token', access_token);
        storage.setItem('refresh_token', refresh_token);
    };
    let refreshing = null; // calls failing together share one refresh
    const refresh = () => {
        const body = JSON.stringify({ refresh_token: storage.getItem('refresh_token') });
        return (refreshing ??= post('refresh', body)
            .then(save)
            .finally(() => (refreshing = null)));
    };
    const send = (url, options) =>
        fetchUtils.fetchJson(url, {
            ...options,
            user: { authenticated: true, token: `Bearer ${storage.getItem('access_token')}` },
        });
    const httpClient = (url, options = {}) =>
        send(url, options).catch(async error => {
            if (error.status !== 401 || !storage.getItem('refresh_token')) throw error;
            await refresh().catch(() => Promise.reject(error)); // no new pair: the 401 stands
            return send(url, options);
        });
    const me = async () => (await httpClient(`${baseUrl}/api/v1/users/me`)).json;

    const authProvider = {
        login: ({ username, password }) =>
            post('login', new URLSearchParams({ username, password }), {}).then(save), // a form
        logout: async () => {
            const refresh_token = storage.getItem('refresh_token');
            storage.removeItem('access_token');
            storage.removeItem('refresh_token');
            // Ends the login server-side: its refresh token no longer works.
            if (refresh_token) await post('logout', JSON.stringify({ refresh_token }));
        },
        checkAuth: async () => {
            if (!storage.getItem('access_token')) throw new Error('Not logged in');
        },
        checkError: async ({ status }) => {
            if (status === 401) throw new Error('Session expired'); // a 403 is "not yours": stay
        },
        getIdentity: async () => {
            const user = await me();
            return { id: user.id, fullName: user.full_name ?? user.email };
        },
        getPermissions: async () => ((await me()).is_superuser ? 'admin' : 'user'),
    };
    return { authProvider, httpClient };
}
