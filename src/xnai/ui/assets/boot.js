// Some bundled libraries of the chat page expect a `global` object (a Node.js name).
globalThis.global = globalThis;
