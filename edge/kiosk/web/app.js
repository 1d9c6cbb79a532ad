// Larder kiosk page: the locker bank's touchscreen, served by the edge daemon with no
// internet. Plain ES modules, no build step, no dependencies; index.html loads this file
// with <script type="module">, and it starts the page (kiosk.js) on the browser's own
// document, window, fetch and clock. Node tests start the same page on a fake document
// instead (test/page.js).
import { createApi } from './api.js';
import { createKiosk } from './kiosk.js';
import { systemClock } from './timers.js';

createKiosk({ document, window, api: createApi({}), clock: systemClock }).start();
