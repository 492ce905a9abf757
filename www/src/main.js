// Entry point of Kiln's web UI (bundled by esbuild into app.js, embedded in
// kiln by src/master/embed-www.py): mounts the app shell into #app.
import './app.css';
import { render } from 'preact';
import { html } from './util.js';
import { App } from './router.js';

render(html`<${App} />`, document.getElementById('app'));
