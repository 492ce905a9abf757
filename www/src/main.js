// Entry point of Kiln's web UI (bundled by esbuild into app.js, embedded in
// kiln by src/master/embed-www.py): mounts the app shell into #app.
import './app.css';
import { render } from 'preact';
import { html } from './util.js';
import { App } from './router.js';
import { startWatcher } from './notify.js'; // slice "notify"

render(html`<${App} />`, document.getElementById('app'));
startWatcher(); // browser notifications for watched builders (slice "notify")
