'use strict';
// Loads the N-API addon (build/Release/mcrs.node, built by `npm install` with
// node-gyp from src/addon.c) once per JS thread, and hands it the JS pieces
// it calls back into.

const path = require('path');

// MCRS_NODE_ADDON: another build of the addon (e.g. one with AddressSanitizer)
const ADDON = process.env.MCRS_NODE_ADDON || path.resolve(__dirname, '..', 'build', 'Release', 'mcrs.node');

let cached = null;

/** The addon, set up with McrsError and the integer fallback of the default deserializer. */
function load(McrsError, intDecoder) {
  if (cached) return cached;
  let addon;
  try {
    addon = require(ADDON);
  } catch (e) {
    const why = String((e && e.message) || e).split('\n')[0];
    throw new Error(
      `mcrs: cannot load the native addon ${ADDON} (${why}). ` +
      'Build libmcrs with `cargo build --release` at the repository root, then run `npm install` ' +
      `in ${path.resolve(__dirname, '..')} (it builds the addon with node-gyp).`
    );
  }
  addon.setup(McrsError, intDecoder);
  cached = addon;
  return addon;
}

module.exports = { load, ADDON };
