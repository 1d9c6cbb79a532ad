// Keypad entry: the pure reducer behind the on-screen and physical keypads, shared by the
// two pickup steps (screens/pickup.js, screens/phone.js).

export const CODE_LEN = 8;
export const FACTOR_LEN = 4;

// step 'code' takes CODE_LEN digits, then 'factor' takes FACTOR_LEN; delete on an empty
// factor goes back to the code step so nobody is stuck on the second screen.
export function emptyEntry() {
  return { step: 'code', code: '', factor: '' };
}

export function keypadReduce(entry, key) {
  const e = { step: entry.step, code: entry.code, factor: entry.factor };
  if (key === 'clear') return emptyEntry();
  if (key === 'delete') {
    if (e.step === 'factor') {
      if (e.factor.length > 0) e.factor = e.factor.slice(0, -1);
      else e.step = 'code';
    } else {
      e.code = e.code.slice(0, -1);
    }
    return e;
  }
  if (key === 'next') {
    if (e.step === 'code' && e.code.length === CODE_LEN) e.step = 'factor';
    return e;
  }
  if (/^[0-9]$/.test(key)) {
    if (e.step === 'code' && e.code.length < CODE_LEN) e.code += key;
    else if (e.step === 'factor' && e.factor.length < FACTOR_LEN) e.factor += key;
  }
  return e;
}

export function entryComplete(entry) {
  return entry.code.length === CODE_LEN && entry.factor.length === FACTOR_LEN;
}
