// Help (screens/help.js): the button tells staff through the edge, says so, does not call
// them twice in a row, and says where help is needed.
import assert from 'node:assert/strict';
import test from 'node:test';

import { TIMING } from '../timers.js';
import { openPage } from './page.js';

test('Help: staff are notified and the page says so', async () => {
  const p = await openPage();
  await p.click('#help-btn');
  assert.deepEqual(p.edge.state.helps, ['pickup']);
  assert.equal(p.banner(), '已通知工作人员，请在柜子旁稍候。');
  assert.equal(p.$('#announcer').className, 'banner banner-ok banner-on');
});

test('Help pressed again soon repeats the answer without calling staff again', async () => {
  const p = await openPage();
  await p.click('#help-btn');
  await p.advance(TIMING.helpRepeatMs - 1000);
  await p.click('#help-btn');
  assert.equal(p.edge.state.helps.length, 1);
  assert.equal(p.banner(), '已通知工作人员，请在柜子旁稍候。');
  await p.advance(1000);
  await p.click('#help-btn');
  assert.equal(p.edge.state.helps.length, 2);
});

test('Help when the edge already told staff still says staff have been told', async () => {
  const p = await openPage();
  await p.click('#help-btn');
  await p.advance(TIMING.helpRepeatMs); // the page asks again; the edge's minute is not over
  await p.click('#help-btn');
  assert.equal(p.edge.state.helps.length, 2);
  assert.equal(p.edge.state.alerts, 1, 'one alert for staff');
  assert.equal(p.banner(), '已通知工作人员，请在柜子旁稍候。');
  assert.equal(p.$('#announcer').className, 'banner banner-ok banner-on');
});

test('Help says where: pickup screens, driver mode, driver sign-in', async () => {
  const p = await openPage();
  await p.pickup('12345678', '1234');
  await p.click('#help-btn');
  assert.equal(p.screen(), 'doors', 'Help keeps the screen');
  const q = await openPage();
  await q.click('#driver-link');
  await q.click('#help-btn');
  q.$('#credential').value = 'DRIVER-OK';
  await q.click('#driver-login-form button[type="submit"]');
  await q.advance(TIMING.helpRepeatMs);
  await q.click('#help-btn');
  assert.deepEqual(p.edge.state.helps, ['pickup']);
  assert.deepEqual(q.edge.state.helps, ['other', 'driver']);
});

test('Help with the edge down says it could not reach staff', async () => {
  const p = await openPage();
  p.edge.state.down = true;
  await p.click('#help-btn');
  assert.equal(p.banner(), '暂时无法通知工作人员，请稍后再按一次。');
  assert.equal(p.$('#announcer').className, 'banner banner-error banner-on');
});
