/** Worker for the native-free control: attempts a native load in a worker thread. */
try {
  process.dlopen({ exports: {} }, '/nonexistent/addon.node');
} catch {
  // expected: the hook (or the missing file) throws
}
