// refine: an authProvider, and an axios instance to give @refinedev/simple-rest, for this API's
// tokens. On a 401 the instance trades the refresh token for a new pair (a refresh token works
// once) and retries once. Tokens live in `storage`: localStorage in a browser.
import axios from 'axios';

export function createAuth(baseUrl, storage = globalThis.localStorage) {
    const auth = axios.create({ baseURL: `${baseUrl}/api/v1/auth` });
    const save = ({ data }) => {
        storage.setItem('access_token', data.access_token);
        storage.setItem('refresh_token', data.refresh_token);
    };
    let refreshing = null; // calls failing together share one refresh
    const refresh = () =>
        (refreshing ??= auth
            .post('/refresh', { refresh_token: storage.getItem('refresh_token') })
            .then(save)
            .finally(() => (refreshing = null)));
    const detail = error => error.response?.data?.detail ?? error.message; // problem+json
    // Rejected as refine reads errors: `statusCode` and `message`.
    const reject = error =>
        Promise.reject({ ...error, statusCode: error.response?.status, message: detail(error) });

    const http = axios.create();
    http.interceptors.request.use(config => {
        const token = storage.getItem('access_token');
        if (token) config.headers.Authorization = `Bearer ${token}`;
        return config;
    });
    http.interceptors.response.use(undefined, async error => {
        const { config, response } = error;
        if (response?.status !== 401 || config.retried || !storage.getItem('refresh_token'))
            return reject(error);
        await refresh().catch(() => reject(error)); // no new pair: the 401 stands
        return http({ ...config, retried: true });
    });

    const authProvider = {
        login: ({ email, password }) =>
            auth
                .post('/login', new URLSearchParams({ username: email, password }))
                .then(save)
                .then(() => ({ success: true, redirectTo: '/' }))
                .catch(error => ({
                    success: false,
                    error: { name: 'Login failed', message: detail(error) },
                })),
        logout: async () => {
            const refresh_token = storage.getItem('refresh_token');
            storage.removeItem('access_token');
            storage.removeItem('refresh_token');
            // Ends the login server-side: its refresh token no longer works.
            if (refresh_token) await auth.post('/logout', { refresh_token }).catch(() => {});
            return { success: true, redirectTo: '/login' };
        },
        check: async () =>
            storage.getItem('access_token')
                ? { authenticated: true }
                : { authenticated: false, redirectTo: '/login' },
        onError: async error =>
            error?.statusCode === 401 ? { logout: true, redirectTo: '/login', error } : {},
        getIdentity: async () => {
            const { data } = await http.get(`${baseUrl}/api/v1/users/me`);
            return { id: data.id, name: data.full_name ?? data.email, email: data.email };
        },
    };
    return { authProvider, http };
}
