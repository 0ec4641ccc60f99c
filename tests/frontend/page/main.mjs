// A frontend on another origin: react-admin's two REST data providers list posts from the API
// and the page shows each one's rows and total (or its error). Bundled by esbuild at test time
// (tests/frontend/test_browser_cors.py); configured by its query: ?api=<origin>&token=<jwt>.
import { fetchUtils } from 'ra-core';
import jsonServerProvider from 'ra-data-json-server';
import simpleRestProvider from 'ra-data-simple-rest';

const config = new URLSearchParams(location.search);
const api = config.get('api');
const token = config.get('token');
const httpClient = (url, options = {}) =>
    fetchUtils.fetchJson(
        url,
        token ? { ...options, user: { authenticated: true, token: `Bearer ${token}` } } : options,
    );

function element(tag, attributes, ...children) {
    const node = Object.assign(document.createElement(tag), attributes);
    node.append(...children);
    return node;
}

async function show(name, provider) {
    const section = element('section', { id: name }, element('h2', {}, name));
    document.body.append(section);
    try {
        const { data, total } = await provider.getList('posts', {
            pagination: { page: 1, perPage: 2 },
            sort: { field: 'id', order: 'ASC' },
            filter: {},
        });
        const rows = data.map(post =>
            element('li', { className: 'row' }, `#${post.id} ${post.title}`),
        );
        section.append(
            element('p', {}, 'Total: ', element('output', { className: 'total' }, String(total))),
        );
        section.append(element('ul', {}, ...rows));
    } catch (error) {
        section.append(element('pre', { className: 'error' }, String(error.message || error)));
    }
}

Promise.all([
    show('json-server', jsonServerProvider(`${api}/api/compat/json-server`, httpClient)),
    show('simple-rest', simpleRestProvider(`${api}/api/compat/simple-rest`, httpClient)),
]).finally(() => {
    document.body.dataset.done = 'true';
});
